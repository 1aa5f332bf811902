//! The OpenAPI document: it describes every route the service serves and
//! nothing else, and the service serves it whole, its references resolving.

use std::collections::BTreeSet;

use confab_kit::api::{Endpoint, documented, listed};
use confab_kit::testing::openapi::{references, unresolved_references};
use llm_proxy_service::openapi::document;
use llm_proxy_service::routes::api;
use serde_json::Value;

use crate::common::{Proxy, SERVICE_TOKEN};

fn lines(endpoints: &BTreeSet<&Endpoint>) -> String {
    endpoints
        .iter()
        .map(|e| format!("  {e}\n"))
        .collect::<String>()
}

#[test]
fn every_route_is_documented_and_every_documented_route_is_served() {
    let doc = document();
    if std::env::var_os("PRINT_DOC").is_some() {
        println!("{}", doc.to_pretty_json().unwrap());
    }
    let served = listed(|r| {
        confab_kit::server::routes(r);
        api(r, &doc);
    });
    let described = documented(&doc);
    let undescribed: BTreeSet<_> = served.difference(&described).collect();
    let unserved: BTreeSet<_> = described.difference(&served).collect();
    assert!(
        undescribed.is_empty() && unserved.is_empty(),
        "served but not in the document:\n{}in the document but not served:\n{}",
        lines(&undescribed),
        lines(&unserved),
    );
}

#[tokio::test]
async fn the_service_serves_its_document_whole_with_every_reference_resolving() {
    let proxy = Proxy::start(|_| {}).await;
    let response = proxy.openapi().await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let served: Value = response.json().await.unwrap();
    assert_eq!(served["openapi"], "3.1.0");
    assert_eq!(served, serde_json::to_value(document()).unwrap());

    assert!(!references(&served).is_empty());
    let unresolved = unresolved_references(&served);
    assert!(
        unresolved.is_empty(),
        "references to nothing: {unresolved:#?}"
    );

    // utoipa leaves an empty description out, and OpenAPI requires one.
    for (path, item) in served["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for (status, answer) in operation["responses"].as_object().unwrap() {
                assert!(
                    answer["description"]
                        .as_str()
                        .is_some_and(|d| !d.is_empty()),
                    "{method} {path} {status} has no description"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_plain_get_of_the_trace_socket_is_refused_as_documented() {
    let proxy = Proxy::start(|_| {}).await;
    let response = proxy
        .http
        .get(format!("{}/ws/trace/math", proxy.url))
        .header("x-service-token", SERVICE_TOKEN)
        .header("x-user-id", "usr-ada")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request");

    let doc = serde_json::to_value(document()).unwrap();
    let documented = &doc["paths"]["/ws/trace/{agent_id}"]["get"]["responses"];
    for status in ["101", "400", "401"] {
        assert!(
            documented.get(status).is_some(),
            "{status} missing: {documented}"
        );
    }
}

/// The handshake's headers are required parameters of the document, with
/// patterns: a handshake that matches them is upgraded, and one with any
/// of them missing or off its pattern is refused with the documented 400.
#[tokio::test]
async fn the_trace_socket_takes_exactly_the_documented_handshake() {
    let proxy = Proxy::start(|_| {}).await;
    let doc = serde_json::to_value(document()).unwrap();
    let parameters = doc["paths"]["/ws/trace/{agent_id}"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let handshake = [
        ("Connection", "Upgrade"),
        ("Upgrade", "websocket"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    for (name, value) in handshake {
        let parameter = parameters
            .iter()
            .find(|p| p["name"] == name && p["in"] == "header")
            .unwrap_or_else(|| panic!("{name} is not a header parameter"));
        assert_eq!(parameter["required"], true, "{name}");
        let pattern = parameter["schema"]["pattern"].as_str().unwrap();
        let pattern = regex::Regex::new(pattern).unwrap();
        assert!(pattern.is_match(value), "{name}: {value} against {pattern}");
    }
    let send = |headers: Vec<(&'static str, &'static str)>| {
        let mut request = proxy
            .http
            .get(format!("{}/ws/trace/math", proxy.url))
            .header("x-service-token", SERVICE_TOKEN)
            .header("x-user-id", "usr-ada");
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send()
    };
    let upgraded = send(handshake.to_vec()).await.unwrap();
    assert_eq!(upgraded.status(), 101);
    drop(upgraded);

    for (name, wrong) in [
        ("Connection", "keep-alive"),
        ("Upgrade", "h2c"),
        ("Sec-WebSocket-Version", "8"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ"),
    ] {
        let without: Vec<_> = handshake.into_iter().filter(|(n, _)| *n != name).collect();
        let mut off = without.clone();
        off.push((name, wrong));
        for headers in [without, off] {
            let refused = send(headers.clone()).await.unwrap();
            assert_eq!(refused.status(), 400, "{headers:?}");
            let body: Value = refused.json().await.unwrap();
            assert_eq!(body["error"]["code"], "bad_request", "{headers:?}");
        }
    }
}

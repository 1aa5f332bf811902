//! chat-service's OpenAPI document against what it serves: every route it
//! registers is described and every described operation is served (the
//! coverage the document is generated for), and `GET /openapi.json`
//! answers that document, whole.

use chat_service::api::api;
use chat_service::openapi::document;
use confab_kit::api::{Endpoint, documented, listed};
use confab_kit::testing::openapi::{references, unresolved_references};
use serde_json::Value;

use crate::common::start_chat_with_dead_agents;

#[test]
fn every_route_is_described_and_every_described_operation_is_served() {
    let doc = document();
    let served = listed(|r| {
        confab_kit::server::routes(r);
        api(r, &doc);
    });
    let described = documented(&doc);
    let undescribed: Vec<&Endpoint> = served.difference(&described).collect();
    let unserved: Vec<&Endpoint> = described.difference(&served).collect();
    assert!(
        undescribed.is_empty() && unserved.is_empty(),
        "served but not in the document: {}\nin the document but not served: {}",
        list(&undescribed),
        list(&unserved),
    );
}

fn list(endpoints: &[&Endpoint]) -> String {
    if endpoints.is_empty() {
        return "none".into();
    }
    endpoints
        .iter()
        .map(|e| format!("\n  {e}"))
        .collect::<String>()
}

#[tokio::test]
async fn the_service_serves_its_document_whose_references_all_resolve() {
    let (_stack, app) = start_chat_with_dead_agents(&["math"]).await;
    let response = app.openapi().await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let served: Value = response.json().await.unwrap();
    let expected = serde_json::to_value(document()).unwrap();
    assert_eq!(served, expected);
    if std::env::var_os("PRINT_DOC").is_some() {
        println!("{}", serde_json::to_string_pretty(&served).unwrap());
    }
    assert_eq!(served["openapi"], "3.1.0");

    assert!(
        !references(&served).is_empty(),
        "the document refers to no schema"
    );
    let unresolved = unresolved_references(&served);
    assert!(
        unresolved.is_empty(),
        "$refs that resolve to nothing: {unresolved:?}"
    );
}

#[tokio::test]
async fn a_websocket_asked_without_an_upgrade_is_refused_as_documented() {
    let (_stack, app) = start_chat_with_dead_agents(&["math"]).await;
    let doc = serde_json::to_value(document()).unwrap();
    let documented = &doc["paths"]["/ws/chat"]["get"]["responses"];
    let plain = app
        .request(reqwest::Method::GET, "/ws/chat", "usr-ada")
        .send()
        .await
        .unwrap();
    let anonymous = app
        .http
        .get(format!("{}/ws/chat", app.url))
        .send()
        .await
        .unwrap();
    for (response, status, code) in [
        (plain, 400, "bad_request"),
        (anonymous, 401, "unauthorized"),
    ] {
        assert_eq!(response.status(), status);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], code);
        let described = documented[status.to_string()]["description"]
            .as_str()
            .unwrap_or_default();
        assert!(
            described.contains(&format!("`{code}`")),
            "{status} {code} is not in the document: {documented}"
        );
    }
}

/// The forms the document gives the opaque strings are the ones the
/// service parses (the annotations take literals; the parsers' patterns are
/// tested against the parsers), and `POST /chat/completions` says it needs
/// a `user` message.
#[test]
fn the_documented_forms_are_the_parsed_ones() {
    let doc = serde_json::to_value(document()).unwrap();
    let parameter = |path: &str, name: &str| -> Value {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{path} has no {name}"))
            .clone()
    };
    for path in ["/chat/conversations", "/chat/sessions"] {
        assert_eq!(
            parameter(path, "cursor")["schema"]["pattern"],
            chat_service::domain::CURSOR_PATTERN,
            "{path}"
        );
    }
    let follow = "/chat/sessions/{id}/messages/stream";
    for name in ["last_event_id", "Last-Event-ID"] {
        assert_eq!(
            parameter(follow, name)["schema"]["pattern"],
            chat_service::routes::seeds::sessions::event_id::PATTERN,
            "{name}"
        );
    }
    let ws = parameter("/ws/chat", "Sec-WebSocket-Key");
    assert_eq!(ws["required"], true);
    let body = &doc["paths"]["/chat/completions"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"];
    assert_eq!(
        body["allOf"][1]["properties"]["messages"]["contains"]["properties"]["role"]["const"],
        "user",
        "{body}"
    );
}

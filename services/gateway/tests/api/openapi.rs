//! The gateway's own routes and its OpenAPI document of them agree: every
//! route it registers is described, every described operation is served,
//! and the document holds together (its references and security schemes
//! are defined, its operation ids unique, every response described). The
//! public document it serves at `/api/v1/openapi.json` describes exactly
//! the operations a client can reach: its own and, through the routing
//! table, the services'.

use std::collections::BTreeSet;

use confab_kit::api::{Endpoint, documented, listed};
use confab_kit::testing::openapi::unresolved_references;
use gateway::proxy::path::RequestPath;
use serde_json::Value;

use crate::common::{Stack, fetch_json};

#[test]
fn every_own_route_is_documented_and_every_documented_operation_is_served() {
    let served = listed(|r| {
        confab_kit::server::routes(r);
        gateway::routes::api(r);
    });
    let described = documented(&gateway::openapi::own::document());
    let undocumented: Vec<String> = served
        .difference(&described)
        .map(|e| e.to_string())
        .collect();
    let unserved: Vec<String> = described
        .difference(&served)
        .map(|e| e.to_string())
        .collect();
    assert!(
        undocumented.is_empty() && unserved.is_empty(),
        "served but not in the document:\n  {}\nin the document but not served:\n  {}",
        undocumented.join("\n  "),
        unserved.join("\n  "),
    );
}

#[test]
fn the_own_document_refers_only_to_what_it_defines() {
    let doc = serde_json::to_value(gateway::openapi::own::document()).unwrap();
    if std::env::var_os("PRINT_DOC").is_some() {
        println!("{}", serde_json::to_string_pretty(&doc).unwrap());
    }
    let undefined = unresolved_references(&doc);
    assert!(undefined.is_empty(), "undefined references: {undefined:?}");

    let schemes: BTreeSet<&String> = doc["components"]["securitySchemes"]
        .as_object()
        .map(|s| s.keys().collect())
        .unwrap_or_default();
    let mut problems = Vec::new();
    let mut operation_ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let id = operation["operationId"].as_str().unwrap_or_default();
            if !operation_ids.insert(id) {
                problems.push(format!("{method} {path}: operationId {id:?} is not unique"));
            }
            let named = operation["security"].as_array().into_iter().flatten();
            for scheme in named.flat_map(|alternative| alternative.as_object().unwrap().keys()) {
                if !schemes.contains(scheme) {
                    problems.push(format!("{method} {path}: no security scheme {scheme}"));
                }
            }
            for (status, response) in operation["responses"].as_object().unwrap() {
                let described = response["description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty());
                if !described {
                    problems.push(format!("{method} {path}: {status} has no description"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// `path` with every `{parameter}` as the segment `p`, so a path the
/// document writes and one a request carries compare equal.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') && segment.ends_with('}') {
                "p"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn endpoints_of(doc: &Value) -> BTreeSet<Endpoint> {
    let mut endpoints = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            endpoints.insert(Endpoint::new(method, path));
        }
    }
    endpoints
}

#[tokio::test]
async fn the_public_document_describes_every_operation_a_client_can_reach_and_no_other() {
    let stack = Stack::start().await;
    // Public: no credentials needed to read the contract.
    let doc = fetch_json(
        stack
            .http
            .get(format!("{}/api/v1/openapi.json", stack.gateway)),
    )
    .await;
    assert_eq!(doc["openapi"], "3.1.0");
    let public = endpoints_of(&doc);

    let own = listed(|r| {
        confab_kit::server::routes(r);
        gateway::routes::api(r);
    });
    let chat_doc = chat_service::openapi::document();
    let chat = listed(|r| {
        confab_kit::server::routes(r);
        chat_service::api::api(r, &chat_doc);
    });
    let llm_doc = llm_proxy_service::openapi::document();
    let llm = listed(|r| {
        confab_kit::server::routes(r);
        llm_proxy_service::routes::api(r, &llm_doc);
    });
    let upstream_routes = |name: &str| match name {
        "chat" => &chat,
        "llm_proxy" => &llm,
        other => panic!("no routes known for upstream {other}"),
    };

    // Forward: each public operation is the gateway's own, or the routing
    // table takes it to an operation its upstream serves.
    let table = stack.routing_table();
    let mut problems = Vec::new();
    for endpoint in &public {
        if own.contains(endpoint) {
            continue;
        }
        let request = concrete(&endpoint.path);
        let Some((route, target)) = table.resolve(&RequestPath::parse(&request).unwrap(), "")
        else {
            problems.push(format!(
                "{endpoint}: documented, but neither served nor routed"
            ));
            continue;
        };
        let served = upstream_routes(route.upstream.name())
            .iter()
            .any(|e| e.method == endpoint.method && concrete(&e.path) == target);
        if !served {
            problems.push(format!(
                "{endpoint}: documented, routed to {} {target}, which does not serve it",
                route.upstream.name()
            ));
        }
    }
    // Back: each own route, and each upstream route the table reaches, is
    // in the document. The upstream's paths are tried under every route
    // to it; a public path counts when it routes back to that very path.
    for endpoint in &own {
        if !public.contains(endpoint) {
            problems.push(format!("{endpoint}: served by the gateway, not documented"));
        }
    }
    for route in table.routes() {
        for endpoint in upstream_routes(route.upstream.name()) {
            let Some(rest) = endpoint.path.strip_prefix(&route.rewrite) else {
                continue;
            };
            if !(rest.is_empty() || rest.starts_with('/')) {
                continue;
            }
            let candidate = format!("{}{rest}", route.prefix);
            let reaches = table
                .resolve(&RequestPath::parse(&concrete(&candidate)).unwrap(), "")
                .is_some_and(|(to, target)| {
                    to.prefix == route.prefix && target == concrete(&endpoint.path)
                });
            let documented = public.contains(&Endpoint::new(&endpoint.method, &candidate));
            if reaches && !documented && !own.iter().any(|e| e.path == candidate) {
                problems.push(format!(
                    "{} {candidate}: reaches {} {endpoint}, not documented",
                    endpoint.method,
                    route.upstream.name()
                ));
            }
        }
    }
    // Every routing-table entry leads somewhere described.
    for route in table.routes() {
        let under = |e: &&Endpoint| {
            e.path
                .strip_prefix(&*route.prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        };
        if !public.iter().any(|e| under(&e)) {
            problems.push(format!(
                "route {}: nothing documented under it",
                route.prefix
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // And it holds together.
    let undefined = unresolved_references(&doc);
    assert!(undefined.is_empty(), "undefined references: {undefined:?}");
    let mut ids = BTreeSet::new();
    for item in doc["paths"].as_object().unwrap().values() {
        for operation in item.as_object().unwrap().values() {
            let id = operation["operationId"].as_str().unwrap();
            assert!(ids.insert(id.to_owned()), "operationId {id} twice");
        }
    }
}

#[tokio::test]
async fn the_api_reference_page_renders_the_document_under_the_consoles_policy() {
    let stack = Stack::start().await;
    let page = stack
        .http
        .get(format!("{}/api/docs", stack.gateway))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        policy.contains("script-src 'self'")
            && policy.contains("style-src 'self'")
            && !policy.contains("unsafe"),
        "{policy}"
    );
    let html = page.text().await.unwrap();
    assert!(
        html.contains(r#"data-spec-url="/api/v1/openapi.json""#),
        "{html}"
    );
    assert!(
        !html.contains("<script>") && !html.contains("<style"),
        "{html}"
    );
    // Every file the page names (the viewer, its stylesheet, the script that
    // starts it) is served from this origin as what the page loads it as.
    let named = |attribute: &str| -> Vec<String> {
        html.split(&format!(r#"{attribute}=""#))
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .filter(|url| url.starts_with("/assets/"))
            .map(str::to_owned)
            .collect()
    };
    let (scripts, styles) = (named("src"), named("href"));
    assert_eq!((scripts.len(), styles.len()), (2, 2), "{html}");
    for (urls, kind) in [(scripts, "javascript"), (styles, "text/css")] {
        for url in urls {
            let file = stack
                .http
                .get(format!("{}{url}", stack.gateway))
                .send()
                .await
                .unwrap();
            assert_eq!(file.status(), 200, "{url}");
            let content_type = file.headers()["content-type"].to_str().unwrap().to_owned();
            assert!(content_type.contains(kind), "{url}: {content_type}");
        }
    }
}

/// The status line of a WebSocket handshake sent to the gateway over a raw
/// socket, with `connection` as its `Connection` header.
async fn handshake_status(stack: &Stack, token: &str, connection: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = stack.gateway.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let request = format!(
        "GET /ws/chat HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Connection: {connection}\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(2).any(|w| w == b"\r\n") {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before the status line");
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head).to_string();
    line.split(' ').nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_websocket_handshake_is_the_clients_own_and_refused_without_connection_upgrade() {
    let stack = Stack::start().await;
    let user = stack.user("handshaker").await;
    // The document requires `Connection: Upgrade` (RFC 6455 §4.1); the
    // gateway makes its own hop's Connection, but not an upgrade the
    // client did not ask for.
    assert_eq!(
        handshake_status(&stack, &user.token, "keep-alive").await,
        400
    );
    assert_eq!(
        handshake_status(&stack, &user.token, "keep-alive, Upgrade").await,
        101
    );
}

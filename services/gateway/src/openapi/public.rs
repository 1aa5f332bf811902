//! `GET /api/v1/openapi.json`: the public API as one OpenAPI 3.1 document.
//!
//! It is put together from documents that are each generated from their
//! service's code: the gateway's own routes ([`super::own`]) and every
//! upstream's `GET /openapi.json`. An upstream's paths are written as a
//! client calls them, through the routing table (DESIGN §6): a path the
//! table does not reach (`/internal/…`, `/budgets/…`) is not public and is
//! left out, and one the table reaches twice (`/chat/conversations/{id}`
//! and the seed's `/api/chat/sessions/{id}`) is there twice. Proxied
//! operations gain the refusals the gateway itself gives on the way
//! (a key without the route's scope, the chat rate limit, an upstream that
//! is down or slow).
//!
//! Upstreams are asked at most once per [`TTL`], so the document follows a
//! redeployed service without a gateway restart, and a flood of requests
//! here does not become one to every service.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use serde_json::{Map, Value, json};
use tokio::sync::Mutex;

use crate::error::GatewayError;
use crate::proxy::headers;
use crate::proxy::routing::{Route, RoutingTable};

/// How long a composed document is served before the upstreams are asked
/// again: 30 s, so a service deployed with new routes shows them within
/// half a minute, while the document costs the upstreams two requests a
/// minute at most.
pub const TTL: Duration = Duration::from_secs(30);

/// What the whole API is, for the reference's first page.
const DESCRIPTION: &str = "\
Confab's public HTTP API, as the gateway serves it: accounts and tokens, \
conversations with AI agents and their turns (JSON, Server-Sent Events, \
WebSocket), the OpenAI-compatible chat completions, agents, the LLM calls \
and traces the agents made, usage and budgets, and administration.

**Credentials.** `Authorization: Bearer` with an access token from \
`POST /api/v1/auth/login` (a JWT, 30 minutes; renew it with \
`POST /api/v1/auth/refresh`) or a personal API key (`cfk_…`, \
`POST /api/v1/api-keys`; its scopes `chat`, `llm`, `read` decide which \
routes it may use). The web console signs in with an HttpOnly cookie \
instead. A WebSocket may carry its token as `?token=`.

**Errors.** Every refusal is `{\"error\":{\"code\",\"message\",\"request_id\"}}` \
with the status that fits; each operation lists the codes it answers. A \
429 carries `Retry-After`.

**Streams.** A streamed turn is `text/event-stream`, one JSON event per \
`data:` line (the `ChatEvent` schema); a dropped client may re-attach to \
the turn in flight.";

/// What a path segment the gateway forwards may hold: anything but `/`,
/// `\`, NUL and `%` (a value with `%` is encoded twice on the way, which
/// the gateway refuses), and not `.` or `..` (see `crate::proxy::path`).
/// Without lookarounds, which not every JSON Schema tool reads.
const FORWARDED_SEGMENT: &str =
    r"^([^/\\%\x00.][^/\\%\x00]*|\.[^/\\%\x00.][^/\\%\x00]*|\.\.[^/\\%\x00]+)$";

/// The methods an OpenAPI path item can hold.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The document, composed on demand and kept for [`TTL`].
pub struct PublicDocument {
    /// The gateway's own document, as JSON.
    own: Value,
    http: reqwest::Client,
    cache: Mutex<Option<(Instant, Bytes)>>,
}

impl PublicDocument {
    pub fn new(own: &utoipa::openapi::OpenApi, timeout: Duration) -> anyhow::Result<Self> {
        Ok(Self {
            own: serde_json::to_value(own)?,
            http: reqwest::Client::builder().timeout(timeout).build()?,
            cache: Mutex::new(None),
        })
    }

    /// The document as served. Requests that arrive while it is being
    /// composed wait for that one (the lock is held across the fetches).
    pub async fn current(&self, table: &RoutingTable) -> Result<Bytes, GatewayError> {
        let mut cache = self.cache.lock().await;
        if let Some((at, body)) = cache.as_ref()
            && at.elapsed() < TTL
        {
            return Ok(body.clone());
        }
        let mut upstreams = Vec::new();
        for (name, bases) in upstreams_of(table) {
            if let Some(doc) = self.fetch(&name, &bases).await? {
                upstreams.push((name, doc));
            }
        }
        let doc = compose(&self.own, &upstreams, table);
        let body =
            Bytes::from(serde_json::to_vec(&doc).map_err(|e| GatewayError::Internal(e.into()))?);
        *cache = Some((Instant::now(), body.clone()));
        Ok(body)
    }

    /// `GET /openapi.json` of one of `bases` (the upstream's instances, in
    /// order until one answers). `None`: the upstream has no document (it
    /// answered 404: not a Confab service); its routes are left out.
    async fn fetch(&self, name: &str, bases: &[String]) -> Result<Option<Value>, GatewayError> {
        for base in bases {
            let response = match self.http.get(format!("{base}/openapi.json")).send().await {
                Ok(response) => response,
                Err(error) if error.is_connect() => {
                    tracing::warn!(upstream = name, %base, %error, "no OpenAPI document: the instance refused the connection");
                    continue;
                }
                Err(error) if error.is_timeout() => return Err(GatewayError::UpstreamTimeout),
                Err(error) => {
                    tracing::warn!(upstream = name, %base, %error, "no OpenAPI document");
                    return Err(GatewayError::UpstreamUnavailable);
                }
            };
            if response.status() == reqwest::StatusCode::NOT_FOUND {
                tracing::warn!(
                    upstream = name,
                    "the upstream serves no /openapi.json; its routes are not in the public document"
                );
                return Ok(None);
            }
            if !response.status().is_success() {
                tracing::warn!(upstream = name, status = %response.status(), "no OpenAPI document");
                return Err(GatewayError::UpstreamUnavailable);
            }
            return response.json().await.map(Some).map_err(|error| {
                tracing::warn!(upstream = name, %error, "the upstream's OpenAPI document is not JSON");
                GatewayError::UpstreamUnavailable
            });
        }
        Err(GatewayError::UpstreamUnavailable)
    }
}

/// Each upstream the table routes to, once, with its instances' URLs.
fn upstreams_of(table: &RoutingTable) -> BTreeMap<String, Vec<String>> {
    let mut upstreams = BTreeMap::new();
    for route in table.routes() {
        upstreams
            .entry(route.upstream.name().to_string())
            .or_insert_with(|| {
                route
                    .upstream
                    .instances()
                    .iter()
                    .map(|instance| instance.base_url.to_string())
                    .collect()
            });
    }
    upstreams
}

/// The public document: `own` with each of `upstreams`' paths at their
/// public place. Own paths win a clash: the gateway serves them before
/// its routing table is looked at.
pub fn compose(own: &Value, upstreams: &[(String, Value)], table: &RoutingTable) -> Value {
    let mut doc = own.clone();
    doc["info"] = json!({
        "title": "Confab API",
        "version": crate::SERVICE.version,
        "description": DESCRIPTION,
    });
    let mut operation_ids: HashSet<String> = operation_ids(&doc);
    for (name, upstream) in upstreams {
        let upstream = merge_components(&mut doc, name, upstream);
        merge_tags(&mut doc, &upstream);
        let Some(paths) = upstream.get("paths").and_then(Value::as_object) else {
            continue;
        };
        for (path, item) in paths {
            for route in table.routes() {
                if **route.upstream.name() != *name.as_str() {
                    continue;
                }
                let Some(public) = public_path(path, route, table) else {
                    continue;
                };
                let public_paths = doc
                    .as_object_mut()
                    .map(|doc| doc.entry("paths").or_insert_with(|| json!({})));
                let Some(Value::Object(public_paths)) = public_paths else {
                    continue;
                };
                if public_paths.contains_key(&public) {
                    continue;
                }
                let item = proxied(item, route, name, &mut operation_ids);
                public_paths.insert(public, item);
            }
        }
    }
    doc
}

/// Where `path` of `route`'s upstream is public: the route's prefix
/// instead of its rewrite, if the path is under the rewrite and the
/// public path is routed by `route` itself (the longest prefix wins, so
/// another route may take it).
fn public_path(path: &str, route: &Route, table: &RoutingTable) -> Option<String> {
    let rest = path.strip_prefix(&*route.rewrite)?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    let public = format!("{}{rest}", route.prefix);
    let routed_by = table.route_of(&public)?;
    (routed_by.prefix == route.prefix).then_some(public)
}

/// A proxied path item: its operations with ids unique in the document
/// (`{upstream}_{id}`) and the gateway's own refusals.
fn proxied(item: &Value, route: &Route, upstream: &str, ids: &mut HashSet<String>) -> Value {
    let mut item = item.clone();
    for method in METHODS {
        let Some(operation) = item.get_mut(method).and_then(Value::as_object_mut) else {
            continue;
        };
        let id = operation
            .get("operationId")
            .and_then(Value::as_str)
            .unwrap_or(method);
        let mut unique = format!("{upstream}_{id}");
        let mut n = 2;
        while ids.contains(&unique) {
            unique = format!("{upstream}_{id}_{n}");
            n += 1;
        }
        ids.insert(unique.clone());
        operation.insert("operationId".into(), Value::String(unique));
        // The headers the gateway strips are not the client's to send.
        if let Some(Value::Array(parameters)) = operation.get_mut("parameters") {
            parameters.retain(|parameter| {
                parameter.get("in").and_then(Value::as_str) != Some("header")
                    || parameter
                        .get("name")
                        .and_then(Value::as_str)
                        .is_some_and(headers::reaches_upstream)
            });
        }
        // The client's credentials are the gateway's: a token or an API
        // key, or the console's cookie; the services' own (the service
        // token) is the gateway's to send.
        if route.inject_auth {
            operation.insert(
                "security".into(),
                json!([{ confab_kit::api::BEARER: [] }, { super::own::COOKIE: [] }]),
            );
        }
        // A path parameter is one segment the gateway forwards: its value
        // is held to that (`crate::proxy::path`), unless the service
        // describes it more narrowly itself.
        let mut has_path_parameters = false;
        if let Some(Value::Array(parameters)) = operation.get_mut("parameters") {
            for parameter in parameters.iter_mut() {
                if parameter.get("in").and_then(Value::as_str) != Some("path") {
                    continue;
                }
                has_path_parameters = true;
                if let Some(Value::Object(schema)) = parameter.get_mut("schema")
                    && !schema.contains_key("pattern")
                {
                    schema.insert("pattern".into(), Value::String(FORWARDED_SEGMENT.into()));
                }
            }
        }
        let responses = operation.entry("responses").or_insert_with(|| json!({}));
        let Some(responses) = responses.as_object_mut() else {
            continue;
        };
        let mut refusals = vec![
            (
                "502",
                "`upstream_unavailable`: the service behind the gateway cannot be reached.",
            ),
            (
                "504",
                "`upstream_timeout`: the service behind the gateway did not answer in time.",
            ),
        ];
        if route.inject_auth {
            refusals.push((
                "403",
                "`insufficient_scope`: an API key without the scope this route needs; \
                 `csrf_rejected`: a request signed in by the console's cookie from another origin.",
            ));
        }
        if route.rate_limited && method == "post" {
            refusals.push((
                "429",
                "`rate_limited`: over the per-user limit of chat posts a minute (see Retry-After).",
            ));
        }
        if has_path_parameters {
            refusals.push((
                "400",
                "`bad_path`: a path the gateway does not forward (a `.` or `..` segment, an encoded `/`, a `\\`, a NUL, or one encoded too many times).",
            ));
        }
        for (status, description) in refusals {
            match responses.get_mut(status) {
                None => {
                    responses.insert(status.to_owned(), error_response(description));
                }
                // The service's own refusals with this status, and the
                // gateway's beside them.
                Some(Value::Object(response)) => {
                    if let Some(Value::String(theirs)) = response.get_mut("description")
                        && !theirs.contains(description)
                    {
                        theirs.push(' ');
                        theirs.push_str(description);
                    }
                }
                Some(_) => {}
            }
        }
    }
    item
}

/// Adds the tags `upstream` describes that `doc` does not.
fn merge_tags(doc: &mut Value, upstream: &Value) {
    let Some(theirs) = upstream.get("tags").and_then(Value::as_array) else {
        return;
    };
    if !doc.get("tags").is_some_and(Value::is_array) {
        doc["tags"] = json!([]);
    }
    if let Some(ours) = doc.get_mut("tags").and_then(Value::as_array_mut) {
        for tag in theirs {
            if !ours.iter().any(|held| held.get("name") == tag.get("name")) {
                ours.push(tag.clone());
            }
        }
    }
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    })
}

fn operation_ids(doc: &Value) -> HashSet<String> {
    let mut ids = HashSet::new();
    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        for item in paths.values() {
            for method in METHODS {
                if let Some(id) = item
                    .get(method)
                    .and_then(|op| op.get("operationId"))
                    .and_then(Value::as_str)
                {
                    ids.insert(id.to_owned());
                }
            }
        }
    }
    ids
}

/// Adds `upstream`'s components to `doc`'s, and answers `upstream` as it
/// must be read in `doc`: a schema whose name `doc` already holds with
/// other content is renamed `{name}_{schema}`, and the upstream's
/// references to it follow.
fn merge_components(doc: &mut Value, name: &str, upstream: &Value) -> Value {
    let mut upstream = upstream.clone();
    let mut renames: BTreeMap<String, String> = BTreeMap::new();
    let ours = doc
        .get("components")
        .and_then(|c| c.get("schemas"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if let Some(schemas) = upstream
        .get("components")
        .and_then(|c| c.get("schemas"))
        .and_then(Value::as_object)
    {
        for (schema, body) in schemas {
            if ours.get(schema).is_some_and(|held| held != body) {
                renames.insert(schema.clone(), format!("{name}_{schema}"));
            }
        }
    }
    if !renames.is_empty() {
        rename_refs(&mut upstream, &renames);
        if let Some(schemas) = upstream
            .pointer_mut("/components/schemas")
            .and_then(Value::as_object_mut)
        {
            let renamed: Map<String, Value> = std::mem::take(schemas)
                .into_iter()
                .map(|(k, v)| (renames.get(&k).cloned().unwrap_or(k), v))
                .collect();
            *schemas = renamed;
        }
    }
    if let Some(components) = upstream.get("components").and_then(Value::as_object)
        && let Some(doc) = doc.as_object_mut()
    {
        let target = doc.entry("components").or_insert_with(|| json!({}));
        if let Some(target) = target.as_object_mut() {
            for (kind, entries) in components {
                let Some(entries) = entries.as_object() else {
                    continue;
                };
                let into = target.entry(kind.clone()).or_insert_with(|| json!({}));
                if let Some(into) = into.as_object_mut() {
                    for (key, value) in entries {
                        into.entry(key.clone()).or_insert_with(|| value.clone());
                    }
                }
            }
        }
    }
    upstream
}

/// Rewrites every `#/components/schemas/{old}` reference in `value`.
fn rename_refs(value: &mut Value, renames: &BTreeMap<String, String>) {
    const PREFIX: &str = "#/components/schemas/";
    match value {
        Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                if key == "$ref"
                    && let Value::String(target) = inner
                    && let Some(new) = target.strip_prefix(PREFIX).and_then(|old| renames.get(old))
                {
                    *target = format!("{PREFIX}{new}");
                } else {
                    rename_refs(inner, renames);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rename_refs(v, renames)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::api_keys::Scope;
    use crate::proxy::instances::UpstreamConfig;
    use crate::proxy::routing::RouteConfig;

    fn table() -> RoutingTable {
        let upstreams = HashMap::from([
            (
                "chat".to_owned(),
                UpstreamConfig::from("http://chat:8003".to_owned()),
            ),
            (
                "llm".to_owned(),
                UpstreamConfig::from("http://llm:8006".to_owned()),
            ),
        ]);
        let route = |prefix: &str, upstream: &str, rewrite: &str, rate_limited: bool| RouteConfig {
            prefix: prefix.into(),
            upstream: upstream.into(),
            rewrite: rewrite.into(),
            inject_auth: true,
            rate_limited,
            scope: Scope::Chat,
            body_auth: true,
        };
        RoutingTable::new(
            &[
                route("/api/v1/chat", "chat", "/chat/unified", true),
                route(
                    "/api/v1/chat/completions",
                    "chat",
                    "/chat/completions",
                    true,
                ),
                route("/api/v1/conversations", "chat", "/chat/conversations", true),
                route("/api/chat/sessions", "chat", "/chat/sessions", false),
                route("/api/v1/llm", "llm", "/v1", false),
            ],
            &upstreams,
            Duration::from_secs(5),
            &[],
        )
        .unwrap()
    }

    fn operation(id: &str) -> Value {
        json!({"operationId": id, "responses": {"200": {"description": "ok"}}})
    }

    fn own() -> Value {
        json!({
            "openapi": "3.1.0",
            "paths": {"/api/v1/auth/login": {"post": operation("login")}},
            "components": {"schemas": {"ErrorBody": {"type": "object"}}}
        })
    }

    fn paths(doc: &Value) -> Vec<&str> {
        doc["paths"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect()
    }

    #[test]
    fn upstream_paths_are_published_where_the_routing_table_serves_them() {
        let chat = json!({"paths": {
            "/chat/unified": {"post": operation("unified")},
            "/chat/completions": {"post": operation("completions")},
            "/chat/conversations/{id}": {"get": operation("get")},
            "/chat/sessions/{id}": {"get": operation("get_session")},
            "/internal/users/{id}": {"delete": operation("delete_user")},
            "/health": {"get": operation("health")},
            // Under the unified route's rewrite, but its public place
            // belongs to the longer prefix /api/v1/chat/completions.
            "/chat/unified/completions": {"post": operation("shadowed")}
        }});
        let llm = json!({"paths": {
            "/v1/chat/completions": {"post": operation("create")},
            "/v1/models/{model}": {"get": operation("get")},
            "/budgets/{subject}/{id}": {"put": operation("store")}
        }});
        let doc = compose(
            &own(),
            &[("chat".into(), chat), ("llm".into(), llm)],
            &table(),
        );
        assert_eq!(
            paths(&doc),
            [
                "/api/chat/sessions/{id}",
                "/api/v1/auth/login",
                "/api/v1/chat",
                "/api/v1/chat/completions",
                "/api/v1/conversations/{id}",
                "/api/v1/llm/chat/completions",
                "/api/v1/llm/models/{model}",
            ]
        );
        assert_eq!(
            doc["paths"]["/api/v1/chat/completions"]["post"]["operationId"],
            "chat_completions"
        );
    }

    #[test]
    fn the_document_is_the_whole_apis_with_every_services_tags() {
        let own = json!({
            "info": {"title": "gateway", "version": "0"},
            "paths": {},
            "tags": [{"name": "auth"}]
        });
        let chat = json!({"paths": {}, "tags": [{"name": "conversations"}, {"name": "auth"}]});
        let llm = json!({"paths": {}, "tags": [{"name": "llm-calls"}]});
        let doc = compose(
            &own,
            &[("chat".into(), chat), ("llm".into(), llm)],
            &table(),
        );
        assert_eq!(doc["info"]["title"], "Confab API");
        let tags: Vec<&str> = doc["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(tags, ["auth", "conversations", "llm-calls"]);
    }

    #[test]
    fn operation_ids_stay_unique_across_services() {
        let chat = json!({"paths": {"/chat/conversations/{id}": {"get": operation("get")}}});
        let llm = json!({"paths": {"/v1/models/{model}": {"get": operation("get")}}});
        let chat_again = json!({"paths": {"/chat/sessions/{id}": {"get": operation("get")}}});
        let doc = compose(
            &own(),
            &[
                ("chat".into(), chat),
                ("llm".into(), llm),
                ("chat".into(), chat_again),
            ],
            &table(),
        );
        let ids = operation_ids(&doc);
        assert_eq!(ids.len(), 4, "{ids:?}");
        assert!(ids.contains("chat_get") && ids.contains("chat_get_2") && ids.contains("llm_get"));
    }

    #[test]
    fn proxied_operations_describe_the_gateways_own_refusals() {
        let chat = json!({"paths": {
            "/chat/unified": {"post": operation("unified")},
            "/chat/sessions/{id}": {"get": operation("get")}
        }});
        let doc = compose(&own(), &[("chat".into(), chat)], &table());
        let unified = &doc["paths"]["/api/v1/chat"]["post"]["responses"];
        for status in ["200", "403", "429", "502", "504"] {
            assert!(unified.get(status).is_some(), "{status} missing: {unified}");
        }
        assert_eq!(
            unified["502"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorBody"
        );
        let session = &doc["paths"]["/api/chat/sessions/{id}"]["get"]["responses"];
        assert!(session.get("429").is_none(), "a GET is not rate limited");
    }

    #[test]
    fn a_proxied_operation_takes_the_gateways_credentials_and_headers() {
        let parameter = |name: &str, place: &str| json!({"name": name, "in": place});
        let chat = json!({"paths": {"/chat/conversations/{id}": {"get": {
            "operationId": "get",
            "security": [{"bearer": []}, {"service_token": []}],
            "parameters": [
                json!({"name": "id", "in": "path", "schema": {"type": "string"}}),
                parameter("X-Service-Token", "header"),
                parameter("X-User-Id", "header"),
                parameter("x-conversation-id", "header"),
                parameter("Last-Event-ID", "header"),
                parameter("Upgrade", "header")
            ],
            "responses": {"400": {"description": "`bad_query`: no."}}
        }}}});
        let doc = compose(&own(), &[("chat".into(), chat)], &table());
        let operation = &doc["paths"]["/api/v1/conversations/{id}"]["get"];
        assert_eq!(
            operation["security"],
            json!([{"bearer": []}, {"cookie": []}])
        );
        let names: Vec<&str> = operation["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["id", "Last-Event-ID", "Upgrade"]);
        assert_eq!(
            operation["parameters"][0]["schema"]["pattern"],
            FORWARDED_SEGMENT
        );
        let bad_request = operation["responses"]["400"]["description"]
            .as_str()
            .unwrap();
        assert!(
            bad_request.starts_with("`bad_query`: no.") && bad_request.contains("`bad_path`"),
            "{bad_request}"
        );
    }

    #[test]
    fn a_schema_name_two_services_use_differently_is_kept_apart() {
        let chat = json!({
            "paths": {"/chat/conversations/{id}": {"get": {"responses": {"200": {
                "description": "ok",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Page"}}}
            }}}}},
            "components": {"schemas": {
                "Page": {"type": "object", "properties": {"items": {"type": "array"}}},
                "ErrorBody": {"type": "object"}
            }}
        });
        let llm = json!({
            "paths": {"/v1/models/{model}": {"get": {"responses": {"200": {
                "description": "ok",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Page"}}}
            }}}}},
            "components": {"schemas": {"Page": {"type": "string"}}}
        });
        let doc = compose(
            &own(),
            &[("chat".into(), chat), ("llm".into(), llm)],
            &table(),
        );
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        assert_eq!(schemas["Page"]["type"], "object");
        assert_eq!(schemas["llm_Page"]["type"], "string");
        assert!(
            !schemas.contains_key("chat_ErrorBody"),
            "equal schemas are shared"
        );
        let reference = |path: &str| {
            doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
                ["$ref"]
                .clone()
        };
        assert_eq!(
            reference("/api/v1/conversations/{id}"),
            "#/components/schemas/Page"
        );
        assert_eq!(
            reference("/api/v1/llm/models/{model}"),
            "#/components/schemas/llm_Page"
        );
    }
}

//! The gateway's own routes and its OpenAPI document of them agree: every
//! route it registers is described, every described operation is served,
//! and the document holds together (its references and security schemes
//! are defined, its operation ids unique, every response described).

use std::collections::BTreeSet;

use confab_kit::api::{Endpoint, documented, listed};
use serde_json::Value;

/// What kit's shared document describes that the gateway serves under
/// another name: the lead is replacing `/openapi.json` with the public
/// `/api/v1/openapi.json` (the merged document).
fn not_served_by_that_name() -> Endpoint {
    Endpoint::new("GET", "/openapi.json")
}

#[test]
fn every_own_route_is_documented_and_every_documented_operation_is_served() {
    let served = listed(|r| {
        confab_kit::server::routes(r);
        gateway::routes::api(r);
    });
    let mut described = documented(&gateway::openapi::own::document());
    described.remove(&not_served_by_that_name());
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
    let schemas: BTreeSet<String> = doc["components"]["schemas"]
        .as_object()
        .map(|s| s.keys().cloned().collect())
        .unwrap_or_default();
    let mut refs = BTreeSet::new();
    collect_refs(&doc, &mut refs);
    let undefined: Vec<&String> = refs
        .iter()
        .filter(|r| {
            r.strip_prefix("#/components/schemas/")
                .is_none_or(|name| !schemas.contains(name))
        })
        .collect();
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

fn collect_refs(value: &Value, refs: &mut BTreeSet<String>) {
    match value {
        Value::Object(fields) => {
            for (key, field) in fields {
                match (key.as_str(), field) {
                    ("$ref", Value::String(target)) => {
                        refs.insert(target.clone());
                    }
                    _ => collect_refs(field, refs),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_refs(item, refs)),
        _ => {}
    }
}

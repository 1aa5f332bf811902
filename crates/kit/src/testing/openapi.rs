//! What every service's OpenAPI test asks of a document: that each `$ref`
//! in it points at something in it.

use std::collections::BTreeSet;

use serde_json::Value;

/// Every `$ref` in `doc`, as written.
pub fn references(doc: &Value) -> BTreeSet<String> {
    fn walk(value: &Value, found: &mut BTreeSet<String>) {
        match value {
            Value::Object(fields) => {
                for (key, field) in fields {
                    match (key.as_str(), field) {
                        ("$ref", Value::String(target)) => {
                            found.insert(target.clone());
                        }
                        _ => walk(field, found),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| walk(item, found)),
            _ => {}
        }
    }
    let mut found = BTreeSet::new();
    walk(doc, &mut found);
    found
}

/// The `$ref`s of `doc` that point at nothing in it. A reference resolves
/// only as a local JSON pointer (`#/components/schemas/Message`).
pub fn unresolved_references(doc: &Value) -> Vec<String> {
    references(doc)
        .into_iter()
        .filter(|target| {
            target
                .strip_prefix('#')
                .and_then(|pointer| doc.pointer(pointer))
                .is_none()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_reference_to_nothing_or_outside_the_document_is_unresolved() {
        let doc = json!({
            "components": {"schemas": {"Message": {"type": "object"}}},
            "paths": {"/m": {"get": {"responses": {"200": {"content": {"application/json": {
                "schema": {"oneOf": [
                    {"$ref": "#/components/schemas/Message"},
                    {"$ref": "#/components/schemas/Gone"},
                    {"$ref": "other.json#/Message"},
                ]}
            }}}}}}},
        });
        assert_eq!(references(&doc).len(), 3);
        assert_eq!(
            unresolved_references(&doc),
            ["#/components/schemas/Gone", "other.json#/Message"]
        );
    }
}

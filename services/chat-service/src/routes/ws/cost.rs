//! A reply's cost in the frames that end a turn (issue 21): in the
//! envelope's last `assistant_response`, `data.token_usage.cost`; in the
//! compact `done`, `result.cost`; each only when the agent reported one.
//!
//! The protocol's frame types (`confab_protocol::ws`) show tokens only and
//! are not this service's to change, so the cost is added to the frame's
//! JSON, the form every frame is sent in (`ws::to_text` also goes through a
//! `serde_json::Value`: the same bytes as without it, plus the cost).

use confab_protocol::chat::Cost;
use serde::Serialize;
use serde_json::{Value, json};

/// `frame` as sent, with `cost` put in the object at `pointer` (a JSON
/// Pointer) when there is a cost and such an object.
pub fn with_cost(frame: &impl Serialize, pointer: &str, cost: Option<Cost>) -> String {
    // The frames hold only strings, numbers and JSON values, which always
    // encode.
    let mut value = serde_json::to_value(frame).unwrap_or_else(|_| json!({}));
    if let (Some(cost), Some(object)) = (
        cost,
        value.pointer_mut(pointer).and_then(Value::as_object_mut),
    ) {
        object.insert("cost".into(), json!(cost));
    }
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cost_goes_where_it_is_pointed_and_nowhere_without_one() {
        let frame = json!({"type": "done", "result": {"tokens_used": 3}});
        let cost = Cost::from_units(0.25);
        assert_eq!(
            with_cost(&frame, "/result", cost),
            json!({"type": "done", "result": {"tokens_used": 3, "cost": 0.25}}).to_string()
        );
        assert_eq!(with_cost(&frame, "/result", None), frame.to_string());
        // No usage (null): nothing to put it in.
        let frame = json!({"data": {"token_usage": null}});
        assert_eq!(
            with_cost(&frame, "/data/token_usage", cost),
            frame.to_string()
        );
    }
}

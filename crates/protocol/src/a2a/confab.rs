//! What Confab adds to A2A (DESIGN §8): the `confab` object chat-service
//! puts in a request's metadata, the usage an agent reports in the metadata
//! of its final status, and the `tree_patch` DataPart of the tree agent.
//!
//! Agents are third-party programs too, so the readers here are lenient:
//! a field that is missing or has the wrong type reads as absent, and the
//! rest of the object still counts.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::chat::MessageUsage;

/// `{"confab": {"user_id", "conversation_id", "api_key_id"?, "history",
/// "tree"}}` in a request's metadata.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ConfabMetadata {
    #[serde(default, deserialize_with = "or_none")]
    pub user_id: Option<String>,
    #[serde(default, deserialize_with = "or_none")]
    pub conversation_id: Option<String>,
    /// The personal API key the user started the turn with (its id), so
    /// the agent's LLM calls are counted against that key too; absent when
    /// the user called with a session.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "or_none"
    )]
    pub api_key_id: Option<String>,
    /// The last turns of the conversation, oldest first.
    #[serde(default, deserialize_with = "readable_turns")]
    pub history: Vec<HistoryTurn>,
    /// The conversation's tree document; null or absent when there is none.
    #[serde(default, deserialize_with = "or_none")]
    pub tree: Option<Value>,
}

/// One earlier message of the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryTurn {
    /// `user`, `assistant` or `system`, as chat-service stores it.
    pub role: String,
    pub content: String,
}

impl ConfabMetadata {
    /// The key of the object in the request metadata.
    pub const KEY: &'static str = "confab";

    /// The `confab` object of a request's metadata, if it has one.
    pub fn read(metadata: Option<&Map<String, Value>>) -> Option<Self> {
        let confab = metadata?.get(Self::KEY)?;
        // A value that is not an object holds none of the fields (serde
        // would read an array's items as the fields in order).
        if !confab.is_object() {
            return Some(Self::default());
        }
        // Every field reads leniently, so an object always reads.
        Some(Self::deserialize(confab).unwrap_or_default())
    }

    /// Request metadata holding only this object.
    pub fn into_metadata(self) -> Map<String, Value> {
        Map::from_iter([(Self::KEY.to_owned(), to_value(&self))])
    }
}

/// `{"usage": {"input_tokens", "output_tokens", "cost"?}}` in the metadata
/// of an agent's final status update (or of its task): `cost` in currency
/// units, absent when the agent does not know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageMetadata {
    pub usage: MessageUsage,
}

impl UsageMetadata {
    /// The key of the usage in the metadata.
    pub const KEY: &'static str = "usage";

    /// The usage a status's metadata reports: none when it reports none, or
    /// reports it in another shape.
    pub fn read(metadata: Option<&Map<String, Value>>) -> Option<MessageUsage> {
        MessageUsage::deserialize(metadata?.get(Self::KEY)?).ok()
    }

    /// Status metadata holding only the usage.
    pub fn into_metadata(self) -> Map<String, Value> {
        Map::from_iter([(Self::KEY.to_owned(), to_value(&self.usage))])
    }
}

/// The DataPart `{"tree_patch": [RFC 6902 operations]}` with which an
/// agent edits the conversation's tree. The operations stay JSON here:
/// chat-service checks them against the tree's limits, and refuses a patch
/// it cannot read with an error of its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreePatchPart {
    pub tree_patch: Value,
}

impl TreePatchPart {
    /// The key that marks a DataPart as a tree patch.
    pub const KEY: &'static str = "tree_patch";

    /// The tree patch a DataPart carries: any object with a `tree_patch`
    /// field, whatever else it holds.
    pub fn read(data: &Value) -> Option<Self> {
        let tree_patch = data.as_object()?.get(Self::KEY)?;
        Some(Self {
            tree_patch: tree_patch.clone(),
        })
    }

    /// The part's data.
    pub fn into_data(self) -> Value {
        Value::Object(Map::from_iter([(Self::KEY.to_owned(), self.tree_patch)]))
    }
}

fn to_value<T: Serialize>(value: &T) -> Value {
    // These types hold only strings, numbers and JSON values, which always
    // encode.
    serde_json::to_value(value).unwrap_or_default()
}

/// A field of the wrong type reads as absent.
fn or_none<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let value = Value::deserialize(deserializer)?;
    Ok(Option::<T>::deserialize(value).ok().flatten())
}

/// The turns that have a text role and content; the others are skipped.
fn readable_turns<'de, D>(deserializer: D) -> Result<Vec<HistoryTurn>, D::Error>
where
    D: Deserializer<'de>,
{
    let Value::Array(turns) = Value::deserialize(deserializer)? else {
        return Ok(Vec::new());
    };
    Ok(turns
        .into_iter()
        .filter(Value::is_object)
        .filter_map(|turn| HistoryTurn::deserialize(turn).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::Cost;
    use serde_json::json;

    fn metadata(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn sample() -> ConfabMetadata {
        ConfabMetadata {
            user_id: Some("user-1".into()),
            conversation_id: Some("conv-1".into()),
            api_key_id: None,
            history: vec![
                HistoryTurn {
                    role: "user".into(),
                    content: "What is 6 × 7?".into(),
                },
                HistoryTurn {
                    role: "assistant".into(),
                    content: "42".into(),
                },
            ],
            tree: Some(json!({"id": "root", "label": "root", "children": []})),
        }
    }

    #[test]
    fn confab_metadata_round_trips_in_the_shape_chat_service_always_sent() {
        let written = Value::Object(sample().into_metadata());
        let before = json!({"confab": {
            "user_id": "user-1",
            "conversation_id": "conv-1",
            "history": [
                {"role": "user", "content": "What is 6 × 7?"},
                {"role": "assistant", "content": "42"},
            ],
            "tree": {"id": "root", "label": "root", "children": []},
        }});
        assert_eq!(written.to_string(), before.to_string());
        assert_eq!(
            ConfabMetadata::read(Some(&metadata(written))),
            Some(sample())
        );
    }

    #[test]
    fn confab_metadata_reads_what_it_can_and_skips_the_rest() {
        let sent = metadata(json!({
            "other_platform": {"x": 1},
            "confab": {
                "user_id": 7,
                "conversation_id": "conv-1",
                "history": [
                    {"role": "user", "content": "hi"},
                    {"role": "user"},
                    ["assistant", "hello"],
                    {"role": "tool", "content": "{}", "tool_call_id": "c1"},
                ],
                "tree": null,
                "extra": true,
            },
        }));
        let read = ConfabMetadata::read(Some(&sent)).unwrap();
        assert_eq!(read.user_id, None);
        assert_eq!(read.conversation_id.as_deref(), Some("conv-1"));
        assert_eq!(
            read.history,
            vec![
                HistoryTurn {
                    role: "user".into(),
                    content: "hi".into()
                },
                HistoryTurn {
                    role: "tool".into(),
                    content: "{}".into()
                },
            ]
        );
        assert_eq!(read.tree, None);

        for not_an_object in [json!("yes"), json!(["user-1", "conv-1"])] {
            let sent = metadata(json!({ "confab": not_an_object }));
            assert_eq!(
                ConfabMetadata::read(Some(&sent)),
                Some(ConfabMetadata::default())
            );
        }
        assert_eq!(ConfabMetadata::read(Some(&metadata(json!({"x": 1})))), None);
        assert_eq!(ConfabMetadata::read(None), None);
    }

    #[test]
    fn usage_metadata_round_trips_as_agents_report_it() {
        let usage = MessageUsage::tokens(120, 35);
        let written = UsageMetadata { usage }.into_metadata();
        assert_eq!(
            Value::Object(written.clone()).to_string(),
            json!({"usage": {"input_tokens": 120, "output_tokens": 35}}).to_string()
        );
        assert_eq!(UsageMetadata::read(Some(&written)), Some(usage));
        let parsed: UsageMetadata = serde_json::from_value(Value::Object(written)).unwrap();
        assert_eq!(parsed.usage, usage);

        let priced = MessageUsage {
            cost: Cost::from_units(0.0025),
            ..usage
        };
        let written = UsageMetadata { usage: priced }.into_metadata();
        assert_eq!(
            Value::Object(written.clone()).to_string(),
            json!({"usage": {"input_tokens": 120, "output_tokens": 35, "cost": 0.0025}})
                .to_string()
        );
        assert_eq!(UsageMetadata::read(Some(&written)), Some(priced));
    }

    #[test]
    fn an_api_key_id_is_sent_only_when_the_turn_has_one() {
        let with_key = ConfabMetadata {
            api_key_id: Some("key-1".into()),
            ..sample()
        };
        let written = with_key.clone().into_metadata();
        assert_eq!(written["confab"]["api_key_id"], "key-1");
        assert_eq!(ConfabMetadata::read(Some(&written)), Some(with_key));
        let without = sample().into_metadata();
        assert!(without["confab"].get("api_key_id").is_none());
        let unreadable = metadata(json!({"confab": {"user_id": "user-1", "api_key_id": 7}}));
        let read = ConfabMetadata::read(Some(&unreadable)).unwrap();
        assert_eq!(read.api_key_id, None);
        assert_eq!(read.user_id.as_deref(), Some("user-1"));
    }

    #[test]
    fn usage_is_none_when_an_agent_reports_none_or_another_shape() {
        assert_eq!(UsageMetadata::read(None), None);
        assert_eq!(UsageMetadata::read(Some(&Map::new())), None);
        let other = metadata(json!({"usage": {"prompt_tokens": 3, "completion_tokens": 4}}));
        assert_eq!(UsageMetadata::read(Some(&other)), None);
        let extra = metadata(json!({
            "trace": "abc",
            "usage": {"input_tokens": 3, "output_tokens": 4, "cost": 0.1, "model": "x"},
        }));
        assert_eq!(
            UsageMetadata::read(Some(&extra)),
            Some(MessageUsage {
                cost: Cost::from_units(0.1),
                ..MessageUsage::tokens(3, 4)
            })
        );
        // A cost in another shape is an unknown one; the tokens still count.
        let odd_cost = metadata(json!({
            "usage": {"input_tokens": 3, "output_tokens": 4, "cost": "0.1 USD"},
        }));
        assert_eq!(
            UsageMetadata::read(Some(&odd_cost)),
            Some(MessageUsage::tokens(3, 4))
        );
    }

    #[test]
    fn tree_patch_part_round_trips_as_the_tree_agent_sends_it() {
        let ops = json!([
            {"op": "add", "path": "/children/-", "value": {"id": "fruit", "label": "Fruit", "children": []}},
            {"op": "replace", "path": "/label", "value": "Garden"},
        ]);
        let data = TreePatchPart {
            tree_patch: ops.clone(),
        }
        .into_data();
        assert_eq!(
            data.to_string(),
            json!({ "tree_patch": ops.clone() }).to_string()
        );
        assert_eq!(
            TreePatchPart::read(&data),
            Some(TreePatchPart { tree_patch: ops })
        );
        let parsed: TreePatchPart = serde_json::from_value(data.clone()).unwrap();
        assert_eq!(TreePatchPart::read(&data), Some(parsed));
    }

    #[test]
    fn only_an_object_with_a_tree_patch_is_one() {
        assert_eq!(TreePatchPart::read(&json!({"answer": 42})), None);
        assert_eq!(TreePatchPart::read(&json!([[{"op": "remove"}]])), None);
        assert_eq!(
            TreePatchPart::read(&json!({"tree_patch": null, "note": "x"})),
            Some(TreePatchPart {
                tree_patch: Value::Null
            })
        );
    }
}

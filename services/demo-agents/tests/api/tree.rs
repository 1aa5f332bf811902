//! The tree agent over A2A v1.0: edits asked for in words come back as a
//! `tree_patch` DataPart that applies to the tree sent in
//! `metadata.confab.tree`. The agent thinks through a real
//! llm-proxy-service whose builtin model follows `infra/llm-fixtures`.

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::common::{Agents, V1};

/// The tree agent, and the two calls these tests make to it.
struct TreeAgent(Agents);

impl TreeAgent {
    async fn start() -> Self {
        Self(Agents::start(0).await)
    }

    /// `SendStreamingMessage` with the conversation's tree in the metadata
    /// (left out when `tree` is `None`); every stream result, in order.
    async fn send(&self, text: &str, tree: Option<Value>) -> Vec<Value> {
        let mut confab = json!({"user_id": "u1", "conversation_id": "c1"});
        if let Some(tree) = tree {
            confab["tree"] = tree;
        }
        let params = json!({
            "message": {"messageId": "m1", "role": "ROLE_USER", "parts": [{"text": text}]},
            "metadata": {"confab": confab}
        });
        self.0
            .stream("tree", V1, "SendStreamingMessage", params)
            .await
            .map(|response| response["result"].clone())
            .collect()
            .await
    }

    async fn get_task(&self, id: &str) -> Value {
        self.0.rpc("tree", V1, "GetTask", json!({"id": id})).await["result"].clone()
    }
}

/// The `tree_patch` ops of every DataPart in the stream.
fn tree_patches(results: &[Value]) -> Vec<Value> {
    results
        .iter()
        .filter_map(|r| r["artifactUpdate"]["artifact"]["parts"].as_array())
        .flatten()
        .filter_map(|part| part["data"].get("tree_patch").cloned())
        .collect()
}

/// The streamed reply text (the "answer" artifact).
fn answer(results: &[Value]) -> String {
    results
        .iter()
        .filter(|r| r["artifactUpdate"]["artifact"]["name"] == "answer")
        .filter_map(|r| r["artifactUpdate"]["artifact"]["parts"][0]["text"].as_str())
        .collect()
}

fn final_state(results: &[Value]) -> &Value {
    &results.last().unwrap()["statusUpdate"]["status"]["state"]
}

/// Applies `ops` to `tree` as chat-service would, with json-patch.
fn applied(tree: Value, ops: &Value) -> Value {
    let patch: json_patch::Patch = serde_json::from_value(ops.clone()).unwrap();
    let mut tree = tree;
    json_patch::patch(&mut tree, &patch).unwrap();
    tree
}

fn garden() -> Value {
    json!({"id": "root", "label": "Garden", "children": [
        {"id": "fruits", "label": "Fruits", "children": [
            {"id": "apples", "label": "Apples", "children": []}
        ]},
        {"id": "veggies", "label": "Veggies", "children": []}
    ]})
}

#[tokio::test]
async fn a_move_streams_a_tree_patch_that_applies_to_the_given_tree() {
    let agent = TreeAgent::start().await;
    let results = agent
        .send("move node apples under veggies", Some(garden()))
        .await;

    let patches = tree_patches(&results);
    assert_eq!(patches.len(), 1, "one tree_patch artifact: {results:?}");
    assert_eq!(
        applied(garden(), &patches[0]),
        json!({"id": "root", "label": "Garden", "children": [
            {"id": "fruits", "label": "Fruits", "children": []},
            {"id": "veggies", "label": "Veggies", "children": [
                {"id": "apples", "label": "Apples", "children": []}
            ]}
        ]})
    );
    assert_eq!(answer(&results), "Done: moved node apples under veggies.");
    let tool_use = results
        .iter()
        .filter_map(|r| r["statusUpdate"]["status"]["message"]["parts"][0]["text"].as_str())
        .find(|text| text.starts_with("move_node("));
    assert!(tool_use.is_some(), "the tool use is reported: {results:?}");
    assert_eq!(final_state(&results), "TASK_STATE_COMPLETED");

    // The patch comes before the end, and stays with the task.
    let patch_at = results
        .iter()
        .position(|r| r["artifactUpdate"]["artifact"]["name"] == "tree_patch")
        .unwrap();
    assert!(patch_at < results.len() - 1);
    let task = agent
        .get_task(results[0]["task"]["id"].as_str().unwrap())
        .await;
    let kept = task["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "tree_patch")
        .unwrap();
    assert_eq!(kept["parts"][0]["data"]["tree_patch"], patches[0]);
}

#[tokio::test]
async fn edits_in_one_task_build_on_each_other_from_a_new_conversations_tree() {
    let agent = TreeAgent::start().await;
    // `{}` is what chat-service stores for a new conversation.
    let results = agent
        .send(
            "add node Fruits with child Apples under root",
            Some(json!({})),
        )
        .await;

    let patches = tree_patches(&results);
    assert_eq!(patches.len(), 1, "{results:?}");
    assert_eq!(
        applied(json!({}), &patches[0]),
        json!({"id": "root", "label": "root", "children": [
            {"id": "fruits", "label": "Fruits", "children": [
                {"id": "apples", "label": "Apples", "children": []}
            ]}
        ]})
    );
    assert_eq!(
        answer(&results),
        "Done: added node apples (Apples) under fruits."
    );
    assert_eq!(final_state(&results), "TASK_STATE_COMPLETED");
}

#[tokio::test]
async fn without_a_tree_the_agent_edits_the_empty_tree() {
    let agent = TreeAgent::start().await;
    let results = agent.send("rename node root to Plans", None).await;
    let patches = tree_patches(&results);
    assert_eq!(patches.len(), 1, "{results:?}");
    assert_eq!(
        applied(
            json!({"id": "root", "label": "root", "children": []}),
            &patches[0]
        ),
        json!({"id": "root", "label": "Plans", "children": []})
    );
}

#[tokio::test]
async fn a_refused_edit_yields_no_patch_and_a_reply_that_says_why() {
    let agent = TreeAgent::start().await;
    for (ask, why) in [
        (
            "remove node nuts",
            "I could not change the tree: there is no node with id 'nuts'.",
        ),
        (
            "move node fruits under apples",
            "I could not change the tree: node 'fruits' cannot be moved under its own descendant 'apples'.",
        ),
        (
            "remove node root",
            "I could not change the tree: the root node cannot be removed.",
        ),
        (
            "add node Apples under veggies",
            "I could not change the tree: a node with id 'apples' already exists.",
        ),
    ] {
        let results = agent.send(ask, Some(garden())).await;
        assert!(tree_patches(&results).is_empty(), "{ask}: {results:?}");
        assert_eq!(answer(&results), why, "{ask}");
        assert_eq!(final_state(&results), "TASK_STATE_COMPLETED", "{ask}");
    }
}

#[tokio::test]
async fn the_tree_agent_describes_itself_in_its_card() {
    let agent = TreeAgent::start().await;
    let card: Value = agent
        .0
        .http
        .get(format!(
            "{}.well-known/agent-card.json",
            agent.0.url("tree")
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(card["name"], "tree");
    assert_eq!(card["skills"][0]["id"], "tree-edit");
    assert!(
        card["skills"][0]["examples"]
            .as_array()
            .unwrap()
            .contains(&json!("move node apples under veggies"))
    );
}

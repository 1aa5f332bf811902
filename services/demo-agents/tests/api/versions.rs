//! The demo agents speak A2A v1.0 and v0.3, chosen per request by the
//! `A2A-Version` header (none means 0.3), and say so in their card.

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::common::{Agents, V1, V03};

fn v03_message(text: &str) -> Value {
    json!({"message": {"kind": "message", "messageId": "m1", "role": "user",
                       "parts": [{"kind": "text", "text": text}]}})
}

#[tokio::test]
async fn a_v03_client_streams_kind_tagged_results_ending_final() {
    let agents = Agents::start(0).await;
    let results: Vec<Value> = agents
        .stream("math", V03, "message/stream", v03_message("What is 6 * 7?"))
        .await
        .map(|response| response["result"].clone())
        .collect()
        .await;
    assert_eq!(results[0]["kind"], "task", "{}", results[0]);
    assert_eq!(results[0]["status"]["state"], "working");
    let text: String = results
        .iter()
        .filter(|r| r["kind"] == "artifact-update")
        .map(|r| {
            let part = &r["artifact"]["parts"][0];
            assert_eq!(part["kind"], "text");
            part["text"].as_str().unwrap()
        })
        .collect();
    assert_eq!(text, "The answer is 42.");
    let reasoning = results
        .iter()
        .find(|r| r["kind"] == "status-update" && r["final"] == false)
        .unwrap();
    assert_eq!(reasoning["status"]["message"]["kind"], "message");
    assert_eq!(reasoning["status"]["message"]["role"], "agent");
    let last = results.last().unwrap();
    assert_eq!(last["kind"], "status-update");
    assert_eq!(last["final"], true);
    assert_eq!(last["status"]["state"], "completed");
    assert!(
        last["metadata"]["usage"]["output_tokens"].as_u64().unwrap() > 0,
        "usage is reported in the final status: {last}"
    );

    let task_id = results[0]["id"].as_str().unwrap();
    let task = agents
        .rpc("math", V03, "tasks/get", json!({"id": task_id}))
        .await;
    assert_eq!(task["result"]["kind"], "task");
    assert_eq!(task["result"]["status"]["state"], "completed");
    assert_eq!(
        task["result"]["artifacts"][0]["parts"][0],
        json!({"kind": "text", "text": "The answer is 42."})
    );
    let ended = agents
        .rpc("math", V03, "tasks/cancel", json!({"id": task_id}))
        .await;
    assert_eq!(ended["error"]["code"], -32002);
    assert_eq!(ended["error"]["data"][0]["reason"], "TASK_NOT_CANCELABLE");
}

#[tokio::test]
async fn send_message_answers_with_the_finished_task_in_either_version() {
    let agents = Agents::start(0).await;
    let v1 = agents
        .rpc(
            "math",
            V1,
            "SendMessage",
            json!({"message": {"messageId": "m1", "role": "ROLE_USER", "parts": [{"text": "What is 6 * 7?"}]}}),
        )
        .await;
    let task = &v1["result"]["task"];
    assert_eq!(task["status"]["state"], "TASK_STATE_COMPLETED", "{v1}");
    assert_eq!(
        task["artifacts"][0]["parts"][0]["text"],
        "The answer is 42."
    );

    // Not blocking: the task comes back at once, still at work.
    let mut params = v03_message("What is 6 * 7?");
    params["configuration"] = json!({"blocking": false});
    let early = agents.rpc("math", V03, "message/send", params).await;
    assert_eq!(early["result"]["kind"], "task", "{early}");
    assert!(
        ["submitted", "working"].contains(&early["result"]["status"]["state"].as_str().unwrap()),
        "{early}"
    );

    let v03 = agents
        .rpc("math", V03, "message/send", v03_message("What is 6 * 7?"))
        .await;
    let task = &v03["result"];
    assert_eq!(task["kind"], "task", "{v03}");
    assert_eq!(task["status"]["state"], "completed");
    assert_eq!(
        task["artifacts"][0]["parts"][0]["text"],
        "The answer is 42."
    );
}

#[tokio::test]
async fn a_v03_client_resubscribes_and_gets_the_snapshot_first() {
    let agents = Agents::start(20).await;
    let words = vec!["word"; 30].join(" ");
    let mut stream = Box::pin(
        agents
            .stream("math", V03, "message/stream", v03_message(&words))
            .await,
    );
    let task_id = stream.next().await.unwrap()["result"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    stream.next().await.unwrap();
    drop(stream);

    let results: Vec<Value> = agents
        .stream("math", V03, "tasks/resubscribe", json!({"id": task_id}))
        .await
        .map(|response| response["result"].clone())
        .collect()
        .await;
    assert_eq!(results[0]["kind"], "task", "the snapshot comes first");
    assert_eq!(results[0]["id"], task_id.as_str());
    let mut text = results[0]["artifacts"][0]["parts"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for result in &results[1..] {
        if let Some(part) = result["artifact"]["parts"][0]["text"].as_str() {
            text.push_str(part);
        }
    }
    assert_eq!(text, words, "no gap, no duplicate");
    assert_eq!(results.last().unwrap()["final"], true);
}

#[tokio::test]
async fn the_version_header_decides_which_method_names_are_understood() {
    let agents = Agents::start(0).await;
    let params = json!({"id": "task-nope"});

    let unsupported = agents
        .rpc("math", Some("2.0"), "GetTask", params.clone())
        .await;
    assert_eq!(unsupported["error"]["code"], -32009, "{unsupported}");
    let info = &unsupported["error"]["data"][0];
    assert_eq!(info["@type"], "type.googleapis.com/google.rpc.ErrorInfo");
    assert_eq!(info["reason"], "VERSION_NOT_SUPPORTED");
    assert_eq!(info["domain"], "a2a-protocol.org");
    assert_eq!(info["metadata"]["requestedVersion"], "2.0");
    assert_eq!(unsupported["id"], 7);

    // No header means 0.3, where the v1.0 names do not exist.
    let no_header = agents.rpc("math", V03, "GetTask", params.clone()).await;
    assert_eq!(no_header["error"]["code"], -32601);
    assert!(
        no_header["error"]["message"]
            .as_str()
            .unwrap()
            .contains("A2A-Version: 1.0"),
        "the error says how to ask for 1.0: {no_header}"
    );
    let v03_name_in_v1 = agents.rpc("math", V1, "tasks/get", params.clone()).await;
    assert_eq!(v03_name_in_v1["error"]["code"], -32601);

    // The right name for the version reaches the method (the task is unknown).
    for (version, method) in [
        (V1, "GetTask"),
        (V03, "tasks/get"),
        (Some("0.3"), "tasks/get"),
    ] {
        let found = agents.rpc("math", version, method, params.clone()).await;
        assert_eq!(found["error"]["code"], -32001, "{method}: {found}");
        assert_eq!(found["error"]["data"][0]["reason"], "TASK_NOT_FOUND");
    }

    // The version may also come as a query parameter.
    let by_query: Value = agents
        .http
        .post(format!("{}?A2A-Version=1.0", agents.url("math")))
        .bearer_auth(&agents.service_token)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": params}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(by_query["error"]["code"], -32001, "{by_query}");
}

#[tokio::test]
async fn the_card_offers_both_versions_to_clients_of_either_generation() {
    let agents = Agents::start(0).await;
    for path in [".well-known/agent-card.json", ".well-known/agent.json"] {
        let card: Value = agents
            .http
            .get(format!("{}{path}", agents.url("text")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let url = agents.url("text");
        assert_eq!(
            card["supportedInterfaces"],
            json!([
                {"url": url, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"},
                {"url": url, "protocolBinding": "JSONRPC", "protocolVersion": "0.3"}
            ])
        );
        assert_eq!(card["url"], url, "the v0.3 endpoint");
        assert_eq!(card["preferredTransport"], "JSONRPC");
        assert_eq!(card["protocolVersion"], "0.3.0");
        assert_eq!(card["capabilities"]["streaming"], true);
    }
}

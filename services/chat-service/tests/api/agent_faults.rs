//! chat-service against real agent processes that misbehave on the wire.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use confab_kit::testing::Stack;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};

use crate::common::{TestApp, start_agents, streamed_text};

/// How the front door before the agent misbehaves with JSON-RPC calls.
#[derive(Clone, Copy)]
enum Fault {
    /// Drops the first n connections, relays the rest.
    Refuse(usize),
    /// Relays the first connection until the agent has sent n SSE events,
    /// then cuts it; later connections are relayed (`agent_lives`), after
    /// `reconnect_delay_ms`, or dropped (the agent died).
    CutAfterEvents {
        events: usize,
        agent_lives: bool,
        reconnect_delay_ms: u64,
    },
}

/// The math agent (its builtin model streaming a chunk every 30 ms) behind
/// a TCP front door that misbehaves as `fault` says; the door's URL.
async fn flaky_agent(fault: Fault, stack: &mut Stack) -> String {
    let agents = start_agents(30, stack).await;
    let agent_port: u16 = agents["math"]
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();

    let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", front.local_addr().unwrap());
    let seen = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        while let Ok((mut client, _)) = front.accept().await {
            // The agent card (a GET) always gets through: the faults are in
            // the JSON-RPC calls, and the card is cached after the first one.
            let mut method = [0u8; 4];
            let is_card = matches!(client.peek(&mut method).await, Ok(4) if &method == b"GET ");
            let nth = if is_card {
                usize::MAX
            } else {
                seen.fetch_add(1, Ordering::SeqCst)
            };
            let cut_after = match fault {
                _ if is_card => None,
                Fault::Refuse(n) if nth < n => continue,
                Fault::CutAfterEvents { events, .. } if nth == 0 => Some(events),
                Fault::CutAfterEvents {
                    agent_lives: false, ..
                } => continue,
                _ => None,
            };
            let delay = match fault {
                Fault::CutAfterEvents {
                    reconnect_delay_ms, ..
                } if nth > 0 && !is_card => reconnect_delay_ms,
                _ => 0,
            };
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
                let mut agent = TcpStream::connect(("127.0.0.1", agent_port)).await.unwrap();
                match cut_after {
                    None => {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut agent).await;
                    }
                    Some(events) => relay_then_cut(client, agent, events).await,
                }
            });
        }
    });
    url
}

/// Relays a connection until the agent has sent `events` SSE events, then
/// closes both sides.
async fn relay_then_cut(client: TcpStream, agent: TcpStream, events: usize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut client_read, mut client_write) = client.into_split();
    let (mut agent_read, mut agent_write) = agent.into_split();
    let upstream = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_read, &mut agent_write).await;
    });
    let mut seen = 0;
    let mut buffer = vec![0u8; 16 * 1024];
    while seen < events {
        let Ok(n) = agent_read.read(&mut buffer).await else {
            break;
        };
        if n == 0 {
            break;
        }
        seen += buffer[..n].windows(2).filter(|w| w == b"\n\n").count();
        if client_write.write_all(&buffer[..n]).await.is_err() {
            break;
        }
    }
    upstream.abort();
}

/// One turn of a new conversation through chat-service, whose `math`
/// agent is behind the front door: its events, and the persisted messages.
async fn turn_through(
    agent_url: String,
    stack: &mut Stack,
    message: &str,
) -> (Vec<Value>, Vec<Value>) {
    let agents = BTreeMap::from([("math".to_owned(), agent_url)]);
    let chat = TestApp::start(&agents, stack, |_| {}).await;
    let conversation = chat.conversation("usr-ada", "math").await;
    let events = chat.turn("usr-ada", &conversation, message).await;
    (events, chat.messages("usr-ada", &conversation).await)
}

#[tokio::test]
async fn an_agent_that_refuses_two_connections_is_retried_then_answers() {
    let mut stack = Stack::new();
    let agent = flaky_agent(Fault::Refuse(2), &mut stack).await;
    let (events, _) = turn_through(agent, &mut stack, "What is 6 * 7?").await;
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        &types[..3],
        ["message_start", "retry", "retry"],
        "{types:?}"
    );
    assert_eq!(events[1]["attempt"], 2);
    assert_eq!(events[2]["attempt"], 3);
    assert_eq!(streamed_text(&events), "The answer is 42.");
    assert_eq!(events.last().unwrap()["status"], "complete");
}

#[tokio::test]
async fn a_dropped_stream_is_resumed_without_a_gap_or_a_duplicate() {
    let mut stack = Stack::new();
    let fault = Fault::CutAfterEvents {
        events: 3,
        agent_lives: true,
        reconnect_delay_ms: 0,
    };
    let agent = flaky_agent(fault, &mut stack).await;
    let words = vec!["word"; 20].join(" ");
    let (events, messages) = turn_through(agent, &mut stack, &words).await;
    assert_eq!(streamed_text(&events), words);
    assert_eq!(events.last().unwrap()["status"], "complete");
    assert_eq!(messages[1]["content"], words.as_str());
    assert_eq!(messages[1]["status"], "complete");
}

#[tokio::test]
async fn a_task_that_ended_while_its_stream_was_down_is_read_back_whole() {
    let mut stack = Stack::new();
    // The 20 words take about 0.6 s; the stream is back only after 2 s,
    // when the task has ended and can no longer be subscribed to.
    let fault = Fault::CutAfterEvents {
        events: 3,
        agent_lives: true,
        reconnect_delay_ms: 2000,
    };
    let agent = flaky_agent(fault, &mut stack).await;
    let words = vec!["word"; 20].join(" ");
    let (events, messages) = turn_through(agent, &mut stack, &words).await;
    assert_eq!(streamed_text(&events), words, "no gap, no duplicate");
    let done = events.last().unwrap();
    assert_eq!(done["status"], "complete", "{events:?}");
    assert!(
        done["token_usage"]["output_tokens"].as_u64().unwrap() > 0,
        "the usage comes with the task read back"
    );
    assert_eq!(messages[1]["content"], words.as_str());
    assert_eq!(messages[1]["status"], "complete");
}

#[tokio::test]
async fn an_agent_that_dies_after_three_chunks_leaves_an_incomplete_message() {
    let mut stack = Stack::new();
    let fault = Fault::CutAfterEvents {
        events: 3,
        agent_lives: false,
        reconnect_delay_ms: 0,
    };
    let agent = flaky_agent(fault, &mut stack).await;
    let words = vec!["word"; 20].join(" ");
    let (events, messages) = turn_through(agent, &mut stack, &words).await;
    let partial = streamed_text(&events);
    assert!(
        !partial.is_empty() && partial.len() < words.len(),
        "{partial:?}"
    );
    let error = events.iter().find(|e| e["type"] == "error").unwrap();
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("re-subscribing failed"),
        "{error}"
    );
    assert_eq!(events.last().unwrap()["status"], "incomplete");
    assert_eq!(messages.len(), 2, "exactly one assistant message");
    assert_eq!(messages[1]["status"], "incomplete");
    assert_eq!(
        messages[1]["content"],
        partial.as_str(),
        "the chunks that arrived are kept"
    );
}

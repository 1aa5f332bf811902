//! The compact dialect, seed 001's frames (OMNI2's ChatWidget): flat
//! frames. The server greets with `{"type":"welcome","text"}`; the client
//! sends `{"type":"message","text"}`; the server answers
//! `{"type":"token","text"}` per chunk, then `{"type":"done","result":
//! {tokens_used, tools_used, tool_calls, message_id, conversation_id,
//! status, text, cost?}}` (`cost` when the agent reported one, see
//! `super::cost`), or `{"type":"error","error"}` with `error` a text.
//! As in the seed, `tools_used` names the tools the turn ran (each once, in
//! the order first used) and `tool_calls` counts the calls. The demo agents
//! report each tool they run as one reasoning step (`name(arguments) →
//! result`); other reasoning steps are not tool calls.
//!
//! The conversation is `?conversation_id=`, or one created with the default
//! agent on the first message (once the user's turn budget allows the turn:
//! a refused message creates nothing). A refusal is
//! `{"type":"error","error","code"}`, with `retry_after` (seconds) when it
//! is `rate_limited`.

use actix_ws::{CloseCode, CloseReason, Closed};
use confab_kit::ApiError;
use confab_protocol::chat::ChatEvent;
use confab_protocol::ids::ConversationId;
use confab_protocol::ws::compact::{ClientFrame, DoneResult, ServerFrame};

use super::session::{Conn, Dialect, Flow};

const WELCOME: &str = "Connected to Confab. Send {\"type\":\"message\",\"text\":\"…\"}.";

pub struct Compact {
    requested: Option<String>,
}

impl Compact {
    pub fn new(requested: Option<String>) -> Self {
        Self { requested }
    }

    async fn message(&mut self, conn: &mut Conn, text: String) -> Result<Flow, Closed> {
        let prompt = match conn.prepare(text).await {
            Ok(prompt) => prompt,
            Err(err) => return refused(conn, &err).await,
        };
        if conn.conversation().is_none() {
            match conn.create(None).await {
                Ok(row) => conn.attach(row.id).await,
                Err(err) => return refused(conn, &err).await,
            }
        }
        match conn.prompt(prompt).await {
            Ok(()) => Ok(Flow::Continue),
            Err(err) => refused(conn, &err).await,
        }
    }
}

impl Dialect for Compact {
    async fn open(&mut self, conn: &mut Conn) -> Result<Flow, Closed> {
        if let Some(requested) = self.requested.take() {
            match conn.owned(&ConversationId::from(requested)).await {
                Ok(row) => conn.attach(row.id).await,
                Err(err) => return refuse(conn, &err).await,
            }
        }
        let welcome = ServerFrame::Welcome {
            text: WELCOME.into(),
        };
        conn.send(welcome.to_text()).await?;
        Ok(Flow::Continue)
    }

    async fn frame(&mut self, conn: &mut Conn, text: &str) -> Result<Flow, Closed> {
        match ClientFrame::parse(text) {
            Ok(ClientFrame::Message { text }) => self.message(conn, text).await,
            Ok(ClientFrame::Ping) => {
                conn.send(ServerFrame::Pong.to_text()).await?;
                Ok(Flow::Continue)
            }
            Err(why) => self.unreadable(conn, &why).await,
        }
    }

    async fn unreadable(&mut self, conn: &mut Conn, why: &str) -> Result<Flow, Closed> {
        error(conn, why).await
    }

    async fn event(&mut self, conn: &mut Conn, event: &ChatEvent) -> Result<Flow, Closed> {
        let frame = match event {
            ChatEvent::Text { text } => ServerFrame::Token { text: text.clone() },
            ChatEvent::Error { error } => ServerFrame::Error {
                error: error.message.clone(),
                code: Some(error.code.clone()),
                retry_after: None,
            },
            ChatEvent::Done {
                message_id,
                conversation_id,
                status,
                token_usage,
            } => {
                let tokens_used = token_usage.map_or(0, |u| u.input_tokens + u.output_tokens);
                let calls: Vec<&str> = conn
                    .progress
                    .steps
                    .iter()
                    .filter_map(|step| tool_name(step))
                    .collect();
                let mut tools_used: Vec<&str> = Vec::new();
                for name in &calls {
                    if !tools_used.contains(name) {
                        tools_used.push(name);
                    }
                }
                ServerFrame::Done {
                    result: DoneResult {
                        tokens_used,
                        cost: token_usage.and_then(|u| u.cost),
                        tools_used: tools_used.into_iter().map(str::to_owned).collect(),
                        tool_calls: calls.len(),
                        message_id: message_id.clone(),
                        conversation_id: conversation_id.clone(),
                        status: *status,
                        text: conn.progress.text.clone(),
                    },
                }
            }
            _ => return Ok(Flow::Continue),
        };
        conn.send(frame.to_text()).await?;
        Ok(Flow::Continue)
    }
}

/// The tool a reasoning step reports having run (`name(arguments) →
/// result`), if it is one.
fn tool_name(step: &str) -> Option<&str> {
    let (name, rest) = step.split_once('(')?;
    let is_name = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'));
    (is_name && rest.contains(") → ")).then_some(name)
}

async fn error(conn: &mut Conn, message: &str) -> Result<Flow, Closed> {
    let frame = ServerFrame::Error {
        error: message.to_owned(),
        code: None,
        retry_after: None,
    };
    conn.send(frame.to_text()).await?;
    Ok(Flow::Continue)
}

/// A request refused; the connection stays open.
async fn refused(conn: &mut Conn, err: &ApiError) -> Result<Flow, Closed> {
    let frame = ServerFrame::Error {
        error: err.message().to_owned(),
        code: Some(err.code().to_owned()),
        retry_after: err.retry_after(),
    };
    conn.send(frame.to_text()).await?;
    Ok(Flow::Continue)
}

/// The requested conversation is not the caller's: say so and close.
async fn refuse(conn: &mut Conn, err: &ApiError) -> Result<Flow, Closed> {
    refused(conn, err).await?;
    Ok(Flow::Close(CloseReason {
        code: CloseCode::Policy,
        description: Some(err.message().to_owned()),
    }))
}

#[cfg(test)]
mod tests {
    use super::tool_name;

    #[test]
    fn a_tool_step_names_its_tool_and_other_steps_name_none() {
        assert_eq!(
            tool_name("calculator({\"expression\":\"6 * 7\"}) → 42"),
            Some("calculator")
        );
        assert_eq!(tool_name("word_count({}) → 3"), Some("word_count"));
        for step in ["thinking", "(x) → y", "two words(x) → y", "f(x)", ""] {
            assert_eq!(tool_name(step), None, "{step}");
        }
    }
}

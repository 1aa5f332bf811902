//! Reaching the turn's agent: the A2A request, sent again with backoff
//! while the failure is worth retrying and no event has arrived yet.

use confab_protocol::a2a::confab::{ConfabMetadata, HistoryTurn};
use confab_protocol::a2a::{Message as A2aMessage, Part, Role, SendMessageRequest};
use confab_protocol::chat::ChatEvent;

use super::turn::{Emitter, Turn};
use crate::a2a::client::{A2aError, AgentStream, Endpoint};

impl Turn {
    /// Calls the agent, retrying what is worth retrying before the first
    /// event and telling the client about each retry. A cancel during the
    /// attempts ends them.
    pub(super) async fn connect(&self, out: &Emitter) -> Result<(Endpoint, AgentStream), A2aError> {
        let mut attempt = 1;
        loop {
            let result = tokio::select! {
                result = self.attempt() => result,
                _ = self.claim.cancel.cancelled() => return Err(A2aError::Canceled),
            };
            match result {
                Err(err) if err.is_retryable() && attempt < self.retry.max_attempts => {
                    let delay = self.retry.delay(attempt);
                    tracing::info!(agent = %self.agent_id, attempt, error = %err, "agent call failed; retrying");
                    attempt += 1;
                    out.emit(ChatEvent::Retry {
                        attempt,
                        max_attempts: self.retry.max_attempts,
                        delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    });
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = self.claim.cancel.cancelled() => return Err(A2aError::Canceled),
                    }
                }
                other => return other,
            }
        }
    }

    /// One attempt: find out how to speak to the agent (its card, cached),
    /// then send the message.
    async fn attempt(&self) -> Result<(Endpoint, AgentStream), A2aError> {
        let agent = self.agents.endpoint(self.agent_id.as_str()).await?;
        let stream = self
            .client
            .send_streaming(&agent, self.a2a_request(), &self.trace)
            .await?;
        Ok((agent, stream))
    }

    /// The A2A request: the user's text, the conversation as `contextId`, and
    /// the `confab` metadata of DESIGN §8.
    fn a2a_request(&self) -> SendMessageRequest {
        let history = self
            .history
            .iter()
            .filter(|m| !m.content.is_empty())
            .map(|m| HistoryTurn {
                role: m.role.clone(),
                content: m.content.clone(),
            })
            .collect();
        let confab = ConfabMetadata {
            user_id: Some(self.user_id.to_string()),
            conversation_id: Some(self.conversation_id.to_string()),
            api_key_id: self.api_key_id.clone(),
            history,
            tree: Some(self.tree.clone()),
        };
        SendMessageRequest {
            message: A2aMessage {
                message_id: self.user_message.id.to_string(),
                context_id: Some(self.conversation_id.to_string()),
                task_id: None,
                role: Role::User,
                parts: vec![Part::text(self.text.as_str())],
                metadata: None,
            },
            configuration: None,
            metadata: Some(confab.into_metadata()),
        }
    }
}

//! What is known about a call as it goes, its GenAI span, and the
//! `llm_calls` row it becomes.

use std::time::Instant;

use chrono::{NaiveDateTime, Utc};
use confab_kit::ids::new_id;
use confab_protocol::openai::ToolCall;

use crate::AppState;
use crate::pricing::Tokens;
use crate::providers::Target;
use crate::recorder::Record;
use crate::request::CallRequest;
use crate::store::llm_calls::{LlmCall, status};
use crate::store::tool_calls::ToolCallRow;
use crate::trace::hub::EventContext;

/// What is known about a call as it goes; becomes its `llm_calls` row.
pub(super) struct CallState {
    pub id: String,
    pub events: EventContext,
    pub model: String,
    pub stream: bool,
    pub raw_request: String,
    pub started: Instant,
    pub provider: String,
    pub upstream_model: Option<String>,
    /// The model its answer named (`gen_ai.response.model`).
    pub response_model: Option<String>,
    pub attempts: i64,
    pub first_chunk_ms: Option<i64>,
    pub span: tracing::Span,
    /// The instance running the call.
    pub instance: String,
    pub created_at: NaiveDateTime,
    /// The personal API key the user called with, if any.
    pub api_key_id: Option<String>,
}

impl CallState {
    /// A new call, with its id and its `gen_ai.chat` span.
    pub fn new(call: &CallRequest, targets: &[Target], instance: &str) -> Self {
        let request = &call.request.parsed;
        let id = new_id("call");
        // A client span, as the conventions have an inference call: the
        // proxy's call of the model on the client's behalf.
        let span = tracing::info_span!(
            "gen_ai.chat",
            otel.name = %format!("chat {}", request.model),
            otel.kind = "client",
            gen_ai.operation.name = "chat",
            gen_ai.request.model = %request.model,
            gen_ai.provider.name = tracing::field::Empty,
            gen_ai.response.model = tracing::field::Empty,
            gen_ai.usage.input_tokens = tracing::field::Empty,
            gen_ai.usage.output_tokens = tracing::field::Empty,
            gen_ai.conversation.id = call.identity.conversation_id.as_deref().unwrap_or(""),
            gen_ai.agent.id = call.identity.agent_id.as_deref().unwrap_or(""),
            gen_ai.system_instructions = tracing::field::Empty,
            gen_ai.input.messages = tracing::field::Empty,
            gen_ai.output.messages = tracing::field::Empty,
            confab.call_id = %id,
        );
        super::gen_ai::record_request(&span, &request.messages);
        Self {
            events: EventContext {
                call_id: id.clone(),
                agent_id: call.identity.agent_id.clone(),
                user_id: call.identity.user_id.clone(),
                conversation_id: call.identity.conversation_id.clone(),
            },
            id,
            model: request.model.clone(),
            stream: request.is_stream(),
            raw_request: call.request.raw_text(),
            started: call.started,
            provider: targets
                .first()
                .map(|t| t.provider.clone())
                .unwrap_or_default(),
            upstream_model: None,
            response_model: None,
            attempts: 0,
            first_chunk_ms: None,
            span,
            instance: instance.to_owned(),
            created_at: Utc::now().naive_utc(),
            api_key_id: call.identity.api_key_id.clone(),
        }
    }

    /// `provider/model` of the model that answered (or was last tried): the
    /// key of its price, and the `model` label of the usage metrics.
    pub fn answered_by(&self) -> String {
        match &self.upstream_model {
            Some(model) => format!("{}/{model}", self.provider),
            None => self.provider.clone(),
        }
    }

    /// What the call cost, in nano-units (`crate::pricing`); `None` when the
    /// model that answered has no price.
    pub fn cost_nanos(&self, state: &AppState, tokens: Tokens) -> Option<i64> {
        let builtin = state.providers.is_builtin(&self.provider);
        state
            .pricing
            .cost_nanos(&self.answered_by(), builtin, tokens)
    }

    /// The row of the call as it starts: in flight, on this instance.
    pub fn start_row(&self) -> LlmCall {
        LlmCall {
            id: self.id.clone(),
            user_id: self.events.user_id.clone(),
            agent_id: self.events.agent_id.clone(),
            conversation_id: self.events.conversation_id.clone(),
            provider: self.provider.clone(),
            model: self.model.clone(),
            stream: self.stream,
            request: self.raw_request.clone(),
            response: None,
            status: status::IN_FLIGHT.to_owned(),
            error: None,
            latency_ms: 0,
            first_chunk_ms: None,
            input_tokens: 0,
            output_tokens: 0,
            created_at: self.created_at,
            upstream_model: None,
            attempts: 0,
            instance: Some(self.instance.clone()),
            api_key_id: self.api_key_id.clone(),
            cached_input_tokens: 0,
            // What is known of a call in flight: nothing used yet. Budgets
            // count it as that until it ends.
            cost_nanos: Some(0),
        }
    }

    /// Notes the first chunk's time, once.
    pub fn first_chunk_now(&mut self) {
        if self.first_chunk_ms.is_none() {
            self.first_chunk_ms = Some(elapsed_ms(self.started));
        }
    }
}

/// What a call used and cost, as its response reported it.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Spent {
    pub tokens: Tokens,
    /// `None`: the model that answered has no price.
    pub cost_nanos: Option<i64>,
}

/// Records the call and its tool calls (through the recorder's queue), and
/// counts its tokens and cost in the metrics.
pub(super) async fn finish(
    state: &AppState,
    call: CallState,
    response: Option<String>,
    spent: Spent,
    tool_calls: Vec<ToolCall>,
    error: Option<String>,
) {
    let tokens = spent.tokens;
    call.span
        .record("gen_ai.provider.name", call.provider.as_str());
    // As i64: an u64 field reaches the span as text.
    let (input, output) = (
        i64::try_from(tokens.input).unwrap_or(i64::MAX),
        i64::try_from(tokens.output).unwrap_or(i64::MAX),
    );
    call.span.record("gen_ai.usage.input_tokens", input);
    call.span.record("gen_ai.usage.output_tokens", output);
    confab_kit::telemetry::GenAiMetrics::get().record(&confab_kit::telemetry::GenAiCall {
        operation: "chat",
        provider: &call.provider,
        request_model: &call.model,
        response_model: call.response_model.as_deref(),
        input_tokens: tokens.input,
        output_tokens: tokens.output,
        duration: call.started.elapsed(),
        // The conventions' fallback class: the message itself is no label.
        error: error.as_ref().map(|_| "_OTHER"),
    });
    tracing::debug!(parent: &call.span, input_tokens = input, output_tokens = output, error = error.as_deref(), "LLM call ended");
    let now = Utc::now().naive_utc();
    let tools = tool_calls
        .into_iter()
        .enumerate()
        .map(|(idx, tool)| ToolCallRow {
            id: new_id("tool"),
            call_id: call.id.clone(),
            idx: idx as i64,
            tool_call_id: tool.id,
            name: tool.function.name,
            arguments: tool.function.arguments,
            created_at: now,
        })
        .collect();
    let status = if error.is_some() {
        status::ERROR
    } else {
        status::OK
    };
    metrics::counter!("llm_proxy_calls_total", "provider" => call.provider.clone(), "status" => status).increment(1);
    count_spent(&call, spent);
    let row = LlmCall {
        id: call.id,
        user_id: call.events.user_id,
        agent_id: call.events.agent_id,
        conversation_id: call.events.conversation_id,
        provider: call.provider,
        model: call.model,
        stream: call.stream,
        request: call.raw_request,
        response,
        status: status.into(),
        error,
        latency_ms: elapsed_ms(call.started),
        first_chunk_ms: call.first_chunk_ms,
        input_tokens: i64::try_from(tokens.input).unwrap_or(i64::MAX),
        output_tokens: i64::try_from(tokens.output).unwrap_or(i64::MAX),
        created_at: now,
        upstream_model: call.upstream_model,
        attempts: call.attempts,
        instance: Some(call.instance),
        api_key_id: call.api_key_id,
        cached_input_tokens: i64::try_from(tokens.cached_input).unwrap_or(i64::MAX),
        cost_nanos: spent.cost_nanos,
    };
    state.recorder.record(Record::Call(row, tools)).await;
}

/// `llm_proxy_tokens_total{model,agent,kind}` and
/// `llm_proxy_cost_nanos_total{model,agent}` (1e-9 units of the currency:
/// the metrics crate's counters count integers). A call that used nothing
/// (refused, failed before an answer) adds nothing, so a client naming
/// models that do not exist does not add label values.
fn count_spent(call: &CallState, spent: Spent) {
    let tokens = spent.tokens;
    if tokens.input == 0 && tokens.output == 0 {
        return;
    }
    let model = call.answered_by();
    let agent = call
        .events
        .agent_id
        .clone()
        .unwrap_or_else(|| "none".to_owned());
    for (kind, count) in [("input", tokens.input), ("output", tokens.output)] {
        metrics::counter!("llm_proxy_tokens_total", "model" => model.clone(), "agent" => agent.clone(), "kind" => kind)
            .increment(count);
    }
    if let Some(nanos) = spent.cost_nanos {
        metrics::counter!("llm_proxy_cost_nanos_total", "model" => model, "agent" => agent)
            .increment(u64::try_from(nanos).unwrap_or(0));
    }
}

fn elapsed_ms(since: Instant) -> i64 {
    i64::try_from(since.elapsed().as_millis()).unwrap_or(i64::MAX)
}

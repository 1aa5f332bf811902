//! `GET /llm-calls` and `GET /llm-calls/{id}`: the caller's recorded calls.

use actix_web::{HttpResponse, web};
use confab_kit::ApiError;
use confab_kit::auth::Caller;
use confab_protocol::chat::Page;
use confab_protocol::error::ErrorBody;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::ProxyError;
use crate::pricing;
use crate::store::llm_calls::{self, CallFilter, LlmCall};
use crate::store::tool_calls::{self, ToolCallRow};
use crate::trace::hub::rfc3339;

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 200;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Calls per page, 1 to 200; 50 by default.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Only this agent's calls.
    agent_id: Option<String>,
    /// Every user's calls (admins only).
    #[serde(default)]
    #[param(default = false)]
    all_users: bool,
}

/// A recorded call, as `GET /llm-calls` lists it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallSummary {
    pub id: String,
    pub user_id: Option<String>,
    pub agent_id: Option<String>,
    pub conversation_id: Option<String>,
    /// The provider that answered (or was last tried).
    pub provider: String,
    /// The model the client asked for (an alias or `provider/model`).
    pub model: String,
    /// The provider's own name of the model that answered.
    pub upstream_model: Option<String>,
    pub stream: bool,
    /// `in_flight`, `ok` or `error`.
    pub status: String,
    pub error: Option<String>,
    /// Upstream attempts, retries and fallbacks included.
    pub attempts: i64,
    pub latency_ms: i64,
    pub first_chunk_ms: Option<i64>,
    /// The user's API key the call came with, if any.
    pub api_key_id: Option<String>,
    pub usage: CallUsage,
    /// In `[pricing] currency`; null when the model had no price.
    pub cost: Option<f64>,
    /// RFC 3339, UTC.
    pub created_at: String,
}

/// A call's tokens. It keeps its two fields: clients compare it whole.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallUsage {
    pub input_tokens: i64,
    pub output_tokens: i64,
}

/// A recorded call with its request, response and tool calls
/// (`GET /llm-calls/{id}`).
#[derive(Debug, Serialize, ToSchema)]
pub struct CallDetail {
    #[serde(flatten)]
    pub summary: CallSummary,
    /// The request as the client sent it: JSON, or the text when it was not.
    pub request: Value,
    /// The assembled answer (partial when the call failed mid-way); null
    /// while in flight or when nothing came.
    pub response: Value,
    pub tool_calls: Vec<RecordedToolCall>,
}

/// A tool call the model asked for, assembled.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordedToolCall {
    pub id: String,
    pub name: String,
    /// JSON text, as the model wrote it.
    pub arguments: String,
    pub index: i64,
}

impl From<&ToolCallRow> for RecordedToolCall {
    fn from(row: &ToolCallRow) -> Self {
        Self {
            id: row.tool_call_id.clone(),
            name: row.name.clone(),
            arguments: row.arguments.clone(),
            index: row.idx,
        }
    }
}

/// Whose rows a caller reads: their own, or everyone's for an admin who asks.
pub fn scope(caller: &Caller, all_users: bool) -> Result<Option<String>, ProxyError> {
    match (all_users, caller.is_admin()) {
        (false, _) => Ok(Some(caller.user_id.clone())),
        (true, true) => Ok(None),
        (true, false) => Err(ProxyError::AdminsOnly("read every user's calls")),
    }
}

pub fn limit(requested: Option<i64>, default: i64, max: i64) -> Result<i64, ProxyError> {
    let limit = requested.unwrap_or(default);
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(ProxyError::InvalidLimit { max })
    }
}

/// The caller's recorded calls, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/llm-calls",
    tag = "history",
    params(ListQuery),
    security(("bearer" = []), ("service_token" = [])),
    responses(
        (status = 200, description = "A page of calls; `next_cursor` is the `cursor` of the next, null on the last.", body = Page<CallSummary>),
        (status = 400, description = "`bad_query`: a query parameter of the wrong type.", body = ErrorBody),
        (status = 403, description = "`forbidden`: `all_users=true` from a user who is not an admin.", body = ErrorBody),
        (status = 422, description = "`invalid_limit`: `limit` is not between 1 and 200.", body = ErrorBody)
    )
)]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = limit(query.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let calls = llm_calls::list(
        &state.db,
        &CallFilter {
            user_id: scope(&caller, query.all_users)?,
            agent_id: query.agent_id.clone(),
            before_id: query.cursor.clone(),
            limit,
        },
    )
    .await?;
    let next_cursor = (calls.len() as i64 == limit)
        .then(|| calls.last().map(|c| c.id.clone()))
        .flatten();
    Ok(HttpResponse::Ok().json(Page {
        items: calls.iter().map(summary).collect(),
        next_cursor,
    }))
}

/// One of the caller's calls (any user's for an admin), with its request,
/// response and tool calls.
#[utoipa::path(
    get,
    path = "/llm-calls/{id}",
    tag = "history",
    params(("id" = String, Path, description = "The call's id (`X-Confab-Call-Id` of its answer).")),
    security(("bearer" = []), ("service_token" = [])),
    responses(
        (status = 200, description = "The call.", body = CallDetail),
        (status = 404, description = "`not_found`: no such call, or another user's.", body = ErrorBody)
    )
)]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = if caller.is_admin() {
        None
    } else {
        Some(caller.user_id.as_str())
    };
    let id = path.into_inner();
    let call = llm_calls::get(&state.db, &id, user)
        .await?
        .ok_or(ProxyError::CallNotFound)?;
    let tools = tool_calls::for_call(&state.db, &id).await?;
    Ok(HttpResponse::Ok().json(CallDetail {
        summary: summary(&call),
        request: parse_json(&call.request),
        response: call
            .response
            .as_deref()
            .map(parse_json)
            .unwrap_or(Value::Null),
        tool_calls: tools.iter().map(RecordedToolCall::from).collect(),
    }))
}

fn summary(call: &LlmCall) -> CallSummary {
    CallSummary {
        id: call.id.clone(),
        user_id: call.user_id.clone(),
        agent_id: call.agent_id.clone(),
        conversation_id: call.conversation_id.clone(),
        provider: call.provider.clone(),
        model: call.model.clone(),
        upstream_model: call.upstream_model.clone(),
        stream: call.stream,
        status: call.status.clone(),
        error: call.error.clone(),
        attempts: call.attempts,
        latency_ms: call.latency_ms,
        first_chunk_ms: call.first_chunk_ms,
        api_key_id: call.api_key_id.clone(),
        usage: CallUsage {
            input_tokens: call.input_tokens,
            output_tokens: call.output_tokens,
        },
        cost: call.cost_nanos.map(pricing::units),
        created_at: rfc3339(call.created_at),
    }
}

/// Stored JSON text as JSON; text that is not JSON stays a string.
fn parse_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

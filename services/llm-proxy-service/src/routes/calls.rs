//! `GET /llm-calls` and `GET /llm-calls/{id}`: the caller's recorded calls.

use actix_web::{HttpResponse, web};
use confab_kit::ApiError;
use confab_kit::auth::Caller;
use confab_protocol::chat::Page;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ProxyError;
use crate::pricing;
use crate::store::llm_calls::{self, CallFilter, LlmCall};
use crate::store::tool_calls;
use crate::trace::hub::rfc3339;

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 200;

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    limit: Option<i64>,
    cursor: Option<String>,
    agent_id: Option<String>,
    #[serde(default)]
    all_users: bool,
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
    let mut body = summary(&call);
    body["request"] = parse_json(&call.request);
    body["response"] = call
        .response
        .as_deref()
        .map(parse_json)
        .unwrap_or(Value::Null);
    body["tool_calls"] = tools
        .iter()
        .map(|t| json!({"id": t.tool_call_id, "name": t.name, "arguments": t.arguments, "index": t.idx}))
        .collect();
    Ok(HttpResponse::Ok().json(body))
}

fn summary(call: &LlmCall) -> Value {
    json!({
        "id": call.id,
        "user_id": call.user_id,
        "agent_id": call.agent_id,
        "conversation_id": call.conversation_id,
        "provider": call.provider,
        "model": call.model,
        "upstream_model": call.upstream_model,
        "stream": call.stream,
        "status": call.status,
        "error": call.error,
        "attempts": call.attempts,
        "latency_ms": call.latency_ms,
        "first_chunk_ms": call.first_chunk_ms,
        "api_key_id": call.api_key_id,
        // `usage` keeps its two fields (clients compare it whole); the
        // cost, in `[pricing] currency`, null when the model had no price.
        "usage": {"input_tokens": call.input_tokens, "output_tokens": call.output_tokens},
        "cost": call.cost_nanos.map(pricing::units),
        "created_at": rfc3339(call.created_at),
    })
}

/// Stored JSON text as JSON; text that is not JSON stays a string.
fn parse_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

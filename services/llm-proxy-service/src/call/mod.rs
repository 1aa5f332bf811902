//! One LLM call through the proxy, from the first attempt to the recorded
//! row: retries and fallback before the first byte, streaming with usage and
//! tool calls assembled on the way, trace events, the GenAI span and the
//! overhead header.

mod assembly;
mod attempt;
mod gen_ai;
mod record;
mod respond;
mod stream;

use std::convert::Infallible;
use std::time::Instant;

use actix_web::HttpResponse;
use actix_web::web::Bytes;
use confab_kit::ApiError;
use confab_kit::coalesce::Coalesce;
use confab_protocol::trace::TraceKind;
use futures_util::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tracing::Instrument;

pub use self::assembly::{Assembly, recorded_response};
pub use self::attempt::RetrySettings;
pub use self::respond::{CALL_ID_HEADER, OVERHEAD_HEADER};

use self::attempt::attempt;
use self::record::CallState;
use self::respond::{complete, with_overhead};
use self::stream::{STREAM_BUFFER, forward};
use crate::AppState;
use crate::error::ProxyError;
use crate::providers::Start;
use crate::recorder::Record;
use crate::request::CallRequest;

pub async fn handle(state: &AppState, call: CallRequest) -> Result<HttpResponse, ApiError> {
    let request = &call.request.parsed;
    let targets = state
        .providers
        .resolve(&request.model)
        .ok_or_else(|| ProxyError::UnknownModel(request.model.clone()))?;
    let stream = request.is_stream();
    let include_usage = request
        .stream_options
        .as_ref()
        .is_some_and(|o| o.include_usage);
    let mut state_of_call = CallState::new(&call, &targets, &state.instance);
    let span = state_of_call.span.clone();
    state
        .hub
        .publish(
            &state_of_call.events,
            TraceKind::Request,
            Value::Object(call.request.object()),
        )
        .instrument(span.clone())
        .await;
    // The row exists from here on, even if this instance dies mid-call.
    state
        .recorder
        .record(Record::Start(state_of_call.start_row()))
        .await;

    let upstream_started = Instant::now();
    let started = attempt(state, &targets, &call.request, stream, &mut state_of_call)
        .instrument(span.clone())
        .await;
    let upstream_time = upstream_started.elapsed();
    let overhead = call.started.elapsed().saturating_sub(upstream_time);
    match started {
        Err(failure) => Ok(failure.respond(state, state_of_call, overhead).await),
        Ok(Start::Complete(body)) => {
            let call_id = state_of_call.id.clone();
            let response = complete(state, state_of_call, body).await;
            Ok(with_overhead(response, overhead, &call_id))
        }
        Ok(Start::Stream(upstream)) => {
            let call_id = state_of_call.id.clone();
            let (tx, rx) = mpsc::channel::<Bytes>(STREAM_BUFFER);
            tokio::spawn(
                forward(state.clone(), state_of_call, upstream, include_usage, tx).instrument(span),
            );
            let response = HttpResponse::Ok()
                .content_type("text/event-stream")
                .insert_header(("cache-control", "no-cache"))
                .streaming(Coalesce::new(
                    ReceiverStream::new(rx).map(Ok::<_, Infallible>),
                ));
            Ok(with_overhead(response, overhead, &call_id))
        }
    }
}

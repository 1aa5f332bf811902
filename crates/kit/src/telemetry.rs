//! Logs, traces and GenAI metrics: `tracing` to stdout (human or JSON
//! lines, filtered by `RUST_LOG`), plus OTLP/HTTP export of spans and of the
//! OpenTelemetry GenAI client metrics when an endpoint is configured (the
//! Prometheus series of `/metrics` are the `metrics` crate's, apart).
//!
//! A log line written inside a span that has an OpenTelemetry context (when
//! export is on) carries that span's `trace_id` and `span_id`, so a line can
//! be found from its trace and the other way round: JSON lines as two more
//! fields, human lines as `trace_id=… span_id=…` at their end.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanId, TraceContextExt, TraceId, TracerProvider as _};
use opentelemetry::{Array, StringValue, Value};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::{Event, Subscriber};
use tracing_opentelemetry::{OpenTelemetrySpanExt, OtelData};
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::{FmtContext, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::settings::{LogFormat, TelemetrySettings};

/// Flushes pending spans and metrics when dropped at the end of `main`.
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
    meters: Option<SdkMeterProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(Err(err)) = self.provider.take().map(|p| p.shutdown()) {
            eprintln!("flushing traces failed: {err}");
        }
        if let Some(Err(err)) = self.meters.take().map(|p| p.shutdown()) {
            eprintln!("flushing metrics failed: {err}");
        }
    }
}

/// `[telemetry] capture_content` of this process, set by [`init`].
static CAPTURE_CONTENT: AtomicBool = AtomicBool::new(false);

/// Whether LLM spans may carry prompts and completions
/// (`[telemetry] capture_content`; off unless [`init`] was told so).
pub fn capture_content() -> bool {
    CAPTURE_CONTENT.load(Ordering::Relaxed)
}

/// Installs the global subscriber. Call once, first thing in `main`.
pub fn init(service: &'static str, settings: &TelemetrySettings) -> anyhow::Result<TelemetryGuard> {
    CAPTURE_CONTENT.store(settings.capture_content, Ordering::Relaxed);
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (provider, meters) = match settings.otlp_endpoint.as_deref().filter(|e| !e.is_empty()) {
        Some(endpoint) => (
            Some(otlp_provider(service, endpoint)?),
            Some(otlp_meters(service, endpoint)?),
        ),
        None => (None, None),
    };
    if let Some(meters) = &meters {
        opentelemetry::global::set_meter_provider(meters.clone());
    }
    let otel = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer(service))
            .boxed()
    });
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    tracing_subscriber::registry()
        .with(filter)
        .with(log_layer(settings.log_format, std::io::stdout))
        .with(otel)
        .try_init()
        .context("installing the tracing subscriber")?;
    Ok(TelemetryGuard { provider, meters })
}

/// The layer that writes log lines to `writer`, in `log_format`, with the
/// trace and span ids of the span they were written in.
fn log_layer<S, W>(log_format: LogFormat, writer: W) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let layer = tracing_subscriber::fmt::layer().with_writer(writer);
    match log_format {
        LogFormat::Human => layer
            .event_format(WithTraceIds::Human {
                plain: format::format().with_target(false).with_ansi(false),
                coloured: format::format().with_target(false).with_ansi(true),
            })
            .boxed(),
        LogFormat::Json => layer
            .json()
            .flatten_event(true)
            .map_event_format(WithTraceIds::Json)
            .boxed(),
    }
}

/// A log line format with the ids of the line's span added.
enum WithTraceIds {
    /// tracing's own line, without and with colours, then
    /// ` trace_id=… span_id=…`.
    Human {
        plain: format::Format<format::Full>,
        coloured: format::Format<format::Full>,
    },
    /// tracing's JSON object with `"trace_id"` and `"span_id"` added.
    Json(format::Format<format::Json>),
}

impl<S, N> FormatEvent<S, N> for WithTraceIds
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let ids = ids_of_event(ctx);
        let ansi = writer.has_ansi_escapes();
        let inner: &dyn FormatEvent<S, N> = match self {
            Self::Human { plain, coloured } if ansi => coloured,
            Self::Human { plain, .. } => plain,
            Self::Json(json) => json,
        };
        let Some((trace_id, span_id)) = ids else {
            return inner.format_event(ctx, writer.by_ref(), event);
        };
        // The line is written whole, then the ids go before its end: the
        // inner formats end every line with "\n" (and a JSON one with "}").
        let mut line = String::with_capacity(256);
        inner.format_event(ctx, Writer::new(&mut line), event)?;
        let body = line.strip_suffix('\n').unwrap_or(&line);
        match (self, body.strip_suffix('}')) {
            (Self::Json(_), Some(object)) => writeln!(
                writer,
                "{object},\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\"}}"
            ),
            _ => writeln!(writer, "{body} trace_id={trace_id} span_id={span_id}"),
        }
    }
}

/// The trace and span ids of the innermost span around the event that has
/// a valid OpenTelemetry context (a span gets one when it is first entered).
fn ids_of_event<S, N>(ctx: &FmtContext<'_, S, N>) -> Option<(TraceId, SpanId)>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    ctx.event_scope()?.find_map(|span| {
        let extensions = span.extensions();
        let data = extensions.get::<OtelData>()?;
        let (trace_id, span_id) = (data.trace_id()?, data.span_id()?);
        (trace_id != TraceId::INVALID && span_id != SpanId::INVALID).then_some((trace_id, span_id))
    })
}

/// Sets an attribute whose value is a list of strings, such as
/// `gen_ai.response.finish_reasons`, which a `tracing` field cannot hold.
/// Nothing happens when the span is not exported.
pub fn set_string_list(span: &tracing::Span, key: &'static str, values: &[&str]) {
    let values: Vec<StringValue> = values.iter().map(|v| (*v).to_owned().into()).collect();
    span.set_attribute(key, Value::Array(Array::String(values)));
}

/// Makes `span` a child of the span that `traceparent` names, when it names
/// one and the span is exported: for work that runs apart from the request
/// that asked for it (a spawned task) but belongs to its trace.
pub fn set_parent_from(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(traceparent) = traceparent else {
        return;
    };
    let carrier = std::collections::HashMap::from([(
        crate::trace_context::TRACEPARENT.to_owned(),
        traceparent.to_owned(),
    )]);
    let parent = TraceContextPropagator::new().extract(&carrier);
    if parent.span().span_context().is_valid() {
        // Without an OpenTelemetry layer there is nothing to attach it to.
        let _ = span.set_parent(parent);
    }
}

/// The `traceparent` that names `span` to the next service, when the span is
/// exported (else `None`: the caller passes on the one it has).
pub fn traceparent_of(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = std::collections::HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.remove(crate::trace_context::TRACEPARENT)
}

/// The GenAI client metrics of the OpenTelemetry semantic conventions,
/// exported over OTLP beside the spans (nowhere without an endpoint).
pub struct GenAiMetrics {
    /// `gen_ai.client.token.usage`: tokens per call, by `gen_ai.token.type`.
    token_usage: opentelemetry::metrics::Histogram<u64>,
    /// `gen_ai.client.operation.duration`: seconds per call.
    duration: opentelemetry::metrics::Histogram<f64>,
}

/// One finished LLM call, as the GenAI metrics count it.
pub struct GenAiCall<'a> {
    pub operation: &'static str,
    pub provider: &'a str,
    pub request_model: &'a str,
    pub response_model: Option<&'a str>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub duration: std::time::Duration,
    /// `error.type` of a failed call.
    pub error: Option<&'a str>,
}

impl GenAiMetrics {
    /// The process's instruments, made on first use (after [`init`] has set
    /// the meter provider, or they would count into nothing).
    pub fn get() -> &'static Self {
        static METRICS: std::sync::OnceLock<GenAiMetrics> = std::sync::OnceLock::new();
        METRICS.get_or_init(|| {
            let meter = opentelemetry::global::meter("confab");
            // The conventions' advised bucket boundaries.
            let token_buckets = (0..14).map(|i| 4f64.powi(i)).collect();
            let duration_buckets = (0..14).map(|i| 0.01 * 2f64.powi(i)).collect();
            Self {
                token_usage: meter
                    .u64_histogram("gen_ai.client.token.usage")
                    .with_unit("{token}")
                    .with_description("Number of input and output tokens used")
                    .with_boundaries(token_buckets)
                    .build(),
                duration: meter
                    .f64_histogram("gen_ai.client.operation.duration")
                    .with_unit("s")
                    .with_description("GenAI operation duration")
                    .with_boundaries(duration_buckets)
                    .build(),
            }
        })
    }

    /// Counts one call: its duration, and its tokens when it used any.
    pub fn record(&self, call: &GenAiCall<'_>) {
        let mut attributes = vec![
            opentelemetry::KeyValue::new("gen_ai.operation.name", call.operation),
            opentelemetry::KeyValue::new("gen_ai.provider.name", call.provider.to_owned()),
            opentelemetry::KeyValue::new("gen_ai.request.model", call.request_model.to_owned()),
        ];
        if let Some(model) = call.response_model {
            attributes.push(opentelemetry::KeyValue::new(
                "gen_ai.response.model",
                model.to_owned(),
            ));
        }
        let mut timed = attributes.clone();
        if let Some(error) = call.error {
            timed.push(opentelemetry::KeyValue::new("error.type", error.to_owned()));
        }
        self.duration.record(call.duration.as_secs_f64(), &timed);
        if call.input_tokens == 0 && call.output_tokens == 0 {
            return;
        }
        for (kind, count) in [("input", call.input_tokens), ("output", call.output_tokens)] {
            let mut attributes = attributes.clone();
            attributes.push(opentelemetry::KeyValue::new("gen_ai.token.type", kind));
            self.token_usage.record(count, &attributes);
        }
    }
}

fn otlp_meters(service: &'static str, endpoint: &str) -> anyhow::Result<SdkMeterProvider> {
    let exporter = opentelemetry_otlp::MetricExporter::builder()
        .with_http()
        .with_endpoint(format!("{}/v1/metrics", endpoint.trim_end_matches('/')))
        .build()
        .context("building the OTLP metrics exporter")?;
    Ok(SdkMeterProvider::builder()
        .with_periodic_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(service).build())
        .build())
}

fn otlp_provider(service: &'static str, endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .build()
        .context("building the OTLP exporter")?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(service).build())
        .build())
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// What the log layer wrote, shared with the test.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        /// The lines written, without their colours.
        fn lines(&self) -> Vec<String> {
            String::from_utf8(self.0.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(without_colours)
                .collect()
        }
    }

    /// `line` without its ANSI escape sequences (`ESC [ … m`).
    fn without_colours(line: &str) -> String {
        let mut plain = String::with_capacity(line.len());
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                chars.by_ref().find(|&c| c == 'm');
            } else {
                plain.push(c);
            }
        }
        plain
    }

    /// Logs one line outside any span and one inside a span, with traces
    /// made as export would make them (no exporter: the ids are what count);
    /// returns the lines and the span's ids.
    fn log_in_a_span(log_format: LogFormat, with_otel: bool) -> (Vec<String>, String, String) {
        let captured = Captured::default();
        let writer = captured.clone();
        let provider = SdkTracerProvider::builder().build();
        let otel =
            with_otel.then(|| tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        let subscriber = tracing_subscriber::registry()
            .with(log_layer(log_format, move || writer.clone()))
            .with(otel);
        let (trace_id, span_id) = tracing::subscriber::with_default(subscriber, || {
            tracing::info!("outside");
            let span = tracing::info_span!("turn", turn = 1);
            let _entered = span.enter();
            tracing::info!(tokens = 3, "inside");
            let context = span.context();
            let ids = context.span().span_context().clone();
            (ids.trace_id().to_string(), ids.span_id().to_string())
        });
        (captured.lines(), trace_id, span_id)
    }

    #[test]
    fn json_lines_in_a_traced_span_carry_its_trace_and_span_ids() {
        let (lines, trace_id, span_id) = log_in_a_span(LogFormat::Json, true);
        let lines: Vec<serde_json::Value> = lines
            .iter()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["message"], "outside");
        assert!(lines[0].get("trace_id").is_none());
        assert_eq!(lines[1]["message"], "inside");
        assert_eq!(lines[1]["tokens"], 3);
        assert_eq!(lines[1]["trace_id"], trace_id.as_str());
        assert_eq!(lines[1]["span_id"], span_id.as_str());
        assert_eq!(trace_id.len(), 32);
        assert_eq!(span_id.len(), 16);
    }

    #[test]
    fn human_lines_in_a_traced_span_end_with_its_trace_and_span_ids() {
        let (lines, trace_id, span_id) = log_in_a_span(LogFormat::Human, true);
        assert_eq!(lines.len(), 2);
        assert!(lines[0].ends_with("outside"), "{}", lines[0]);
        assert!(
            lines[1].contains("turn{turn=1}: inside tokens=3"),
            "{}",
            lines[1]
        );
        assert!(
            lines[1].ends_with(&format!(" trace_id={trace_id} span_id={span_id}")),
            "{}",
            lines[1]
        );
    }

    #[test]
    fn a_span_made_apart_from_its_request_joins_the_requests_trace() {
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        let theirs = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let ours = tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("gen_ai.chat");
            set_parent_from(&span, Some(theirs));
            traceparent_of(&span)
        })
        .unwrap();
        let parts: Vec<&str> = ours.split('-').collect();
        assert_eq!(parts[0], "00");
        assert_eq!(parts[1], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(parts[2], "00f067aa0ba902b7");
        assert_eq!(parts[3], "01");
    }

    #[test]
    fn without_export_a_span_names_no_traceparent() {
        let span = tracing::info_span!("gen_ai.chat");
        set_parent_from(&span, Some("garbage"));
        assert_eq!(traceparent_of(&span), None);
    }

    #[test]
    fn without_export_lines_are_tracings_own() {
        for log_format in [LogFormat::Human, LogFormat::Json] {
            let (lines, _, _) = log_in_a_span(log_format, false);
            assert_eq!(lines.len(), 2);
            assert!(
                lines.iter().all(|line| !line.contains("trace_id")),
                "{lines:?}"
            );
        }
    }
}

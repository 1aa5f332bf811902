"""The trace of one turn, as the OTLP receiver got it (infra/telemetry/run.sh).

run.sh started the receiver and the services, made one turn through the
gateway with the browser's `traceparent` (turn.py) and stopped the services,
which flushed their spans. These tests read `CONFAB_TELEMETRY_DIR`: the
export requests the receiver kept (decoded here with the official protobuf
definitions, `opentelemetry-proto`), `turn.json` and the services' logs.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

SERVICES = {"gateway", "chat-service", "demo-agents", "llm-proxy-service"}

GEN_AI_ATTRIBUTES = (
    "gen_ai.operation.name",
    "gen_ai.provider.name",
    "gen_ai.request.model",
    "gen_ai.response.model",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.response.finish_reasons",
)


@dataclass
class Span:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    start: int
    attributes: dict[str, object] = field(default_factory=dict)


def value_of(value: AnyValue) -> object:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [value_of(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: value_of(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind) if kind else None


def directory() -> Path:
    path = os.environ.get("CONFAB_TELEMETRY_DIR")
    if not path:
        pytest.skip("CONFAB_TELEMETRY_DIR is not set: run infra/telemetry/run.sh")
    return Path(path)


@pytest.fixture(scope="module")
def turn() -> dict:
    return json.loads((directory() / "turn.json").read_text())


@pytest.fixture(scope="module")
def all_spans() -> list[Span]:
    spans = []
    for body in sorted((directory() / "otlp").glob("traces-*.pb")):
        request = ExportTraceServiceRequest.FromString(body.read_bytes())
        for resource_spans in request.resource_spans:
            resource = {kv.key: value_of(kv.value) for kv in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans.append(
                        Span(
                            service=str(resource.get("service.name")),
                            name=span.name,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            start=span.start_time_unix_nano,
                            attributes={kv.key: value_of(kv.value) for kv in span.attributes},
                        )
                    )
    assert spans, "the receiver got no spans"
    return spans


@pytest.fixture(scope="module")
def spans(all_spans: list[Span], turn: dict) -> list[Span]:
    """The spans of the turn: those of the browser's trace."""
    ours = [s for s in all_spans if s.trace_id == turn["trace_id"]]
    assert ours, f"no span in the turn's trace {turn['trace_id']}"
    return ours


def test_the_turn_streamed_to_its_end(turn: dict) -> None:
    assert "done" in turn["events"], turn["body"]


def test_one_trace_covers_every_service(spans: list[Span]) -> None:
    assert {s.service for s in spans} >= SERVICES


def test_every_span_has_its_parent_in_the_trace(spans: list[Span], turn: dict) -> None:
    ids = {s.span_id for s in spans}
    roots = [s for s in spans if s.parent_span_id not in ids]
    # One root: the gateway's request, child of the browser's span.
    assert [(r.service, r.parent_span_id) for r in roots] == [
        ("gateway", turn["browser_span_id"])
    ], roots


def test_every_hop_has_its_span_under_the_one_before(spans: list[Span]) -> None:
    """gateway request > its upstream call > chat-service's request > the
    turn > its A2A call > the agent's request > its task > its LLM calls >
    llm-proxy-service (checked above); the database and bus operations the
    turn waits on are spans of their own."""
    by_id = {s.span_id: s for s in spans}

    def parent(span: Span) -> Span | None:
        return by_id.get(span.parent_span_id)

    def named(service: str, prefix: str) -> list[Span]:
        found = [s for s in spans if s.service == service and s.name.startswith(prefix)]
        assert found, (service, prefix, "\n".join(tree(spans)))
        return found

    (upstream,) = named("gateway", "POST chat")
    assert (parent(upstream).service, parent(upstream).name) == ("gateway", "request")
    assert upstream.attributes["http.response.status_code"] == 200
    (chat_request,) = [s for s in named("chat-service", "request") if parent(s) is upstream]
    (turn,) = named("chat-service", "turn math")
    assert parent(turn) is chat_request
    calls = named("chat-service", "a2a ")
    assert all(parent(c) is turn for c in calls), calls
    assert {c.attributes["rpc.system"] for c in calls} == {"jsonrpc"}
    agent_requests = named("demo-agents", "request")
    assert all(parent(r) in calls for r in agent_requests), agent_requests
    tasks = named("demo-agents", "invoke_agent math")
    assert all(parent(t) in agent_requests for t in tasks), tasks
    assert tasks[0].attributes["gen_ai.operation.name"] == "invoke_agent"
    agent_llm = named("demo-agents", "chat ")
    assert all(parent(c) in tasks for c in agent_llm), agent_llm

    db = {(s.name, parent(s).name) for s in spans if s.service == "chat-service" and "db.system.name" in s.attributes}
    # The user's message (and the reply's row) before the turn starts; the
    # reply saved at its end.
    assert {("INSERT messages", "request"), ("UPDATE messages", "turn math")} <= db, db
    bus = {(s.name, parent(s).name) for s in spans if s.service == "chat-service" and "messaging.system" in s.attributes}
    # The conversation claimed for the turn, and let go at its end.
    assert {("claim turn-claims", "request"), ("release turn-claims", "turn math")} <= bus, bus


def test_llm_spans_carry_the_gen_ai_attributes(spans: list[Span]) -> None:
    llm = [s for s in spans if s.service == "llm-proxy-service" and "gen_ai.operation.name" in s.attributes]
    # The math agent's tool loop: the calculator call, then the answer.
    assert len(llm) >= 2, [s.name for s in spans]
    for span in llm:
        missing = [a for a in GEN_AI_ATTRIBUTES if a not in span.attributes]
        assert not missing, (span.name, missing, span.attributes)
        attributes = span.attributes
        assert attributes["gen_ai.operation.name"] == "chat"
        assert attributes["gen_ai.provider.name"]
        assert attributes["gen_ai.response.model"]
        assert attributes["gen_ai.usage.input_tokens"] > 0
        assert attributes["gen_ai.usage.output_tokens"] > 0
        reasons = attributes["gen_ai.response.finish_reasons"]
        assert isinstance(reasons, list) and reasons, reasons
    assert {tuple(s.attributes["gen_ai.response.finish_reasons"]) for s in llm} >= {
        ("tool_calls",),
        ("stop",),
    }


def test_each_llm_call_has_its_provider_request(spans: list[Span]) -> None:
    llm = [s for s in spans if s.service == "llm-proxy-service" and "gen_ai.operation.name" in s.attributes]
    for call in llm:
        requests = [s for s in spans if s.parent_span_id == call.span_id]
        assert [(s.name, s.attributes.get("confab.attempt")) for s in requests] == [("upstream builtin", 1)]


def test_llm_spans_carry_the_messages_when_contents_are_captured(spans: list[Span]) -> None:
    """llm-proxy-service runs with `[telemetry] capture_content = true`."""
    llm = sorted(
        (s for s in spans if s.service == "llm-proxy-service" and "gen_ai.operation.name" in s.attributes),
        key=lambda s: s.start,
    )
    first, last = (
        {key: json.loads(span.attributes[key]) for key in ("gen_ai.system_instructions", "gen_ai.input.messages", "gen_ai.output.messages")}
        for span in (llm[0], llm[-1])
    )
    assert first["gen_ai.system_instructions"][0]["type"] == "text"
    assert first["gen_ai.input.messages"][-1] == {
        "role": "user",
        "parts": [{"type": "text", "content": "What is 6 * 7?"}],
    }
    (asked,) = first["gen_ai.output.messages"]
    assert asked["finish_reason"] == "tool_call"
    assert [p["type"] for p in asked["parts"]] == ["tool_call"]
    assert asked["parts"][0]["name"] == "calculator"
    assert last["gen_ai.input.messages"][-1]["role"] == "tool"
    (answer,) = last["gen_ai.output.messages"]
    assert answer["finish_reason"] == "stop"
    assert "42" in answer["parts"][0]["content"]


def test_the_agents_spans_never_carry_contents(spans: list[Span]) -> None:
    agent = [s for s in spans if s.service == "demo-agents" and "gen_ai.operation.name" in s.attributes]
    assert agent
    assert not [s for s in agent if "gen_ai.input.messages" in s.attributes]


def histogram_points(service: str, name: str) -> list[tuple[dict[str, object], int, float]]:
    """(attributes, count, sum) of each data point of histogram `name` that
    `service` exported (its last export holds the cumulative totals)."""
    points = []
    for body in sorted((directory() / "otlp").glob("metrics-*.pb")):
        request = ExportMetricsServiceRequest.FromString(body.read_bytes())
        for resource_metrics in request.resource_metrics:
            resource = {kv.key: value_of(kv.value) for kv in resource_metrics.resource.attributes}
            if resource.get("service.name") != service:
                continue
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name != name:
                        continue
                    points = [
                        ({kv.key: value_of(kv.value) for kv in p.attributes}, p.count, p.sum)
                        for p in metric.histogram.data_points
                    ]
    return points


def test_gen_ai_metrics_count_the_turns_calls_and_tokens(spans: list[Span]) -> None:
    llm = [s for s in spans if s.service == "llm-proxy-service" and "gen_ai.operation.name" in s.attributes]
    usage = histogram_points("llm-proxy-service", "gen_ai.client.token.usage")
    by_type = {attributes["gen_ai.token.type"]: (count, total) for attributes, count, total in usage}
    assert by_type == {
        "input": (len(llm), sum(s.attributes["gen_ai.usage.input_tokens"] for s in llm)),
        "output": (len(llm), sum(s.attributes["gen_ai.usage.output_tokens"] for s in llm)),
    }, usage
    for attributes, _, _ in usage:
        assert attributes["gen_ai.operation.name"] == "chat"
        assert attributes["gen_ai.provider.name"] == "builtin"
        assert attributes["gen_ai.request.model"] == "builtin"
    durations = histogram_points("llm-proxy-service", "gen_ai.client.operation.duration")
    assert sum(count for _, count, _ in durations) == len(llm), durations
    assert all("error.type" not in attributes for attributes, _, _ in durations)


def log_lines(service: str) -> list[str]:
    return (directory() / f"{service}.log").read_text().splitlines()


def test_json_log_lines_carry_the_trace_and_span_ids(spans: list[Span], turn: dict) -> None:
    ids = {s.span_id for s in spans}
    lines = [json.loads(line) for line in log_lines("llm-proxy-service") if line.startswith("{")]
    ours = [line for line in lines if line.get("trace_id") == turn["trace_id"]]
    assert ours, "no JSON log line of llm-proxy-service names the turn's trace"
    assert all(line.get("span_id") in ids for line in ours), ours


def test_human_log_lines_carry_the_trace_and_span_ids(spans: list[Span], turn: dict) -> None:
    ids = {s.span_id for s in spans}
    ours = [line for line in log_lines("demo-agents") if f"trace_id={turn['trace_id']}" in line]
    assert ours, "no log line of demo-agents names the turn's trace"
    for line in ours:
        span_id = line.split("span_id=", 1)[1][:16]
        assert span_id in ids, line


def tree(spans: list[Span]) -> list[str]:
    children: dict[str, list[Span]] = defaultdict(list)
    ids = {s.span_id for s in spans}
    for span in spans:
        children[span.parent_span_id if span.parent_span_id in ids else ""].append(span)
    lines: list[str] = []

    def walk(parent: str, depth: int) -> None:
        for span in sorted(children[parent], key=lambda s: s.start):
            lines.append(f"{'  ' * depth}{span.service}: {span.name}")
            walk(span.span_id, depth + 1)

    walk("", 0)
    return lines


def test_span_tree_of_the_turn(spans: list[Span], turn: dict, capsys: pytest.CaptureFixture) -> None:
    lines = tree(spans)
    assert len(lines) == len(spans)
    with capsys.disabled():
        print(f"\nthe turn's trace {turn['trace_id']}: {len(spans)} spans")
        print("\n".join(lines))

"""The latency the gateway adds in front of chat-service, next to what nginx
adds there (the measuring client of infra/bench/gateway.sh).

Three paths to the same chat-service, as the same logged-in user:

  direct   client → chat-service /chat/conversations…, with the user's access
           token (chat-service verifies it against the gateway's keys);
  gateway  client → gateway /api/v1/conversations… → chat-service (the gateway
           verifies the token and passes the identity on);
  nginx    client → nginx /api/v1/conversations… (proxy_pass) → chat-service,
           the token forwarded as it is.

Each path has its own httpx.Client (synchronous: requests are sequential, so
an event loop would only add overhead) holding one kept-alive connection; the
connections each client opened are counted (httpcore's trace hook) and
printed, 1 when keep-alive held. Every iteration sends the request once on
each path, one after the other, in an order that changes every iteration
(balanced_orders): over each cycle of orders every path is as often first,
second and last, and is preceded, within an iteration and across its start,
as often by each other path. So neither a drift of the machine over the run
(the database growing) nor "who goes after whom" weighs on one path more than
another: the work a request leaves behind (chat-service persisting a turn,
the model's calls being recorded) and the caches it leaves warm fall on each
path alike. (Rotating one order instead, as this client first did, put the
gateway after the direct path and nginx after the gateway two times in
three.) --warmup iterations first, unmeasured, then --n measured ones, per
workload:

  json  POST …/conversations {"title":"bench"}: time from just before the
        request is sent to the full response read; 201 with that title
        expected, anything else is an error.
  sse   POST …/conversations/{id}/messages/stream {"message": …}: time to the
        first SSE event (the first `data:` bytes) and to the end of the
        stream. The message matches no rule of the builtin model's fixtures,
        so the model echoes it. Read as raw bytes, split into events only at
        the end (the same small cost on every path); an error unless HTTP 200,
        no `error` event, a `done` event with status `complete` and the text
        events spelling the message. Each path has its own conversation,
        created through that path (not timed) and replaced every
        --per-conversation turns so the history chat-service sends the agent
        stays short. Also printed: how many body pieces (HTTP chunks, as
        h11 hands them over) the client parsed per stream on each path,
        which shows whether a proxy joined events that arrived together:
        each piece costs the client a turn of its loop.

Errors are counted per path and left out of the timings; their kinds are
printed. Times are from time.perf_counter(). Percentiles are nearest-rank.
"Added by X" at p50 is p50(X) - p50(direct) (likewise p99); the median of the
per-iteration differences X - direct is printed next to it as a check on
noise. The ratio is gateway's added p50 over nginx's, against the target
(--target, 1.5).

With --gateway-form SERVICE_TOKEN a fourth path is measured, also straight
to chat-service but in the request form the gateway sends (DESIGN §5): the
service token, X-User-Id/-Role/-Name and `_auth` in the body instead of the
access token, a fresh X-Request-Id and traceparent per request, and
X-Forwarded-For. p50(it) - p50(direct) is what that form costs chat-service
(and the agent and model it passes the request id and traceparent to):
part of "added by gateway" that is spent behind the gateway, not in it.

With --cpu NAME=PID[,PID…] (gateway.sh passes the gateway's process, and
nginx's master with its workers), each workload also prints the CPU time
each proxy used per measured request: the time its threads spent on a CPU
(the first field of /proc/PID/task/TID/schedstat, in ns) over the measured
iterations, divided by their count. The proxies share the machine's CPUs
with chat-service, the agent, the model and this client, so what a proxy
spends is taken from the turn it forwards. How much it spends is only half
of it: CPU spent on the request path delays every request, CPU spent
between streamed packets much less (hops.py splits the time by hop).

Exit status: 1 when any request failed, else 2 when a ratio missed the
target, else 0.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import math
import os
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field

import httpx

from latency_stats import percentile, stats

# The optional path of --gateway-form.
FORM = "gateway_form"
LABELS = {
    "direct": "direct (chat-service)",
    "gateway": "via gateway",
    "nginx": "via nginx",
    FORM: "direct, gateway's form",
}
TITLE = "bench"
# Matches no rule of infra/llm-fixtures/demo.toml: echoed, a word per chunk.
MESSAGE = "hello from the gateway bench"


@dataclass
class Sample:
    """One request's seconds (first event only for a stream), or its error."""

    first: float | None = None
    end: float | None = None
    error: str | None = None
    pieces: int = 0  # body pieces the client parsed (HTTP chunks): how events were joined


@dataclass
class Path:
    name: str
    client: httpx.Client
    base: str  # …/conversations on this path
    headers: dict
    # The identity the gateway would inject (`_auth`, X-User-*), for the
    # path of --gateway-form; `headers` then carries the service token.
    identity: dict | None = None
    connects: int = 0
    samples: dict[str, list[Sample]] = field(default_factory=lambda: {"json": [], "sse": []})

    def trace(self, event: str, info: dict) -> None:
        if event == "connection.connect_tcp.complete":
            self.connects += 1

    def request(self, body: dict) -> tuple[dict, bytes]:
        """Headers and body of a request carrying `body` on this path (JSON
        encoded as httpx's `json=` does)."""
        if self.identity is None:
            return self.headers | {"content-type": "application/json"}, encode(body)
        headers = self.headers | {
            "content-type": "application/json",
            "x-user-id": self.identity["user_id"],
            "x-user-role": self.identity["role"],
            "x-user-name": self.identity["username"],
            "x-request-id": str(uuid.uuid4()),
            "traceparent": f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-01",
            "x-forwarded-for": "127.0.0.1",
        }
        return headers, encode(body | {"_auth": self.identity})

    def post(self, url: str, body: dict) -> httpx.Response:
        headers, content = self.request(body)
        return self.client.post(url, headers=headers, content=content, extensions={"trace": self.trace})


def encode(body: dict) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


# --- the two workloads: one request on one path ----------------------------------


def json_post(path: Path) -> Sample:
    s = Sample()
    start = time.perf_counter()
    try:
        r = path.post(path.base, {"title": TITLE})
        s.end = time.perf_counter() - start
    except httpx.HTTPError as err:
        s.error = f"{type(err).__name__}: {err}"
        return s
    if r.status_code != 201:
        s.error = f"HTTP {r.status_code}: {r.text[:200]}"
    else:
        try:
            if r.json().get("title") != TITLE:
                s.error = f"unexpected body {r.text[:200]}"
        except ValueError as err:
            s.error = f"not JSON: {err}"
    return s


def sse_turn(path: Path, conversation: str) -> Sample:
    s = Sample()
    body = bytearray()
    url = f"{path.base}/{conversation}/messages/stream"
    headers, content = path.request({"message": MESSAGE})
    start = time.perf_counter()
    try:
        with path.client.stream(
            "POST", url, headers=headers, content=content, extensions={"trace": path.trace}
        ) as response:
            if response.status_code != 200:
                response.read()
                s.error = f"HTTP {response.status_code}: {response.text[:200]}"
                return s
            for chunk in response.iter_raw():
                body += chunk
                s.pieces += 1
                if s.first is None and b"data:" in body:
                    s.first = time.perf_counter() - start
            s.end = time.perf_counter() - start
    except httpx.HTTPError as err:
        s.error = f"{type(err).__name__}: {err}"
        return s
    status, text = None, []
    for line in body.decode(errors="replace").splitlines():
        if not line.startswith("data:"):
            continue
        try:
            event = json.loads(line[5:])
        except json.JSONDecodeError as err:
            s.error = f"JSONDecodeError: {err}"
            return s
        kind = event.get("type")
        if kind == "text":
            text.append(event.get("text", ""))
        elif kind == "error" and s.error is None:
            s.error = f"error event {event.get('error')}"
        elif kind == "done":
            status = event.get("status")
    if s.error is None:
        if s.first is None or status is None:
            s.error = "the stream ended without done"
        elif status != "complete":
            s.error = f"done with status {status}"
        elif " ".join("".join(text).split()) != MESSAGE:
            s.error = f"unexpected text {''.join(text)[:100]!r}"
    return s


def new_conversation(path: Path) -> str:
    r = path.post(path.base, {"title": "bench stream"})
    r.raise_for_status()
    return r.json()["id"]


# --- the run ---------------------------------------------------------------------


def balanced_orders(n: int) -> list[tuple[int, ...]]:
    """Every order of n paths once, arranged in a cycle so that the path
    that ends one iteration and the one that starts the next are never the
    same and form each ordered pair equally often. With all orders, each
    ordered pair is also adjacent within iterations equally often, and each
    path takes each place equally often: so over the cycle every path is
    preceded by each other path as often (a carry-over balanced design)."""
    orders = list(itertools.permutations(range(n)))
    per_pair = len(orders) // (n * (n - 1))
    seen: dict[tuple[int, int], int] = {}
    cycle = [orders[0]]
    left = set(orders[1:])

    def fits(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
        return a[-1] != b[0] and seen.get((a[-1], b[0]), 0) < per_pair

    def extend() -> bool:
        if not left:
            return fits(cycle[-1], cycle[0])
        for order in sorted(left):
            if fits(cycle[-1], order):
                pair = (cycle[-1][-1], order[0])
                seen[pair] = seen.get(pair, 0) + 1
                cycle.append(order)
                left.remove(order)
                if extend():
                    return True
                left.add(order)
                cycle.pop()
                seen[pair] -= 1
        return False

    if not extend():  # none exists: fall back to every order, unarranged
        return orders
    return cycle


def ordered(i: int, paths: list[Path], orders: list[tuple[int, ...]]) -> list[Path]:
    return [paths[k] for k in orders[i % len(orders)]]


def run_json(paths: list[Path], iterations: int, keep: bool) -> None:
    orders = balanced_orders(len(paths))
    for i in range(iterations):
        for path in ordered(i, paths, orders):
            s = json_post(path)
            if keep:
                path.samples["json"].append(s)


def run_sse(paths: list[Path], iterations: int, keep: bool, per_conversation: int, state: dict) -> None:
    orders = balanced_orders(len(paths))
    for i in range(iterations):
        for path in ordered(i, paths, orders):
            conversation, used = state.get(path.name, (None, 0))
            if conversation is None or used >= per_conversation:
                try:
                    conversation, used = new_conversation(path), 0
                except (httpx.HTTPError, ValueError, KeyError) as err:
                    # Counted as this turn's error; the next turn tries again.
                    state.pop(path.name, None)
                    if keep:
                        path.samples["sse"].append(Sample(error=f"creating a conversation: {err}"))
                    continue
            state[path.name] = (conversation, used + 1)
            s = sse_turn(path, conversation)
            if keep:
                path.samples["sse"].append(s)


# --- report ----------------------------------------------------------------------


def paired_median(path: list[Sample], direct: list[Sample], attr: str) -> float:
    """Median of X - direct over the iterations where both succeeded, in ms."""
    diffs = sorted(
        (getattr(x, attr) - getattr(d, attr)) * 1000
        for x, d in zip(path, direct)
        if x.error is None and d.error is None
    )
    return percentile(diffs, 50)


def report_metric(paths: dict[str, Path], workload: str, attr: str, what: str, target: float) -> tuple[dict, bool]:
    header = (
        f"  {what:<22} {'count':>6} {'errors':>6} | {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} "
        f"{'max ms':>8} {'mean ms':>8}"
    )
    print(header)
    print("  " + "-" * (len(header) - 2))
    rows = {}
    for name in paths:
        samples = paths[name].samples[workload]
        ok = [getattr(s, attr) for s in samples if s.error is None]
        s = stats(ok)
        rows[name] = s | {"count": len(ok), "errors": len(samples) - len(ok)}
        print(
            f"  {LABELS[name]:<22} {len(ok):>6} {len(samples) - len(ok):>6} | "
            f"{s['p50']:8.3f} {s['p90']:8.3f} {s['p99']:8.3f} {s['max']:8.3f} {s['mean']:8.3f}"
        )
    added = {}
    for name in ("gateway", "nginx"):
        a50 = rows[name]["p50"] - rows["direct"]["p50"]
        a99 = rows[name]["p99"] - rows["direct"]["p99"]
        paired = paired_median(paths[name].samples[workload], paths["direct"].samples[workload], attr)
        added[name] = {"p50": a50, "p99": a99, "paired_median": paired}
        print(
            f"  added by {name + ':':<13} p50 {a50:+8.3f} ms   p99 {a99:+8.3f} ms   "
            f"(median of paired differences {paired:+8.3f} ms)"
        )
    if FORM in paths:
        a50 = rows[FORM]["p50"] - rows["direct"]["p50"]
        paired = paired_median(paths[FORM].samples[workload], paths["direct"].samples[workload], attr)
        added[FORM] = {"p50": a50, "paired_median": paired}
        print(
            f"  of which the gateway's request form costs chat-service: p50 {a50:+8.3f} ms   "
            f"(median of paired differences {paired:+8.3f} ms)"
        )
    g, n = added["gateway"]["p50"], added["nginx"]["p50"]
    if math.isnan(g) or math.isnan(n):
        ratio, met, verdict = math.nan, False, "NOT MET (no successful samples)"
    elif n <= 0:
        # nginx adds nothing measurable: the ratio is undefined; the gateway
        # meets the target only if it adds nothing either.
        ratio, met = math.nan, g <= 0
        verdict = "met (neither adds anything measurable)" if met else "NOT MET (nginx adds nothing measurable)"
    else:
        ratio = g / n
        met = ratio <= target
        verdict = "met" if met else "NOT MET"
    print(f"  gateway/nginx, added p50: {ratio:.2f}  (target <= {target:g}: {verdict})")
    return {"paths": rows, "added": added, "ratio": ratio, "met": met}, met


def cpu_seconds(pids: list[int]) -> float:
    """Seconds the processes' threads have spent on a CPU so far. Threads (or
    processes) that have ended are not counted: the proxies' workers live as
    long as the run, and a proxy that died shows in the errors."""
    total = 0
    for pid in pids:
        tasks = f"/proc/{pid}/task"
        try:
            tids = os.listdir(tasks)
        except FileNotFoundError:
            continue
        for tid in tids:
            try:
                with open(f"{tasks}/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            except FileNotFoundError:  # the thread ended meanwhile
                pass
    return total / 1e9


def timed(run, processes: dict[str, list[int]]) -> tuple[float, dict[str, float]]:
    """Runs `run()`: the seconds it took, and the CPU seconds each process
    used meanwhile."""
    before = {name: cpu_seconds(pids) for name, pids in processes.items()}
    started = time.perf_counter()
    run()
    elapsed = time.perf_counter() - started
    return elapsed, {name: cpu_seconds(pids) - before[name] for name, pids in processes.items()}


def report_cpu(processes: dict[str, list[int]], used: dict[str, float], requests: int) -> dict[str, float]:
    """Prints and returns each process's CPU milliseconds per request."""
    per = {name: used[name] / requests * 1000 for name in processes}
    if per:
        line = ", ".join(f"{name} {ms:.3f} ms" for name, ms in per.items())
        if per.get("gateway") and per.get("nginx"):
            line += f"; gateway/nginx {per['gateway'] / per['nginx']:.2f}"
        print(f"  CPU per request (its threads' time on a CPU over the measured {requests}): {line}")
    return per


def print_errors(paths: dict[str, Path], workload: str) -> None:
    for name in paths:
        kinds: dict[str, int] = {}
        for s in paths[name].samples[workload]:
            if s.error is not None:
                kinds[s.error[:160]] = kinds.get(s.error[:160], 0) + 1
        if kinds:
            print(f"  errors, {LABELS[name]}:")
            for e, k in sorted(kinds.items(), key=lambda kv: -kv[1])[:8]:
                print(f"    {k} x {e}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateway-url", required=True)
    parser.add_argument("--chat-url", required=True)
    parser.add_argument("--nginx-url", required=True)
    parser.add_argument("--n", type=int, default=2000, help="measured iterations per workload (each on every path)")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--per-conversation", type=int, default=50)
    parser.add_argument("--target", type=float, default=1.5, help="largest gateway/nginx ratio of the added p50")
    parser.add_argument("--workloads", default="json sse")
    parser.add_argument("--samples", help="write every measured request here (JSON)")
    parser.add_argument(
        "--gateway-form",
        metavar="SERVICE_TOKEN",
        help="also send straight to chat-service in the gateway's request form, with this service token",
    )
    parser.add_argument(
        "--cpu",
        action="append",
        default=[],
        metavar="NAME=PID[,PID…]",
        help="report the CPU time these processes use per measured request (gateway, nginx)",
    )
    args = parser.parse_args()
    processes: dict[str, list[int]] = {}
    for spec in args.cpu:
        name, _, pids = spec.partition("=")
        try:
            processes[name] = [int(pid) for pid in pids.split(",")]
        except ValueError:
            parser.error(f"--cpu {spec}: expected NAME=PID[,PID…]")
    workloads = args.workloads.split()
    if args.n < 1 or args.warmup < 0 or args.per_conversation < 1 or not set(workloads) <= {"json", "sse"}:
        parser.error("--n and --per-conversation at least 1, --warmup at least 0, --workloads of json, sse")

    timeout = httpx.Timeout(60.0)
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1, keepalive_expiry=None)

    def client() -> httpx.Client:
        return httpx.Client(timeout=timeout, limits=limits, trust_env=False)

    # One login, through the gateway (it issues the tokens).
    with client() as c:
        gateway = args.gateway_url.rstrip("/")
        credentials = {"username": f"bench-{uuid.uuid4().hex[:12]}", "password": "bench " + uuid.uuid4().hex}
        r = c.post(f"{gateway}/api/v1/auth/register", json=credentials)
        r.raise_for_status()
        r = c.post(f"{gateway}/api/v1/auth/login", json=credentials)
        r.raise_for_status()
        token = r.json()["access_token"]
        headers = {"authorization": f"Bearer {token}"}

    chat_conversations = f"{args.chat_url.rstrip('/')}/chat/conversations"
    paths = {
        "direct": Path("direct", client(), chat_conversations, headers),
        "gateway": Path("gateway", client(), f"{gateway}/api/v1/conversations", headers),
        "nginx": Path("nginx", client(), f"{args.nginx_url.rstrip('/')}/api/v1/conversations", headers),
    }
    if args.gateway_form:
        # The identity the gateway injects, as its access token names it.
        claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
        identity = {"user_id": claims["sub"], "username": claims["name"], "role": claims["role"]}
        paths[FORM] = Path(
            FORM,
            client(),
            chat_conversations,
            {"x-service-token": args.gateway_form},
            identity,
        )
    order = list(paths.values())
    summary, all_met = {}, True
    try:
        for workload in workloads:
            if workload == "json":
                run_json(order, args.warmup, False)
                elapsed, cpu_used = timed(lambda: run_json(order, args.n, True), processes)
                print()
                print(
                    f'small JSON POST: POST …/conversations {{"title":"{TITLE}"}} -> 201, time to the full '
                    f"response; {args.n} per path after {args.warmup} warm-up, measured in {elapsed:.1f} s"
                )
                summary["json"], met = report_metric(paths, "json", "end", "response", args.target)
                summary["json_cpu_ms"] = report_cpu(processes, cpu_used, args.n)
                all_met &= met
            else:
                state: dict = {}
                run_sse(order, args.warmup, False, args.per_conversation, state)
                elapsed, cpu_used = timed(
                    lambda: run_sse(order, args.n, True, args.per_conversation, state), processes
                )
                print()
                print(
                    f'SSE stream: POST …/conversations/{{id}}/messages/stream "{MESSAGE}" (echoed, builtin '
                    f"model); {args.n} per path after {args.warmup} warm-up, a new conversation every "
                    f"{args.per_conversation} turns; measured in {elapsed:.1f} s"
                )
                summary["sse_first"], met1 = report_metric(paths, "sse", "first", "first event", args.target)
                print()
                summary["sse_end"], met2 = report_metric(paths, "sse", "end", "end of stream", args.target)
                print(
                    "  body pieces the client parsed per stream (HTTP chunks, mean): "
                    + ", ".join(
                        f"{LABELS[name]} {statistics.fmean(s.pieces for s in paths[name].samples['sse'] if s.error is None):.2f}"
                        for name in paths
                        if any(s.error is None for s in paths[name].samples["sse"])
                    )
                )
                summary["sse_cpu_ms"] = report_cpu(processes, cpu_used, args.n)
                all_met &= met1 and met2
            print_errors(paths, workload)
            sys.stdout.flush()
    finally:
        for p in order:
            p.client.close()

    print()
    print(
        "connections opened (1 = one kept-alive connection throughout): "
        + ", ".join(f"{LABELS[p.name]} {p.connects}" for p in order)
    )
    failed = any(s.error is not None for p in order for w in p.samples.values() for s in w)
    print(
        f"target gateway/nginx added p50 <= {args.target:g}: "
        f"{'met' if all_met else 'NOT MET'}{'; some requests FAILED' if failed else ''}"
    )
    if args.samples:
        with open(args.samples, "w") as f:
            json.dump(
                {
                    "summary_ms": summary,
                    "samples": {p.name: {w: [s.__dict__ for s in v] for w, v in p.samples.items()} for p in order},
                },
                f,
            )
    return 1 if failed else 0 if all_met else 2


if __name__ == "__main__":
    sys.exit(main())

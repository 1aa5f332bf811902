"""N streaming chat turns open at once through the gateway (the measuring
client of infra/bench/chat.sh).

For each N of --ns, one after the other:

  1. N new conversations with the math agent (POST /api/v1/conversations),
     created --setup-concurrency at a time, then a short pause;
  2. chat-service's idle RSS (VmRSS of --chat-pid, the mean of a few reads);
  3. the burst: N streaming turns (POST /api/v1/conversations/{id}/messages/
     stream), one per conversation, all started together. The message is
     --words words that match no rule of the builtin model's fixtures, so the
     model echoes it back one word per chunk; with chat.sh's chunk delay
     (20 ms) a turn streams for about words x delay (~1 s for 50 words), long
     enough for all N to be open at the same time. A thread reads chat-service's
     VmRSS and its open file descriptors every --sample-ms meanwhile;
  4. the read-back: every conversation's messages (GET /api/v1/conversations/
     {id}/messages), --setup-concurrency at a time.

A turn is timed with time.perf_counter() from just before its request is sent
to its first SSE event (time to first event, whatever the event) and to the
end of its stream. It is an error when the answer is not HTTP 200, or the
stream ends without a `done` event whose status is `complete`, or carries an
`error` event. The client reads each stream as raw bytes and splits it into
events only when it has ended (the client shares the machine's CPUs with the
services it measures). The read-back must find exactly two messages per
conversation, the user's then the assistant's, both `complete`: fewer is
"lost", more is "duplicated", any other role or status is "not complete", and
an assistant message that is not the echoed message is "wrong text".

RSS per open stream = (peak VmRSS during the burst - idle VmRSS before it) / N.
The idle figure of a later N includes what the allocator kept from the bursts
before it; the difference is still what that burst added.

One table row per N; exit status 1 when any turn failed or any read-back did
not hold.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time
import uuid
from dataclasses import dataclass

import httpx

from latency_stats import percentile

# Words of no fixture rule: the builtin model echoes the message word by word.
WORDS = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima mike "
    "november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu"
).split()


def message(words: int) -> str:
    return " ".join(WORDS[i % len(WORDS)] for i in range(words))


@dataclass
class Turn:
    first_event: float | None = None
    end: float | None = None
    error: str | None = None


# --- chat-service's memory --------------------------------------------------------


def vm_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


class Sampler:
    """Peak VmRSS and open file descriptors of a process, read by a thread
    (the event loop is busy with the streams and would sample unevenly)."""

    def __init__(self, pid: int, every: float):
        self.pid, self.every = pid, every
        self.peak_rss = 0
        self.peak_fds = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak_rss = max(self.peak_rss, vm_rss_kib(self.pid))
            except (OSError, RuntimeError):
                return
            self.peak_fds = max(self.peak_fds, open_fds(self.pid))
            self.samples += 1
            self._stop.wait(self.every)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


# --- the gateway's API ---------------------------------------------------------------


async def log_in(client: httpx.AsyncClient, base: str) -> dict:
    user = f"bench-{uuid.uuid4().hex[:12]}"
    password = "bench password " + uuid.uuid4().hex
    credentials = {"username": user, "password": password}
    r = await client.post(f"{base}/api/v1/auth/register", json=credentials)
    r.raise_for_status()
    r = await client.post(f"{base}/api/v1/auth/login", json=credentials)
    r.raise_for_status()
    return {"authorization": f"Bearer {r.json()['access_token']}"}


async def bounded(concurrency: int, jobs):
    """Runs the coroutines of `jobs`, at most `concurrency` at a time, in order."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one(job):
        async with semaphore:
            return await job

    return await asyncio.gather(*(one(j) for j in jobs))


async def new_conversation(client, base, headers) -> str:
    r = await client.post(f"{base}/api/v1/conversations", headers=headers, json={"agent_id": "math"})
    r.raise_for_status()
    return r.json()["id"]


async def turn(client, base, headers, conversation: str, text: str, go: asyncio.Event) -> Turn:
    t = Turn()
    body = bytearray()
    await go.wait()
    url = f"{base}/api/v1/conversations/{conversation}/messages/stream"
    start = time.perf_counter()
    try:
        async with client.stream("POST", url, headers=headers, json={"message": text}) as response:
            if response.status_code != 200:
                await response.aread()
                t.error = f"HTTP {response.status_code}: {response.text[:200]}"
                return t
            # Raw bytes, split into events only at the end: per read, the
            # client does no more than it must (it shares the machine's CPUs
            # with the services it measures).
            async for chunk in response.aiter_raw():
                body += chunk
                if t.first_event is None and b"data:" in body:
                    t.first_event = time.perf_counter() - start
            t.end = time.perf_counter() - start
    except httpx.HTTPError as err:
        t.error = f"{type(err).__name__}: {err}"
        return t
    status = None
    for line in body.decode().splitlines():
        # Text events are the bulk; the echoed text is checked on the stored
        # message instead (check_messages).
        if not line.startswith("data:") or line.startswith('data: {"type":"text"'):
            continue
        try:
            event = json.loads(line[5:])
        except json.JSONDecodeError as err:
            t.error = f"JSONDecodeError: {err}"
            break
        kind = event.get("type")
        if kind == "error" and t.error is None:
            t.error = f"error event {event.get('error')}"
        elif kind == "done":
            status = event.get("status")
    if t.error is None:
        if status is None:
            t.error = "the stream ended without done"
        elif status != "complete":
            t.error = f"done with status {status}"
    return t


async def check_messages(client, base, headers, conversation: str, text: str) -> str:
    """'ok', 'lost', 'duplicated', 'not complete', 'wrong text' or 'read failed: …'."""
    try:
        r = await client.get(
            f"{base}/api/v1/conversations/{conversation}/messages", headers=headers, params={"limit": 100}
        )
        r.raise_for_status()
        items = r.json()["items"]
    except (httpx.HTTPError, KeyError, ValueError) as err:
        return f"read failed: {type(err).__name__}: {err}"
    if len(items) < 2:
        return "lost"
    if len(items) > 2:
        return "duplicated"
    roles = [m["role"] for m in items]
    if roles != ["user", "assistant"] or any(m["status"] != "complete" for m in items):
        return "not complete"
    if " ".join(items[1]["content"].split()) != text:
        return "wrong text"
    return "ok"


# --- one N ---------------------------------------------------------------------------


async def run_n(args, client, headers, n: int) -> tuple[dict, list[Turn], dict[str, int]]:
    """Setup and read-back on `client`; the burst on a client of its own, so every
    turn opens a new connection (no pool limit: all N open at once)."""
    base = args.gateway_url
    text = message(args.words)
    conversations = await bounded(
        args.setup_concurrency, [new_conversation(client, base, headers) for _ in range(n)]
    )
    await asyncio.sleep(1.0)
    idle = []
    for _ in range(5):
        idle.append(vm_rss_kib(args.chat_pid))
        await asyncio.sleep(0.1)
    idle_rss = sum(idle) / len(idle)

    limits = httpx.Limits(max_connections=None, max_keepalive_connections=n)
    timeout = httpx.Timeout(args.timeout, pool=None)
    async with httpx.AsyncClient(timeout=timeout, limits=limits, trust_env=False) as burst:
        go = asyncio.Event()
        tasks = [asyncio.create_task(turn(burst, base, headers, c, text, go)) for c in conversations]
        await asyncio.sleep(0)  # every task now waits on `go`
        with Sampler(args.chat_pid, args.sample_ms / 1000) as sampler:
            started = time.perf_counter()
            go.set()
            turns = await asyncio.gather(*tasks)
            wall = time.perf_counter() - started

    checks: dict[str, int] = {}
    for verdict in await bounded(
        args.setup_concurrency, [check_messages(client, base, headers, c, text) for c in conversations]
    ):
        checks[verdict] = checks.get(verdict, 0) + 1

    ok = [t for t in turns if t.error is None]
    ttfe = sorted(t.first_event * 1000 for t in ok)
    total = sorted(t.end * 1000 for t in ok)
    row = {
        "n": n,
        "errors": n - len(ok),
        "ttfe_ms": {p: percentile(ttfe, q) for p, q in (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))},
        "turn_ms": {p: percentile(total, q) for p, q in (("p50", 50), ("p99", 99))},
        "wall_s": wall,
        "idle_rss_kib": idle_rss,
        "peak_rss_kib": sampler.peak_rss,
        "kib_per_stream": (sampler.peak_rss - idle_rss) / n,
        "peak_fds": sampler.peak_fds,
        "rss_samples": sampler.samples,
        "checks": checks,
    }
    return row, turns, checks


def print_header():
    header = (
        f"{'N':>5} {'errors':>6} | {'TTFE p50':>8} {'p90':>7} {'p99':>7} {'max':>7} ms | "
        f"{'turn p50':>8} {'p99':>7} ms | {'burst s':>7} | {'idle RSS':>8} {'peak RSS':>8} MiB "
        f"{'KiB/stream':>10} {'fds':>5} | messages"
    )
    print(header)
    print("-" * len(header))
    sys.stdout.flush()


def print_row(row: dict):
    t, d = row["ttfe_ms"], row["turn_ms"]
    checks = row["checks"]
    wrong = {k: v for k, v in checks.items() if k != "ok"}
    verdict = (
        f"ok: {checks.get('ok', 0)} x 2"
        if not wrong
        else f"ok {checks.get('ok', 0)}, lost {checks.get('lost', 0)}, duplicated {checks.get('duplicated', 0)}, "
        f"not complete {checks.get('not complete', 0)}"
        + "".join(f", {k} {v}" for k, v in wrong.items() if k not in ("lost", "duplicated", "not complete"))
    )
    print(
        f"{row['n']:>5} {row['errors']:>6} | {t['p50']:8.1f} {t['p90']:7.1f} {t['p99']:7.1f} {t['max']:7.1f}    | "
        f"{d['p50']:8.1f} {d['p99']:7.1f}    | {row['wall_s']:7.2f} | "
        f"{row['idle_rss_kib'] / 1024:8.1f} {row['peak_rss_kib'] / 1024:8.1f}     "
        f"{row['kib_per_stream']:10.1f} {row['peak_fds']:>5} | {verdict}"
    )
    sys.stdout.flush()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateway-url", required=True)
    parser.add_argument("--chat-pid", type=int, required=True, help="chat-service's process id (for VmRSS)")
    parser.add_argument("--ns", default="200 1000 2000", help="the burst sizes, in order")
    parser.add_argument("--words", type=int, default=50, help="words in the message (echoed one per chunk)")
    parser.add_argument("--setup-concurrency", type=int, default=32)
    parser.add_argument("--sample-ms", type=float, default=50)
    parser.add_argument("--timeout", type=float, default=300, help="seconds for any one read or connect")
    parser.add_argument("--samples", help="write every turn's timings here (JSON)")
    args = parser.parse_args()
    ns = [int(n) for n in args.ns.split()]
    if not ns or min(ns) < 1 or args.words < 1:
        parser.error("--ns needs positive numbers, --words at least 1")
    args.gateway_url = args.gateway_url.rstrip("/")

    limits = httpx.Limits(max_connections=args.setup_concurrency + 4)
    timeout = httpx.Timeout(args.timeout)
    failed = False
    everything = []
    async with httpx.AsyncClient(timeout=timeout, limits=limits, trust_env=False) as client:
        headers = await log_in(client, args.gateway_url)
        print(
            f"message: {args.words} words echoed by the builtin model, one per chunk; "
            f"VmRSS and fds of chat-service (pid {args.chat_pid}) every {args.sample_ms:g} ms"
        )
        print_header()
        for n in ns:
            row, turns, checks = await run_n(args, client, headers, n)
            print_row(row)
            everything.append({"row": row, "turns": [t.__dict__ for t in turns]})
            errors: dict[str, int] = {}
            for t in turns:
                if t.error is not None:
                    errors[t.error[:160]] = errors.get(t.error[:160], 0) + 1
            for e, k in sorted(errors.items(), key=lambda kv: -kv[1])[:8]:
                print(f"  N={n}: {k} x {e}", file=sys.stderr)
            failed |= bool(errors) or any(k != "ok" for k in checks)
    if args.samples:
        with open(args.samples, "w") as f:
            json.dump(everything, f)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

"""Time to first text event of a math question, straight from the A2A agent
and through chat-service (the measuring client of infra/bench/a2a.sh).

One client, one turn loop for both paths: a streaming POST timed with
time.perf_counter() from just before the request is sent to the first SSE
event carrying answer text, and to the event that ends the turn; the stream
is then read to its end before the next turn starts. Only what identifies
those two events differs between the paths, so the client's own overhead
(httpx, JSON decoding of every event) is the same on both sides and cancels
out of the difference.

  direct   A2A v1.0 SendStreamingMessage to the agent; first text = the first
           result that is an artifactUpdate with a text part; end = a
           statusUpdate in a final state (TASK_STATE_COMPLETED expected).
  through  POST /chat/conversations/{id}/messages/stream; first text = the
           first {"type":"text"} event; end = {"type":"done"} (status
           "complete" expected).

A turn whose status is not 200, that ends in another state, carries an error
event, never shows text, or whose text does not contain the expected answer
is an error and is left out of the timings. The two paths alternate turn by
turn (direct first on even turns, through first on odd ones) so a drift of
the machine over the run (a database file growing, another process) weighs
on both alike. Each worker (--concurrency) runs its turns one at a time; a
conversation takes --per-conversation turns, then the worker opens a new one.

At the end every conversation's messages are read back through the API: each
accepted turn must have left exactly two (the user's and the assistant's).
Exit status 1 when any turn failed or that check did not hold.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from dataclasses import dataclass, field

import httpx

from latency_stats import stats

QUESTION = "What is 6 * 7?"
ANSWER = "42"
FINAL_STATES = {
    "TASK_STATE_COMPLETED",
    "TASK_STATE_FAILED",
    "TASK_STATE_CANCELED",
    "TASK_STATE_REJECTED",
}


@dataclass
class Turn:
    """One measured turn: seconds to the first text and to the end, or an error."""

    first_text: float | None = None
    end: float | None = None
    error: str | None = None


@dataclass
class Path:
    name: str
    turns: list[Turn] = field(default_factory=list)

    def ok(self) -> list[Turn]:
        return [t for t in self.turns if t.error is None]

    def errors(self) -> list[str]:
        return [t.error for t in self.turns if t.error is not None]


# --- the two paths: how a turn is sent and which events matter ------------------


def direct_request(agent_url: str, token: str) -> tuple[str, dict, dict]:
    """The agent takes calls only with the services' shared token, as
    chat-service sends it."""
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "SendStreamingMessage",
        "params": {
            "message": {
                "messageId": str(uuid.uuid4()),
                "role": "ROLE_USER",
                "parts": [{"text": QUESTION}],
            }
        },
    }
    return agent_url, {"A2A-Version": "1.0", "Authorization": f"Bearer {token}"}, body


def direct_event(event: dict) -> tuple[str | None, bool, str | None]:
    """(text, ended, error) of one A2A stream result."""
    if "error" in event:
        return None, True, f"JSON-RPC error {event['error']}"
    result = event.get("result") or {}
    if "artifactUpdate" in result:
        parts = result["artifactUpdate"].get("artifact", {}).get("parts", [])
        texts = [p["text"] for p in parts if isinstance(p.get("text"), str)]
        return ("".join(texts) if texts else None), False, None
    status = (result.get("statusUpdate") or result.get("task") or {}).get("status", {})
    state = status.get("state")
    if state in FINAL_STATES:
        return None, True, None if state == "TASK_STATE_COMPLETED" else f"task ended {state}"
    return None, False, None


def through_event(event: dict) -> tuple[str | None, bool, str | None]:
    """(text, ended, error) of one chat-service event."""
    kind = event.get("type")
    if kind == "text":
        return event.get("text", ""), False, None
    if kind == "error":
        return None, False, f"error event {event.get('error')}"
    if kind == "done":
        status = event.get("status")
        return None, True, None if status == "complete" else f"done with status {status}"
    return None, False, None


# --- one turn, the same code for both paths ---------------------------------------


async def run_turn(client: httpx.AsyncClient, url: str, headers: dict, body: dict, classify) -> Turn:
    turn = Turn()
    text = []
    ended = False
    start = time.perf_counter()
    try:
        async with client.stream("POST", url, headers=headers, json=body) as response:
            if response.status_code != 200:
                await response.aread()
                turn.error = f"HTTP {response.status_code}: {response.text[:200]}"
                return turn
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                piece, end, error = classify(json.loads(line[5:]))
                now = time.perf_counter()
                if piece:
                    text.append(piece)
                    if turn.first_text is None:
                        turn.first_text = now - start
                if error and turn.error is None:
                    turn.error = error
                if end and not ended:
                    ended = True
                    turn.end = now - start
            # Read to its end: the next turn starts on a quiet connection.
    except (httpx.HTTPError, json.JSONDecodeError) as err:
        turn.error = f"{type(err).__name__}: {err}"
        return turn
    if turn.error is None:
        if not ended:
            turn.error = "the stream ended before the turn did"
        elif turn.first_text is None:
            turn.error = "no text event"
        elif ANSWER not in "".join(text):
            turn.error = f"unexpected answer {''.join(text)!r}"
    return turn


# --- workers ------------------------------------------------------------------------


class Chat:
    """chat-service as user usr-bench: conversations and the turns sent in each."""

    def __init__(self, client: httpx.AsyncClient, base: str, token: str, user: str):
        self.client, self.base = client, base
        self.headers = {"x-service-token": token, "x-user-id": user}
        # conversation id -> turns chat-service accepted there (HTTP 200)
        self.accepted: dict[str, int] = {}

    async def new_conversation(self) -> str:
        r = await self.client.post(f"{self.base}/chat/conversations", headers=self.headers, json={"agent_id": "math"})
        r.raise_for_status()
        conversation = r.json()["id"]
        self.accepted[conversation] = 0
        return conversation

    async def turn(self, conversation: str) -> Turn:
        url = f"{self.base}/chat/conversations/{conversation}/messages/stream"
        turn = await run_turn(self.client, url, self.headers, {"message": QUESTION}, through_event)
        if not (turn.error or "").startswith("HTTP "):
            self.accepted[conversation] += 1
        return turn

    async def message_count(self, conversation: str) -> tuple[int, list[str]]:
        """Messages stored in the conversation, read page by page; and what is wrong with them."""
        messages, before = [], None
        while True:
            params = {"limit": 500} | ({"before_seq": before} if before else {})
            r = await self.client.get(
                f"{self.base}/chat/conversations/{conversation}/messages", headers=self.headers, params=params
            )
            r.raise_for_status()
            page = r.json()
            messages = page["items"] + messages
            before = page.get("next_cursor")
            if not before:
                break
        problems = []
        for i, m in enumerate(messages):
            want = "user" if i % 2 == 0 else "assistant"
            if m["role"] != want:
                problems.append(f"message seq {m['seq']} is {m['role']}, expected {want}")
            if m["status"] != "complete":
                problems.append(f"message seq {m['seq']} is {m['status']}")
        return len(messages), problems


async def worker(args, next_turn, direct: Path, through: Path, warm: bool, chat: Chat, agent_client):
    conversation, in_conversation = None, 0
    while (i := next_turn()) is not None:
        if conversation is None or in_conversation >= args.per_conversation:
            conversation, in_conversation = await chat.new_conversation(), 0
        in_conversation += 1

        async def go_direct():
            url, headers, body = direct_request(args.agent_url, args.service_token)
            return await run_turn(agent_client, url, headers, body, direct_event)

        async def go_through():
            return await chat.turn(conversation)

        if i % 2 == 0:
            d = await go_direct()
            t = await go_through()
        else:
            t = await go_through()
            d = await go_direct()
        if not warm:
            direct.turns.append(d)
            through.turns.append(t)


async def run_phase(args, turns: int, warm: bool, direct: Path, through: Path, chat: Chat, agent_client):
    counter = iter(range(turns))

    def next_turn():
        return next(counter, None)

    workers = [worker(args, next_turn, direct, through, warm, chat, agent_client) for _ in range(args.concurrency)]
    await asyncio.gather(*workers)


# --- report ---------------------------------------------------------------------------


def report(direct: Path, through: Path, args, elapsed: float) -> dict:
    rows = {}
    print()
    print(
        f"A2A math turn \"{QUESTION}\": {args.turns} measured turns each way after {args.warmup} warm-up turns, "
        f"concurrency {args.concurrency}, a new conversation every {args.per_conversation} turns; "
        f"measured in {elapsed:.1f} s"
    )
    header = f"{'':<14} {'path':<16} {'count':>6} {'errors':>6} | {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'mean ms':>8}"
    print(header)
    print("-" * len(header))
    for what, attr in (("first text", "first_text"), ("done", "end")):
        for path in (direct, through):
            s = stats([getattr(t, attr) for t in path.ok()])
            rows[(what, path.name)] = s
            print(
                f"{what:<14} {path.name:<16} {len(path.ok()):>6} {len(path.errors()):>6} | "
                f"{s['p50']:8.2f} {s['p90']:8.2f} {s['p99']:8.2f} {s['max']:8.2f} {s['mean']:8.2f}"
            )
    print()
    for what in ("first text", "done"):
        d, t = rows[(what, direct.name)], rows[(what, through.name)]
        print(
            f"added by chat-service, {what + ':':<11} p50 {t['p50'] - d['p50']:+8.2f} ms   "
            f"p99 {t['p99'] - d['p99']:+8.2f} ms"
        )
    for path in (direct, through):
        errors = path.errors()
        if errors:
            kinds: dict[str, int] = {}
            for e in errors:
                kinds[e[:120]] = kinds.get(e[:120], 0) + 1
            print(f"errors, {path.name}:", file=sys.stderr)
            for e, n in sorted(kinds.items(), key=lambda kv: -kv[1]):
                print(f"  {n} x {e}", file=sys.stderr)
    return {f"{what}/{name}": s for (what, name), s in rows.items()}


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agent-url", required=True, help="the agent's A2A JSON-RPC endpoint (POST)")
    parser.add_argument("--chat-url", required=True, help="chat-service's base URL")
    parser.add_argument(
        "--service-token",
        default="confab-dev-service-token",
        help="the services' shared token: chat-service trusts it, the agent requires it",
    )
    parser.add_argument("--user", default="usr-bench")
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--per-conversation", type=int, default=50)
    parser.add_argument("--samples", help="write every measured turn here (JSON)")
    args = parser.parse_args()
    if args.turns < 1 or args.concurrency < 1 or args.per_conversation < 1 or args.warmup < 0:
        parser.error("--turns, --concurrency and --per-conversation must be at least 1, --warmup at least 0")

    timeout = httpx.Timeout(60.0)
    limits = httpx.Limits(max_connections=args.concurrency + 4, max_keepalive_connections=args.concurrency + 4)
    # Two clients with the same settings: each path has its own warm connections.
    async with (
        httpx.AsyncClient(timeout=timeout, limits=limits, trust_env=False) as agent_client,
        httpx.AsyncClient(timeout=timeout, limits=limits, trust_env=False) as chat_client,
    ):
        chat = Chat(chat_client, args.chat_url.rstrip("/"), args.service_token, args.user)
        direct, through = Path("direct (agent)"), Path("via chat-service")
        await run_phase(args, args.warmup, True, direct, through, chat, agent_client)
        started = time.perf_counter()
        await run_phase(args, args.turns, False, direct, through, chat, agent_client)
        elapsed = time.perf_counter() - started
        summary = report(direct, through, args, elapsed)

        accepted = sum(chat.accepted.values())
        stored, wrong = 0, []
        for conversation, turns in chat.accepted.items():
            count, problems = await chat.message_count(conversation)
            stored += count
            if count != 2 * turns:
                wrong.append(f"{conversation}: {count} messages for {turns} turns")
            wrong.extend(f"{conversation}: {p}" for p in problems)
        verdict = "ok" if not wrong else f"NOT OK ({len(wrong)} problems)"
        print()
        print(
            f"chat-service messages read back: {stored} in {len(chat.accepted)} conversations for "
            f"{accepted} accepted turns (warm-up included), 2 per turn, all complete: {verdict}"
        )
        for w in wrong[:10]:
            print(f"  {w}", file=sys.stderr)

    if args.samples:
        with open(args.samples, "w") as f:
            json.dump(
                {
                    "summary_ms": summary,
                    "turns": {p.name: [t.__dict__ for t in p.turns] for p in (direct, through)},
                },
                f,
            )
    failed = direct.errors() or through.errors() or wrong
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

#!/usr/bin/env bash
# infra/bench/a2a.sh — what chat-service adds to the time until a reply starts.
#
# The math demo agent answers "What is 6 * 7?" (two LLM rounds through
# llm-proxy-service's builtin model, with the calculator tool between them).
# The same question is asked straight from the agent (A2A v1.0
# SendStreamingMessage) and through chat-service (POST
# /chat/conversations/{id}/messages/stream, which persists both messages and
# calls the agent over A2A), one turn at a time, so this is latency and not
# throughput. For both it prints count, errors and p50/p90/p99/max/mean of
# the time to first text event (from sending the request to the first SSE
# event with answer text) and of the time to the end of the turn (the agent's
# final status update; chat-service's `done`), then what chat-service adds
# (through minus direct, p50 and p99). Afterwards every chat-service
# conversation is read back: each turn must have left exactly two messages.
#
# The measuring client is infra/bench/a2a_ttft.py (asyncio + httpx): the same
# turn loop for both paths, so its own overhead cancels out of the
# difference; the two paths alternate turn by turn. chat-service sends the
# conversation's last 20 messages to the agent with each turn (DESIGN §7,
# chat.history_messages), so a conversation soon carries the full 20: the
# client opens a new one every PER_CONVERSATION turns to keep them short to
# read back, and the through-path timing includes that realistic context
# (PER_CONVERSATION=1 measures turns without history).
#
#   infra/bench/a2a.sh                        1,000 turns each way, 20 warm-up
#   TURNS=200 WARMUP=10 infra/bench/a2a.sh
#   CONCURRENCY=4 infra/bench/a2a.sh           4 clients, each one turn at a time
#   FIRST_CHUNK_DELAY_MS=300 CHUNK_DELAY_MS=20 infra/bench/a2a.sh
#                                             a slower model (default 0 and 0,
#                                             llm-proxy-service's defaults)
#   PER_CONVERSATION=50                       turns per chat-service conversation
#   SAMPLES=/tmp/a2a.json                     keep every turn's timings (JSON)
#   SERVICE_BIN=target/base/d57d24f …         another build's services, not built here
#
# Builds llm-proxy-service, demo-agents and chat-service (release, into the
# workspace's target/), starts them on free 127.0.0.1 ports with SQLite files
# in a temporary directory, logging at warn, and stops them at the end. Needs
# python3 (with venv) and curl; the client's venv (httpx, pinned) is created
# in target/bench-venv when missing.
set -euo pipefail

TURNS=${TURNS:-1000}
WARMUP=${WARMUP:-20}
CONCURRENCY=${CONCURRENCY:-1}
PER_CONVERSATION=${PER_CONVERSATION:-50}
FIRST_CHUNK_DELAY_MS=${FIRST_CHUNK_DELAY_MS:-0}
CHUNK_DELAY_MS=${CHUNK_DELAY_MS:-0}
SAMPLES=${SAMPLES:-}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bench_name=a2a
# shellcheck source=infra/bench/common.sh
. "$repo/infra/bench/common.sh"

# --- tools --------------------------------------------------------------------------
ensure_client_venv

build_services llm-proxy-service demo-agents chat-service

# --- the services ---------------------------------------------------------------------
start_chat_stack "$FIRST_CHUNK_DELAY_MS" "$CHUNK_DELAY_MS"

# --- measure --------------------------------------------------------------------------
echo
echo "commit $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$repo" diff --quiet HEAD -- services crates 2>/dev/null || echo ' (services or crates modified)'), $(nproc) CPUs, release build, SQLite, logs at warn"
echo "llm-proxy-service builtin model: first_chunk_delay_ms=$FIRST_CHUNK_DELAY_MS chunk_delay_ms=$CHUNK_DELAY_MS; agent math on :$math_port, chat-service on :$chat_port"
status=0
PYTHONDONTWRITEBYTECODE=1 "$venv/bin/python" "$repo/infra/bench/a2a_ttft.py" \
    --agent-url "http://127.0.0.1:$math_port/" \
    --chat-url "http://127.0.0.1:$chat_port" \
    --turns "$TURNS" --warmup "$WARMUP" --concurrency "$CONCURRENCY" \
    --per-conversation "$PER_CONVERSATION" ${SAMPLES:+--samples "$SAMPLES"} || status=$?

# The same check on the database file itself, when the sqlite3 CLI is here.
if command -v sqlite3 >/dev/null 2>&1; then
    echo "chat-service database file: $(sqlite3 "$chat_db" \
        "select (select count(*) from messages) || ' messages (' || group_concat(n, ', ') || ') in ' || (select count(*) from conversations) || ' conversations'
         from (select role || ' ' || status || ': ' || count(*) as n from messages group by role, status)"
    )"
fi
for name in llm-proxy-service demo-agents chat-service; do
    if [[ -s "$work/$name.log" ]]; then
        echo "$name logged $(wc -l <"$work/$name.log") lines at warn or above; the last:" >&2
        tail -n 3 "$work/$name.log" >&2
    fi
done
exit "$status"

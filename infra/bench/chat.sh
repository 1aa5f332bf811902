#!/usr/bin/env bash
# infra/bench/chat.sh — many streaming chat turns open at once through the
# gateway: how long until each starts, what each open stream costs
# chat-service in memory, and whether every turn is stored exactly once.
#
# For each N (200, 1,000, 2,000 by default), one after the other: N new
# conversations with the math agent, then N streaming turns
# (POST /api/v1/conversations/{id}/messages/stream, one per conversation) sent
# together through the gateway, as one logged-in user. The message is 50 words
# that match no rule of the builtin model's fixtures (infra/llm-fixtures/
# demo.toml), so the model echoes it back one word per chunk; with a 20 ms
# delay between chunks a turn streams for about a second, so all N are open
# at the same time (path: client → gateway → chat-service → math agent →
# llm-proxy-service).
#
# The client is the compiled load generator (infra/bench/loadgen, one
# thread; issue 20: the Python client this script used before spent twice
# the CPU of the four services it measured). Per N it prints:
#   errors         turns not HTTP 200 or not ending in `done` with status
#                  `complete` (the kinds are listed on stderr)
#   first event    from sending the request to the first SSE event,
#                  p50/p90/p99/max; done: to the end of the stream, p50/p99
#   turns/s        N over the wall time of the burst
#   per service    CPU over the burst per turn and per token, idle and peak
#                  RSS (read every 50 ms) and (peak - idle) / N, the memory
#                  an open turn costs; the client's own CPU beside them
#   read-back      every conversation read back through the API: exactly the
#                  user's message and the echoed reply, both complete
#   infra/bench/chat.sh                       N = 200, 1000, 2000
#   NS="50 500" infra/bench/chat.sh           other burst sizes, in order
#   WORDS=100 CHUNK_DELAY_MS=20               longer streams (default 50 words;
#                                             the delay defaults to 20 ms)
#   FIRST_CHUNK_DELAY_MS=300                  a model slow to start (default 0)
#   SERVICE_BIN=target/base/d57d24f …         another build's services, not built here
#   CHAT_INSTANCES=2 BUS_URL=nats://127.0.0.1:4222 \
#   CHAT_DATABASE_URL=postgres://…/chat_bench  two chat-service instances on
#                                             NATS and one PostgreSQL database
#                                             (empty; the gateway spreads the
#                                             turns over both)
#
# After the bursts: how long a turn's events took from being logged to
# reaching their reader (chat_turn_event_delivery_seconds, summed over the
# instances' /metrics; p50/p99 as the upper bound of their histogram
# bucket): on the bus when BUS_URL is set, in process otherwise. And how
# many turns an instance took over from another (chat_turns_taken_over_total):
# no instance stops during the run, so any is a live turn taken for a dead one.
#
# Builds llm-proxy-service, demo-agents, chat-service and gateway (release,
# into the workspace's target/), starts them on free 127.0.0.1 ports with
# SQLite files in a temporary directory, logging at warn, and stops them at
# the end. Raises the open-files limit to its hard limit (a stream holds
# sockets in the client, the gateway and chat-service). Needs python3 and
# curl.
set -euo pipefail

NS=${NS:-200 1000 2000}
WORDS=${WORDS:-50}
FIRST_CHUNK_DELAY_MS=${FIRST_CHUNK_DELAY_MS:-0}
CHUNK_DELAY_MS=${CHUNK_DELAY_MS:-20}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bench_name=chat
# shellcheck source=infra/bench/common.sh
. "$repo/infra/bench/common.sh"
# Inherited by the services and the client.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

build_services llm-proxy-service demo-agents chat-service gateway
echo "==> building the load generator (release)"
(cd "$repo/infra/bench/loadgen" && CARGO_TARGET_DIR=$target cargo build --release -q)

# --- the services ---------------------------------------------------------------------
# The gateway's port first: chat-service verifies user tokens against its keys.
gateway_port=$(free_port)
start_chat_stack "$FIRST_CHUNK_DELAY_MS" "$CHUNK_DELAY_MS" "http://127.0.0.1:$gateway_port/.well-known/jwks.json"

# One user posts every turn: the per-user chat rate limit is off here.
start_gateway

# --- measure --------------------------------------------------------------------------
echo
echo "commit $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$repo" diff --quiet HEAD -- services crates 2>/dev/null || echo ' (services or crates modified)'), $(nproc) CPUs, release build, $([[ "$chat_db" == postgres* ]] && echo PostgreSQL || echo SQLite), bus $([[ -n "${BUS_URL:-}" ]] && echo NATS || echo in-process), ${#chat_ports[@]} chat-service instance(s), logs at warn, open files $(ulimit -n)"
echo "llm-proxy-service builtin model: first_chunk_delay_ms=$FIRST_CHUNK_DELAY_MS chunk_delay_ms=$CHUNK_DELAY_MS; gateway on :$gateway_port, chat-service on :$chat_port (pid $chat_pid), agent math on :$math_port"
services="gateway=$gateway_pid,demo-agents=$agents_pid,llm-proxy-service=$proxy_pid"
for i in "${!chat_pids[@]}"; do services+=",chat-service-$((i + 1))=${chat_pids[i]}"; done
status=0
for n in $NS; do
    echo
    "$target/release/confab-loadgen" --gateway "http://127.0.0.1:$gateway_port" \
        --form sse --words "$WORDS" --n "$n" --pids "$services" | grep -v '^summary ' || status=1
done

# How long turn events took to reach their readers, over every instance.
for port in "${chat_ports[@]}"; do curl -fsS "http://127.0.0.1:$port/metrics"; done |
    python3 -c '
import sys, collections
buckets = collections.Counter()
taken_over = 0
for line in sys.stdin:
    if line.startswith("chat_turns_taken_over_total"):
        taken_over += float(line.rsplit(" ", 1)[1])
    if line.startswith("chat_turn_event_delivery_seconds_bucket"):
        le = line.split("le=\"")[1].split("\"")[0]
        buckets[float("inf") if le == "+Inf" else float(le)] += float(line.rsplit(" ", 1)[1])
bounds = sorted(buckets)
total = buckets[bounds[-1]] if bounds else 0
def q(p):
    return next((b for b in bounds if buckets[b] >= p * total), None)
print(f"turn events delivered: {int(total)}; logged to read p50 <= {q(0.5)} s, p99 <= {q(0.99)} s (histogram bucket bounds)")
print(f"turns taken over by another instance: {int(taken_over)} (none of these instances stopped: expected 0)")
'

# The same check on the database itself: the sqlite3 CLI for a file, psql
# for PostgreSQL, when there.
count_sql="select (select count(*) from messages) || ' messages (' || string_agg(n, ', ') || ') in ' || (select count(*) from conversations) || ' conversations; conversations without exactly 2: ' || (select count(*) from conversations c where (select count(*) from messages m where m.conversation_id = c.id) != 2) from (select role || ' ' || status || ': ' || count(*) as n from messages group by role, status) t"
if [[ "$chat_db" == postgres* ]] && command -v psql >/dev/null 2>&1; then
    echo "chat-service database: $(psql -X -A -t "$chat_db" -c "$count_sql")"
elif command -v sqlite3 >/dev/null 2>&1; then
    echo "chat-service database file: $(sqlite3 "$chat_db" \
        "select (select count(*) from messages) || ' messages (' || group_concat(n, ', ') || ') in ' || (select count(*) from conversations) || ' conversations; conversations without exactly 2: ' || (select count(*) from conversations c where (select count(*) from messages m where m.conversation_id = c.id) != 2)
         from (select role || ' ' || status || ': ' || count(*) as n from messages group by role, status)"
    )"
fi
for name in llm-proxy-service demo-agents chat-service gateway; do
    if [[ -s "$work/$name.log" ]]; then
        echo "$name logged $(wc -l <"$work/$name.log") lines at warn or above; the last:" >&2
        tail -n 3 "$work/$name.log" >&2
    fi
done
exit "$status"

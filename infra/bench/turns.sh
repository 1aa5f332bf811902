#!/usr/bin/env bash
# infra/bench/turns.sh — N streaming chat turns through the gateway, measured
# by the compiled load generator (infra/bench/loadgen, issue 20): per form,
# time to first event and to done, turns/s, errors, a read-back of every
# conversation, and each service's CPU per turn and per token and RSS per
# open turn, beside the client's own CPU.
#
#   infra/bench/turns.sh                 1,000 turns at once, forms sse openai ws
#   N=2000 WORDS=200 infra/bench/turns.sh
#   RATE=300 FORMS=sse infra/bench/turns.sh   a fixed arrival rate (turns/s)
#
# Builds the services and the load generator (release, into the workspace's
# target/), starts llm-proxy-service (builtin model, CHUNK_DELAY_MS=20 between
# one-word chunks), demo-agents, chat-service and the gateway on free
# 127.0.0.1 ports with SQLite files in a temporary directory, the per-user
# limits lifted (one user runs every turn), and stops them at the end.
set -euo pipefail

N=${N:-1000}
FORMS=${FORMS:-sse openai ws}
RATE=${RATE:-0}
WORDS=${WORDS:-50}
CHUNK_DELAY_MS=${CHUNK_DELAY_MS:-20}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bench_name=turns
# shellcheck source=infra/bench/common.sh
. "$repo/infra/bench/common.sh"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

echo "==> building llm-proxy-service, demo-agents, chat-service, gateway and the load generator (release)"
(cd "$repo" && cargo build --release -q -p llm-proxy-service -p demo-agents -p chat-service -p gateway --bins)
(cd "$repo/infra/bench/loadgen" && CARGO_TARGET_DIR=$target cargo build --release -q)

gateway_port=$(free_port)
start_chat_stack 0 "$CHUNK_DELAY_MS" "http://127.0.0.1:$gateway_port/.well-known/jwks.json"
start gateway "PORT=$gateway_port" "DATABASE_URL=$work/gateway/gateway.db" \
    "CONFAB__RATE_LIMITS__CHAT_POSTS_PER_MINUTE=0" \
    "CONFAB__UPSTREAMS__CHAT=$(printf 'http://127.0.0.1:%s,' "${chat_ports[@]}" | sed 's/,$//')" \
    "CONFAB__UPSTREAMS__LLM_PROXY=http://127.0.0.1:$proxy_port"
wait_for "http://127.0.0.1:$gateway_port/ready" "$started_pid" "$work/gateway.log"
gateway_pid=$started_pid

echo "commit $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) CPUs, release build, SQLite, chunk delay ${CHUNK_DELAY_MS} ms"
status=0
for form in $FORMS; do
    echo
    "$target/release/confab-loadgen" --gateway "http://127.0.0.1:$gateway_port" \
        --n "$N" --form "$form" --rate "$RATE" --words "$WORDS" \
        --pids "gateway=$gateway_pid,chat-service=$chat_pid,demo-agents=$agents_pid,llm-proxy-service=$proxy_pid" ||
        status=$?
done
exit "$status"

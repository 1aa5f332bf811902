#!/usr/bin/env bash
# infra/bench/llm-proxy.sh — what llm-proxy-service adds to an LLM call.
#
# A zero-latency OpenAI-compatible upstream (nginx answering a fixed
# completion, JSON or SSE) is called directly and through the proxy (release
# build, SQLite, recording on), at fixed rates, non-streaming and streaming.
# For each case it prints p50/p99 latency of both, the difference (the added
# latency), the achieved requests/s and the failed requests.
#
#   infra/bench/llm-proxy.sh                  rates 500 and 1000 req/s, 15 s each
#   RATES="500 1000 2000" DURATION=30 MODES=sse infra/bench/llm-proxy.sh
#   PROXY_WORKERS=1 infra/bench/llm-proxy.sh   (actix workers; default: one per core)
#   SERVICE_BIN=target/base/d57d24f …          another build's llm-proxy-service, not built here
#   SATURATION=1 infra/bench/llm-proxy.sh      as many requests as 16 connections carry
#                                              (RATES=max CONNECTIONS=16), plain and
#                                              streaming side by side
#
# Each line also prints the proxy's CPU per request over that run (user +
# system, from /proc/<pid>/stat), so runs at saturation compare work too.
#
# Needs: oha (installed with `cargo install oha --locked --version 1.16.0` when
# missing), nginx (Debian package, installed when missing; only the instance
# this script starts runs), python3. Everything listens on 127.0.0.1 and is
# stopped at the end.
set -euo pipefail

if [[ -n "${SATURATION:-}" ]]; then
    RATES=${RATES:-max}
    CONNECTIONS=${CONNECTIONS:-16}
fi
RATES=${RATES:-"500 1000"}
MODES=${MODES:-"plain sse"}
DURATION=${DURATION:-15}
CONNECTIONS=${CONNECTIONS:-64}
OHA_VERSION=1.16.0

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
[[ "$target" == /* ]] || target=$repo/$target
work=$(mktemp -d /tmp/confab-bench.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_for() {
    local url=$1
    for _ in $(seq 1 100); do
        curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
        sleep 0.2
    done
    echo "bench: $url did not answer" >&2
    return 1
}

# --- tools ----------------------------------------------------------------------
if ! command -v oha >/dev/null 2>&1; then
    echo "==> installing oha $OHA_VERSION (cargo install)"
    cargo install oha --locked --version "$OHA_VERSION"
fi
if ! command -v nginx >/dev/null 2>&1 && [[ ! -x /usr/sbin/nginx ]]; then
    echo "==> installing nginx (Debian package)"
    # Keep the package from starting its own server.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null
    rm -f /usr/sbin/policy-rc.d
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

# SERVICE_BIN: a directory with another build's llm-proxy-service (another
# commit's, to compare), used as it is.
proxy_bin=${SERVICE_BIN:-$target/release}/llm-proxy-service
if [[ -z "${SERVICE_BIN:-}" ]]; then
    echo "==> building llm-proxy-service (release)"
    (cd "$repo" && cargo build --release -q -p llm-proxy-service --bin llm-proxy-service)
fi

# --- the zero-latency upstream -----------------------------------------------------
upstream_port=$(free_port)
completion='{"id":"chatcmpl-bench","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"The answer is 42."},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}'
# The SSE answer, with real newlines (nginx keeps them inside a quoted string).
sse=""
add_chunk() {
    sse+="data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":$1,\"finish_reason\":$2}]}"$'\n\n'
}
add_chunk '{"role":"assistant","content":""}' null
for word in '"The"' '" answer"' '" is"' '" 42."'; do add_chunk "{\"content\":$word}" null; done
add_chunk '{}' '"stop"'
sse+='data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}'$'\n\n''data: [DONE]'$'\n\n'
mkdir -p "$work/nginx"
cat > "$work/nginx/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $work/nginx;
    proxy_temp_path $work/nginx;
    fastcgi_temp_path $work/nginx;
    uwsgi_temp_path $work/nginx;
    scgi_temp_path $work/nginx;
    server {
        listen 127.0.0.1:$upstream_port;
        location = /plain/v1/chat/completions { default_type application/json; return 200 '$completion'; }
        location = /sse/v1/chat/completions { default_type text/event-stream; return 200 '$sse'; }
    }
}
NGINX
"$nginx_bin" -p "$work/nginx" -c "$work/nginx/nginx.conf" &
pids+=($!)

# --- the proxy ---------------------------------------------------------------------
proxy_port=$(free_port)
cat > "$work/proxy.toml" <<TOML
[server]
host = "127.0.0.1"
port = $proxy_port
[database]
url = "$work/llm-proxy.db"
[providers.plain]
kind = "openai"
base_url = "http://127.0.0.1:$upstream_port/plain/v1"
[providers.sse]
kind = "openai"
base_url = "http://127.0.0.1:$upstream_port/sse/v1"
TOML
CONFAB__ENV=development CONFAB__SERVER__WORKERS=${PROXY_WORKERS:-0} RUST_LOG=warn "$proxy_bin" --config "$work/proxy.toml" > "$work/proxy.log" 2>&1 &
proxy_pid=$!
pids+=("$proxy_pid")
wait_for "http://127.0.0.1:$proxy_port/ready"
wait_for "http://127.0.0.1:$upstream_port/plain/v1/chat/completions" || true

# --- load ------------------------------------------------------------------------------
body() { printf '{"model":"%s","stream":%s,"messages":[{"role":"user","content":"What is the answer?"}]}' "$1" "$2"; }

# The proxy's CPU time so far, in clock ticks (utime + stime).
proxy_ticks() { awk '{print $14 + $15}' "/proc/$proxy_pid/stat"; }

# Waits until the recorder's queue is empty, so a run's CPU includes writing
# what it recorded (and the next run starts without it).
recorded() {
    for _ in $(seq 1 300); do
        curl -fsS "http://127.0.0.1:$proxy_port/metrics" | grep -q '^llm_proxy_record_queue_depth 0$' && return 0
        sleep 0.1
    done
    echo "bench: the recorder's queue did not empty" >&2
}

run() { # name url body -> json file
    local out="$work/$1.json"
    # RATE=max: no rate, every connection sends its next request as soon as
    # the last one is answered (latency correction needs a rate).
    local pace=(-q "$RATE" --latency-correction)
    [[ $RATE == max ]] && pace=()
    # -w: requests in flight at the deadline finish instead of counting as errors.
    oha -z "${DURATION}s" -w "${pace[@]}" -c "$CONNECTIONS" --no-tui --output-format json \
        -m POST -H 'content-type: application/json' -H 'authorization: Bearer confab-dev-agent-key-math' \
        -H 'x-user-id: usr-bench' -d "$3" "$2" > "$out"
    echo "$out"
}

echo
echo "llm-proxy-service vs a zero-latency upstream: $DURATION s per run, $CONNECTIONS connections, recording on (SQLite)"
printf '%-10s %6s | %9s %9s | %9s %9s | %9s %9s | %8s %7s | %s\n' mode rate "direct50" "direct99" "proxy50" "proxy99" "added50" "added99" "proxy/s" failed "proxy ms CPU/req"
for RATE in $RATES; do
    for mode in $MODES; do
        stream=false; [[ $mode == sse ]] && stream=true
        direct=$(run "direct-$mode-$RATE" "http://127.0.0.1:$upstream_port/$mode/v1/chat/completions" "$(body m "$stream")")
        ticks_before=$(proxy_ticks)
        proxied=$(run "proxy-$mode-$RATE" "http://127.0.0.1:$proxy_port/v1/chat/completions" "$(body "$mode/m" "$stream")")
        recorded
        ticks=$(( $(proxy_ticks) - ticks_before ))
        python3 - "$direct" "$proxied" "$mode" "$RATE" "$ticks" "$(getconf CLK_TCK)" <<'PY'
import json, sys
direct, proxied = (json.load(open(p)) for p in sys.argv[1:3])
mode, rate = sys.argv[3], sys.argv[4]
cpu_ms = int(sys.argv[5]) * 1000 / int(sys.argv[6])
def ms(r, p): return r["latencyPercentiles"][p] * 1000
def len_ok(r):
    return sum(n for c, n in r.get("statusCodeDistribution", {}).items() if c.startswith("2"))
def failed(r):
    codes = r.get("statusCodeDistribution", {})
    return sum(n for c, n in codes.items() if not c.startswith("2")) + sum(r.get("errorDistribution", {}).values())
d50, d99, p50, p99 = ms(direct, "p50"), ms(direct, "p99"), ms(proxied, "p50"), ms(proxied, "p99")
for side, r in (("direct", direct), ("proxy", proxied)):
    if r.get("errorDistribution"):
        print(f"  {side} errors: {r['errorDistribution']}", file=sys.stderr)
name = "streaming" if mode == "sse" else "plain"
print(f"{name:<10} {rate:>6} | {d50:8.3f}ms {d99:8.3f}ms | {p50:8.3f}ms {p99:8.3f}ms | {p50-d50:8.3f}ms {p99-d99:8.3f}ms | {proxied['summary']['requestsPerSec']:8.1f} {failed(proxied)+failed(direct):7d} | {cpu_ms / max(1, len_ok(proxied)):.3f}")
PY
    done
done
# A graceful stop flushes the recorder; then every answered call must be a row.
kill -TERM "$proxy_pid"
wait "$proxy_pid" || true
answered=$(python3 -c '
import json, sys
print(sum(n for f in sys.argv[1:] for c, n in json.load(open(f)).get("statusCodeDistribution", {}).items() if c.startswith("2")))
' "$work"/proxy-*.json)
calls=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from llm_calls').fetchone()[0])" "$work/llm-proxy.db")
echo
echo "proxied requests answered 2xx: $answered; llm_calls rows after shutdown: $calls"

# shellcheck shell=bash disable=SC2154,SC2034 # sourced: bench_name comes from the caller, started_pid goes to it
# infra/bench/common.sh — what the benchmarks that start Confab's own
# services share (sourced by a2a.sh and chat.sh, not run on its own).
#
# Before sourcing, the script sets `repo` and `bench_name`. Afterwards it has:
#   target, venv, work       the cargo target dir, the client's venv
#                            (target/bench-venv), a temporary directory
#   free_port                a free TCP port on 127.0.0.1
#   build_services PKG...    cargo build --release of those packages, unless
#                            SERVICE_BIN names a directory of binaries built
#                            elsewhere (another commit's, to compare), which
#                            are then used as they are
#   start NAME ENV=VALUE...  $bin/NAME (default target/release, or
#                            $SERVICE_BIN) in its own
#                            directory under $work, logging at warn, none of
#                            the caller's Confab settings but BENCH_ENV's
#                            ("K=V K=V"); its pid in $started_pid
#   stop_started             stops (TERM) what `start` started so far and
#                            waits for it
#   wait_for URL PID LOG     until URL answers, or the log if it never does
#   ensure_client_venv       the venv with the pinned httpx client packages
#   start_gateway            the gateway in front of them (chat-service
#                            instances, llm-proxy-service), its per-user chat
#                            post limit lifted, waited for; sets
#                            gateway_port, gateway_pid
#   start_chat_stack FIRST_CHUNK_DELAY_MS CHUNK_DELAY_MS [JWKS_URL]
#                            llm-proxy-service (builtin model at those
#                            delays), demo-agents and chat-service, each
#                            waited for; sets proxy_port, proxy_pid, math_port, agents_pid,
#                            chat_port, chat_pid, chat_db; and chat_ports,
#                            chat_pids (every chat-service instance)
# start_chat_stack reads CHAT_INSTANCES (default 1): that many chat-service
# instances, which need BUS_URL (nats://…; each run gets its own namespace)
# and CHAT_DATABASE_URL (postgres://…, one database they share); with one
# instance both are optional (in-process bus, a SQLite file).
# and an EXIT trap that stops (TERM) only what `start` started, deletes the
# run's streams on the NATS server (infra/bench/nats_clean.py) and removes
# $work.

# httpx and everything it pulls in, as `pip freeze` lists them (Python 3.11).
CLIENT_PACKAGES="httpx==0.28.1 httpcore==1.0.9 h11==0.16.0 anyio==4.16.0 idna==3.20 certifi==2026.10.18 typing_extensions==4.16.0"

target=${CARGO_TARGET_DIR:-$repo/target}
[[ "$target" == /* ]] || target=$repo/$target
venv=$target/bench-venv
bin=${SERVICE_BIN:-$target/release}
work=$(mktemp -d "/tmp/confab-bench-$bench_name.XXXXXX")
pids=()
started_pid=""

# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    # TERM (graceful stop) to what this script started, nothing else.
    stop_started
    # The run's streams on a shared NATS server (start_chat_stack names them).
    if [[ -n "${bus_namespace:-}" ]]; then
        python3 "$repo/infra/bench/nats_clean.py" "$BUS_URL" "$bus_namespace" >&2 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

build_services() {
    if [[ -n "${SERVICE_BIN:-}" ]]; then
        echo "==> the services' binaries from $SERVICE_BIN (not built)"
        return
    fi
    echo "==> building $* (release)"
    (cd "$repo" && cargo build --release -q "${@/#/-p}" --bins)
}

stop_started() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    pids=()
}

# Everything is on 127.0.0.1: never through an HTTP proxy.
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
export no_proxy=$NO_PROXY

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_for() {
    local url=$1 pid=$2 log=$3
    for _ in $(seq 1 150); do
        curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "bench: the service behind $url exited; its log:" >&2
            cat "$log" >&2
            return 1
        fi
        sleep 0.2
    done
    echo "bench: $url did not answer; log $log:" >&2
    tail -n 40 "$log" >&2
    return 1
}

start() {
    local name=$1
    shift
    local dir=$work/$name
    mkdir -p "$dir"
    local env_args=(-u DATABASE_URL -u PORT) var bench_env=()
    while IFS= read -r var; do env_args+=(-u "$var"); done < <(compgen -e | grep '^CONFAB_' || true)
    read -r -a bench_env <<<"${BENCH_ENV:-}"
    # Development: the benchmarks run on the development secrets of the defaults.
    (cd "$dir" && exec env "${env_args[@]}" CONFAB__ENV=development RUST_LOG=warn NO_COLOR=1 "${bench_env[@]}" "$@" "$bin/$name" >>"$work/$name.log" 2>&1 </dev/null) &
    pids+=($!)
    started_pid=$!
}

ensure_client_venv() {
    if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import httpx' 2>/dev/null; then
        echo "==> creating $venv ($CLIENT_PACKAGES)"
        rm -rf "$venv"
        python3 -m venv "$venv"
        # shellcheck disable=SC2086 # one word per package
        "$venv/bin/python" -m pip install --disable-pip-version-check --no-input -q $CLIENT_PACKAGES
    fi
}

start_chat_stack() {
    local first_chunk_delay_ms=$1 chunk_delay_ms=$2 jwks_url=${3:-}
    proxy_port=$(free_port)
    start llm-proxy-service "PORT=$proxy_port" "DATABASE_URL=$work/llm-proxy-service/llm-proxy.db" \
        "CONFAB__PROVIDERS__BUILTIN__FIRST_CHUNK_DELAY_MS=$first_chunk_delay_ms" \
        "CONFAB__PROVIDERS__BUILTIN__CHUNK_DELAY_MS=$chunk_delay_ms"
    wait_for "http://127.0.0.1:$proxy_port/ready" "$started_pid" "$work/llm-proxy-service.log"
    proxy_pid=$started_pid

    math_port=$(free_port)
    local text_port tree_port
    text_port=$(free_port)
    tree_port=$(free_port)
    # One user runs every turn of a benchmark, many at once: the per-user
    # turn budget, chat sockets and the agents' running-task cap (DESIGN
    # §14) are lifted, or they would be what is measured.
    start demo-agents "CONFAB__LLM__BASE_URL=http://127.0.0.1:$proxy_port" \
        "CONFAB__LIMITS__MAX_RUNNING_TASKS=1000000" \
        "CONFAB__AGENTS__MATH__PORT=$math_port" \
        "CONFAB__AGENTS__TEXT__PORT=$text_port" \
        "CONFAB__AGENTS__TREE__PORT=$tree_port"
    wait_for "http://127.0.0.1:$math_port/ready" "$started_pid" "$work/demo-agents.log"
    agents_pid=$started_pid

    local instances=${CHAT_INSTANCES:-1} i port
    if ((instances > 1)) && [[ -z "${BUS_URL:-}" || "${CHAT_DATABASE_URL:-}" != postgres* ]]; then
        echo "bench: CHAT_INSTANCES=$instances needs BUS_URL=nats://… and CHAT_DATABASE_URL=postgres://…" >&2
        return 1
    fi
    chat_db=${CHAT_DATABASE_URL:-$work/chat-service/chat.db}
    local bus_env=()
    if [[ -n "${BUS_URL:-}" ]]; then
        bus_namespace=bench$RANDOM$RANDOM
        bus_env=("CONFAB__BUS__URL=$BUS_URL" "CONFAB__BUS__NAMESPACE=$bus_namespace")
    fi
    chat_ports=()
    chat_pids=()
    for ((i = 1; i <= instances; i++)); do
        port=$(free_port)
        # Instances share the binary's directory and log (appended to).
        start chat-service "PORT=$port" "DATABASE_URL=$chat_db" "${bus_env[@]}" \
            ${jwks_url:+"CONFAB__AUTH__JWKS_URL=$jwks_url"} \
            "CONFAB__LIMITS__TURNS_PER_MINUTE=0" "CONFAB__LIMITS__TURNS_IN_FLIGHT=0" \
            "CONFAB__LIMITS__SOCKETS_PER_USER=0" \
            "CONFAB__BUDGET__URL=http://127.0.0.1:$proxy_port" \
            "CONFAB__AGENTS__MATH__URL=http://127.0.0.1:$math_port/" \
            "CONFAB__AGENTS__TEXT__URL=http://127.0.0.1:$text_port/" \
            "CONFAB__AGENTS__TREE__URL=http://127.0.0.1:$tree_port/"
        wait_for "http://127.0.0.1:$port/ready" "$started_pid" "$work/chat-service.log"
        chat_ports+=("$port")
        chat_pids+=("$started_pid")
    done
    chat_port=${chat_ports[0]}
    chat_pid=${chat_pids[0]}
}

# Call after start_chat_stack, whose JWKS_URL should name
# http://127.0.0.1:$gateway_port/.well-known/jwks.json: pick gateway_port first.
start_gateway() {
    gateway_port=${gateway_port:-$(free_port)}
    start gateway "PORT=$gateway_port" "DATABASE_URL=$work/gateway/gateway.db" \
        "CONFAB__RATE_LIMITS__CHAT_POSTS_PER_MINUTE=0" \
        "CONFAB__UPSTREAMS__CHAT=$(printf 'http://127.0.0.1:%s,' "${chat_ports[@]}" | sed 's/,$//')" \
        "CONFAB__UPSTREAMS__LLM_PROXY=http://127.0.0.1:$proxy_port"
    wait_for "http://127.0.0.1:$gateway_port/ready" "$started_pid" "$work/gateway.log"
    gateway_pid=$started_pid
}

#!/usr/bin/env bash
# infra/telemetry/run.sh — the trace test (issue 22, DESIGN.md §11): one turn
# through the real binaries, exported over OTLP/HTTP to a receiver that
# decodes it with the official protobuf definitions (opentelemetry-proto),
# and checked to be one trace across every service. A step of infra/ci.sh;
# also runs alone:
#
#   bash infra/telemetry/run.sh [PYTEST_ARGS...]
#
# What it does:
#   1. a Python venv with the pinned packages of requirements.txt (every
#      transitive package pinned in constraints.txt); reused while those two
#      files are unchanged
#   2. cargo build --bins -p gateway -p chat-service -p demo-agents
#      -p llm-proxy-service   (debug profile)
#   3. starts receiver.py (OTLP/HTTP on a free 127.0.0.1 port), then each
#      service on a free port with a fresh SQLite file in a temporary
#      directory (its log there too) and OTEL_EXPORTER_OTLP_ENDPOINT pointing
#      at the receiver; llm-proxy-service and chat-service log JSON lines,
#      the gateway and the agents human ones, and the LLM calls' spans log
#      at debug level; llm-proxy-service captures the prompts and
#      completions on its spans ([telemetry] capture_content = true)
#   4. turn.py: one turn through the gateway (register, log in, a
#      conversation with the math agent, the turn streamed), sent with the
#      browser's own `traceparent`
#   5. stops the services with SIGTERM: each flushes its batch of spans to
#      the receiver as it shuts down
#   6. pytest -q infra/telemetry: the receiver's spans and metrics and the
#      services' logs checked, and the span tree of the turn printed
#   7. on exit, however it happens: stops what it started (TERM, then KILL
#      after TELEMETRY_STOP_TIMEOUT s) and removes the temporary directory
# The exit status is pytest's (or 1 when setting up failed).
#
# The services get a clean configuration: CONFAB_*, DATABASE_URL, PORT and
# OTEL_* from the caller's environment are not passed on.
#
# Environment:
#   TELEMETRY_VENV=DIR            the venv (default: <repo>/target/telemetry-venv)
#   TELEMETRY_READY_TIMEOUT=SECS  wait for each /ready (default 30)
#   TELEMETRY_STOP_TIMEOUT=SECS   wait for each service to stop (default 35)
#   TELEMETRY_KEEP_TMP=1          keep the temporary directory (spans, logs)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
here=$repo/infra/telemetry
venv=${TELEMETRY_VENV:-$repo/target/telemetry-venv}
ready_timeout=${TELEMETRY_READY_TIMEOUT:-30}
stop_timeout=${TELEMETRY_STOP_TIMEOUT:-35}

tmp=""
service_names=()
service_pids=()
service_logs=()

say() {
    printf '==> %s\n' "$*"
}

die() {
    echo "telemetry/run.sh: $*" >&2
    exit 1
}

# --- clean-up -------------------------------------------------------------------

# Stop every process this script started (and only those), newest first so
# the gateway goes before its upstreams and the receiver last: TERM, then
# KILL after $stop_timeout seconds. Safe to call more than once.
stop_started() {
    local i pid name
    for ((i = ${#service_pids[@]} - 1; i >= 0; i--)); do
        pid=${service_pids[$i]}
        name=${service_names[$i]}
        if kill -0 "$pid" 2>/dev/null; then
            say "stopping $name (pid $pid)"
            kill -TERM "$pid" 2>/dev/null || true
            local deadline=$((SECONDS + stop_timeout))
            while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
                sleep 0.1
            done
            if kill -0 "$pid" 2>/dev/null; then
                echo "telemetry/run.sh: $name (pid $pid) did not stop within ${stop_timeout}s, killing it" >&2
                kill -KILL "$pid" 2>/dev/null || true
            fi
        fi
        wait "$pid" 2>/dev/null || true
    done
    service_pids=()
    service_names=()
}

cleanup() {
    local status=$?
    trap - INT TERM HUP
    stop_started
    if [[ -n "$tmp" && -d "$tmp" ]]; then
        if [[ "${TELEMETRY_KEEP_TMP:-}" == 1 ]]; then
            say "TELEMETRY_KEEP_TMP=1: keeping $tmp"
        else
            rm -rf "$tmp"
        fi
    fi
    exit "$status"
}

# Each log, or its first 10 and last 40 lines when it is long.
show_logs() {
    local i log lines
    for i in "${!service_logs[@]}"; do
        log=${service_logs[$i]}
        lines=$(wc -l <"$log" 2>/dev/null || echo 0)
        if ((lines <= 60)); then
            echo "---- $log ----" >&2
            cat "$log" >&2 || true
        else
            echo "---- $log: first 10 and last 40 of $lines lines ----" >&2
            head -n 10 "$log" >&2 || true
            echo "[...]" >&2
            tail -n 40 "$log" >&2 || true
        fi
    done
}

# --- Python ---------------------------------------------------------------------

as_root_apt_install() {
    ((EUID == 0)) || return 1
    command -v apt-get >/dev/null 2>&1 || return 1
    apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# The venv at $venv with requirements.txt + constraints.txt installed. A stamp
# (hash of both files and the Python version) skips pip when nothing changed.
ensure_venv() {
    if ! command -v python3 >/dev/null 2>&1; then
        say "python3 not found: installing python3 and python3-venv"
        as_root_apt_install python3 python3-venv || die "python3 not found and could not be installed"
    fi
    if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
        say "creating the venv $venv ($(python3 --version 2>&1))"
        rm -rf "$venv"
        mkdir -p "$(dirname "$venv")"
        if ! python3 -m venv "$venv"; then
            rm -rf "$venv"
            say "python3 -m venv failed: installing python3-venv"
            as_root_apt_install python3-venv ||
                die "python3 -m venv failed and python3-venv could not be installed (needs root and apt-get)"
            python3 -m venv "$venv" || die "python3 -m venv $venv failed"
        fi
    fi
    local stamp=$venv/.confab-telemetry-stamp want
    want=$(cat "$here/requirements.txt" "$here/constraints.txt" <("$venv/bin/python" -VV) | sha256sum | cut -d' ' -f1)
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        say "venv up to date: $venv"
    else
        say "installing infra/telemetry/requirements.txt into $venv"
        rm -f "$stamp"
        "$venv/bin/python" -m pip install --disable-pip-version-check --no-input -q \
            -r "$here/requirements.txt" -c "$here/constraints.txt"
        echo "$want" >"$stamp"
    fi
    "$venv/bin/python" - <<'PY'
import importlib.metadata as m
print("    " + ", ".join(f"{p} {m.version(p)}" for p in ("opentelemetry-proto", "protobuf", "pytest")))
PY
}

# --- services -------------------------------------------------------------------

bin_dir=""

build_services() {
    if ! command -v cargo >/dev/null 2>&1 && [[ -f "${HOME:-/root}/.cargo/env" ]]; then
        # shellcheck source=/dev/null
        . "${HOME:-/root}/.cargo/env"
    fi
    command -v cargo >/dev/null 2>&1 || die "cargo not found: put the Rust toolchain on PATH"
    local target_dir=${CARGO_TARGET_DIR:-$repo/target}
    [[ "$target_dir" == /* ]] || target_dir=$repo/$target_dir
    bin_dir=$target_dir/debug
    local packages=(-p llm-proxy-service -p demo-agents -p chat-service -p gateway)
    say "cargo build --bins ${packages[*]}"
    (cd "$repo" && cargo build --bins "${packages[@]}")
}

free_port() {
    "$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

http_ok() {
    "$venv/bin/python" - "$1" <<'PY' 2>/dev/null
import sys, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    with opener.open(sys.argv[1], timeout=2) as r:
        sys.exit(0 if 200 <= r.status < 300 else 1)
except Exception:
    sys.exit(1)
PY
}

# wait_ready NAME PID LOG URL: remembers the process (to stop it on exit) and
# waits for URL/ready.
wait_ready() {
    local name=$1 pid=$2 log=$3 url=$4
    service_names+=("$name")
    service_pids+=("$pid")
    service_logs+=("$log")
    local deadline=$((SECONDS + ready_timeout))
    until http_ok "$url/ready"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            show_logs
            die "$name exited before it became ready"
        fi
        if ((SECONDS >= deadline)); then
            show_logs
            die "$name was not ready on $url/ready within ${ready_timeout}s"
        fi
        sleep 0.2
    done
    say "$name ready on $url"
}

otlp_endpoint=""
# The LLM calls' spans log a debug line as they end, inside the span: the
# lines the test finds by the turn's trace id.
rust_log="info,llm_proxy_service::call=debug,demo_agents::llm=debug"

# start_service NAME PORT [ENV=VALUE...]: target/debug/NAME on 127.0.0.1:PORT
# with a fresh SQLite file and its spans exported to the receiver.
start_service() {
    local name=$1 port=$2
    shift 2
    local bin=$bin_dir/$name dir=$tmp/$name log=$tmp/$name.log
    [[ -x "$bin" ]] || die "$bin not found or not executable"
    mkdir -p "$dir"
    local env_args=(-u DATABASE_URL -u PORT) var_name
    while IFS= read -r var_name; do
        env_args+=(-u "$var_name")
    done < <(compgen -e | grep -E '^(CONFAB_|OTEL_)' || true)
    env_args+=("PORT=$port" "CONFAB__SERVER__HOST=127.0.0.1" "CONFAB__ENV=development" "NO_COLOR=1"
        "DATABASE_URL=$dir/$name.db" "OTEL_EXPORTER_OTLP_ENDPOINT=$otlp_endpoint" "RUST_LOG=$rust_log")
    env_args+=("$@")
    (cd "$dir" && exec env "${env_args[@]}" "$bin" >"$log" 2>&1 </dev/null) &
    local pid=$!
    say "started $name (pid $pid) on 127.0.0.1:$port, log $log"
    wait_ready "$name" "$pid" "$log" "http://127.0.0.1:$port"
}

# --- main -----------------------------------------------------------------------

main() {
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP

    printf '\n######## Confab trace test (infra/telemetry) ########\n'
    ensure_venv
    build_services

    tmp=$(mktemp -d "${TMPDIR:-/tmp}/confab-telemetry.XXXXXX")
    say "temporary directory: $tmp"
    export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
    export no_proxy=$NO_PROXY
    export PYTHONDONTWRITEBYTECODE=1

    local receiver_port
    receiver_port=$(free_port)
    "$venv/bin/python" "$here/receiver.py" --port "$receiver_port" --out "$tmp/otlp" \
        >"$tmp/receiver.log" 2>&1 </dev/null &
    wait_ready receiver $! "$tmp/receiver.log" "http://127.0.0.1:$receiver_port"
    otlp_endpoint=http://127.0.0.1:$receiver_port

    local gateway_port llm_port chat_port math_port text_port tree_port jwks
    gateway_port=$(free_port)
    llm_port=$(free_port)
    chat_port=$(free_port)
    math_port=$(free_port)
    text_port=$(free_port)
    tree_port=$(free_port)
    jwks="CONFAB__AUTH__JWKS_URL=http://127.0.0.1:$gateway_port/.well-known/jwks.json"

    start_service llm-proxy-service "$llm_port" "$jwks" CONFAB__TELEMETRY__LOG_FORMAT=json \
        CONFAB__TELEMETRY__CAPTURE_CONTENT=true
    start_service demo-agents "$math_port" \
        "CONFAB__LLM__BASE_URL=http://127.0.0.1:$llm_port" \
        "CONFAB__AGENTS__MATH__PORT=$math_port" \
        "CONFAB__AGENTS__TEXT__PORT=$text_port" \
        "CONFAB__AGENTS__TREE__PORT=$tree_port"
    start_service chat-service "$chat_port" "$jwks" CONFAB__TELEMETRY__LOG_FORMAT=json \
        "CONFAB__AGENTS__MATH__URL=http://127.0.0.1:$math_port/" \
        "CONFAB__AGENTS__TEXT__URL=http://127.0.0.1:$text_port/" \
        "CONFAB__AGENTS__TREE__URL=http://127.0.0.1:$tree_port/" \
        "CONFAB__BUDGET__URL=http://127.0.0.1:$llm_port"
    start_service gateway "$gateway_port" \
        "CONFAB__UPSTREAMS__CHAT=http://127.0.0.1:$chat_port" \
        "CONFAB__UPSTREAMS__LLM_PROXY=http://127.0.0.1:$llm_port"

    printf '\n---- one turn through the gateway ----\n'
    "$venv/bin/python" "$here/turn.py" --gateway "http://127.0.0.1:$gateway_port" --out "$tmp/turn.json" ||
        {
            show_logs
            die "the turn failed"
        }

    printf '\n---- stopping the services (SIGTERM: each flushes its spans) ----\n'
    stop_started

    printf '\n---- pytest -q infra/telemetry ----\n'
    local status=0
    (cd "$repo" && CONFAB_TELEMETRY_DIR=$tmp "$venv/bin/python" -m pytest -q -p no:cacheprovider \
        infra/telemetry "$@") || status=$?
    if ((status != 0)); then
        echo "telemetry/run.sh: pytest exited with status $status" >&2
        show_logs
    fi
    printf '\n######## trace test: %s ########\n' "$([[ $status == 0 ]] && echo passed || echo "FAILED (exit $status)")"
    return "$status"
}

main "$@"

#!/usr/bin/env bash
# infra/interop/run.sh — interoperability suites: Confab's services driven by
# third-party clients (DESIGN.md §13). Step 6/6 of infra/ci.sh; also runs alone:
#
#   bash infra/interop/run.sh [PYTEST_ARGS...]    e.g. -k streaming
#
# What it does:
#   1. a Python venv with the pinned packages of requirements.txt (exact
#      versions of every transitive package in constraints.txt); reused while
#      those two files are unchanged
#   2. cargo build --bins -p <each service a suite needs>   (debug profile)
#   3. starts each service on a free 127.0.0.1 port with a fresh SQLite file
#      in a temporary directory (its log is there too), waits for /ready
#   4. pytest -q infra/interop, with each service's URL in the environment:
#        CONFAB_LLM_PROXY_URL   llm-proxy-service     (test_openai_llm_proxy.py)
#        CONFAB_MATH_AGENT_URL, CONFAB_TEXT_AGENT_URL, CONFAB_TREE_AGENT_URL,
#        CONFAB_AGENT_TOKEN     demo-agents (every JSON-RPC call presents
#                               CONFAB_AGENT_TOKEN, the services' shared
#                               token: here their development default),
#                               thinking through a second
#                               llm-proxy-service whose builtin model is slowed
#                               down so a task can be canceled or re-subscribed
#                               to mid-way             (test_a2a_demo_agents.py)
#        CONFAB_CHAT_URL        chat-service, its agents the demo agents plus
#                               two agents written with a2a-sdk
#                               (a2a_sdk_agent.py): sdk_v1 serving A2A v1.0
#                               only, sdk_v03 serving v0.3 only
#                                                      (test_a2a_chat_service.py,
#                                                   test_openai_chat_service.py)
#        CONFAB_GATEWAY_URL     the gateway in front of that chat-service and
#                               of the agents' llm-proxy-service (the one that
#                               records the math agent's calls, so the live
#                               trace through the gateway shows them), with
#                               its rate limits raised; chat-service and both
#                               llm-proxy-services verify user tokens against
#                               its JWKS            (test_openai_gateway.py,
#                                             test_websockets_front_door.py)
#        CONFAB_DASHBOARD_URL   dashboard-proxy, relaying WebSockets to that
#                               gateway       (test_websockets_front_door.py)
#      The seeds' frontends (test_seeds.py; alone: run.sh -k seeds) use the
#      gateway, dashboard-proxy (its default chat dialect, seed 001's) and
#      CONFAB_AGENTS_LLM_URL (seed 000's TraceView connects to it directly);
#      chat-service also has an agent `offline` that nothing answers for, so
#      a turn can fail with retries and an error (seed 003).
#   5. on exit, however it happens: stops the services it started (TERM, then
#      KILL after INTEROP_STOP_TIMEOUT s) and removes the temporary directory
# The exit status is pytest's (or 1 when setting up failed).
#
# The services get a clean configuration: CONFAB_*, DATABASE_URL and PORT from
# the caller's environment are not passed on, so their development defaults
# (service token, agent keys, builtin model) are what the suites rely on.
#
# Environment:
#   INTEROP_VENV=DIR             the venv (default: <repo>/target/interop-venv)
#   INTEROP_READY_TIMEOUT=SECS   wait for each /ready (default 30)
#   INTEROP_STOP_TIMEOUT=SECS    wait for each service to stop (default 35)
#   INTEROP_KEEP_TMP=1           keep the temporary directory (logs, databases)
#
# Adding a suite for another service: build it in build_services, start it in
# main with start_service NAME VAR [ENV=VALUE...] (VAR receives its URL and is
# exported to pytest), and put its test_*.py beside this file.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
here=$repo/infra/interop
venv=${INTEROP_VENV:-$repo/target/interop-venv}
ready_timeout=${INTEROP_READY_TIMEOUT:-30}
stop_timeout=${INTEROP_STOP_TIMEOUT:-35}

tmp=""
service_names=()
service_pids=()
service_logs=()

say() {
    printf '==> %s\n' "$*"
}

die() {
    echo "interop/run.sh: $*" >&2
    exit 1
}

# --- clean-up -------------------------------------------------------------------

# Stop every service this script started (and only those): TERM first so they
# shut down gracefully, KILL what is left after $stop_timeout seconds. Then the
# temporary directory goes. Safe to call more than once.
stop_services() {
    local i pid name
    for i in "${!service_pids[@]}"; do
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
                echo "interop/run.sh: $name (pid $pid) did not stop within ${stop_timeout}s, killing it" >&2
                kill -KILL "$pid" 2>/dev/null || true
            fi
        fi
        wait "$pid" 2>/dev/null || true
    done
    service_pids=()
    service_names=()
    service_logs=()
}

cleanup() {
    local status=$?
    trap - INT TERM HUP
    stop_services
    drop_databases
    if [[ -n "$tmp" && -d "$tmp" ]]; then
        if [[ "${INTEROP_KEEP_TMP:-}" == 1 ]]; then
            say "INTEROP_KEEP_TMP=1: keeping $tmp"
        else
            rm -rf "$tmp"
        fi
    fi
    exit "$status"
}

# Print every service log, or its first 10 and last 40 lines when it is long
# (a start-up error comes first, before any backtrace), after a failure.
show_logs() {
    local i log lines
    for i in "${!service_names[@]}"; do
        log=${service_logs[$i]}
        lines=$(wc -l <"$log" 2>/dev/null || echo 0)
        if ((lines <= 60)); then
            echo "---- $log (${service_names[$i]}) ----" >&2
            cat "$log" >&2 || true
        else
            echo "---- $log (${service_names[$i]}): first 10 and last 40 of $lines lines ----" >&2
            head -n 10 "$log" >&2 || true
            echo "[...]" >&2
            tail -n 40 "$log" >&2 || true
        fi
    done
    ((${#service_names[@]} == 0)) || echo "----" >&2
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
    command -v python3 >/dev/null 2>&1 || die "python3 not found (apt-get install python3 python3-venv)"
    if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
        say "creating the venv $venv ($(python3 --version 2>&1))"
        rm -rf "$venv"
        mkdir -p "$(dirname "$venv")"
        if ! python3 -m venv "$venv"; then
            # Debian's python3 needs python3-venv (ensurepip) for this; a
            # failed attempt leaves a venv without pip behind.
            rm -rf "$venv"
            say "python3 -m venv failed: installing python3-venv"
            as_root_apt_install python3-venv ||
                die "python3 -m venv failed and python3-venv could not be installed (needs root and apt-get)"
            python3 -m venv "$venv" || die "python3 -m venv $venv failed"
        fi
    fi
    local stamp=$venv/.confab-interop-stamp want
    want=$(cat "$here/requirements.txt" "$here/constraints.txt" <("$venv/bin/python" -VV) | sha256sum | cut -d' ' -f1)
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        say "venv up to date: $venv"
    else
        say "installing infra/interop/requirements.txt into $venv"
        rm -f "$stamp"
        "$venv/bin/python" -m pip install --disable-pip-version-check --no-input -q \
            -r "$here/requirements.txt" -c "$here/constraints.txt"
        echo "$want" >"$stamp"
    fi
    "$venv/bin/python" - <<'EOF'
import importlib.metadata as m
print("    " + ", ".join(f"{p} {m.version(p)}" for p in ("openai", "httpx", "pydantic", "pytest", "websockets")))
EOF
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
    local packages=(-p llm-proxy-service -p demo-agents -p chat-service -p gateway -p dashboard-proxy)
    say "cargo build --bins ${packages[*]}"
    (cd "$repo" && cargo build --bins "${packages[@]}")
}

# A TCP port nobody listens on right now (the kernel's pick).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# True when GET $1 answers 2xx (no proxy: the URL is on 127.0.0.1).
http_ok() {
    "$venv/bin/python" - "$1" <<'EOF' 2>/dev/null
import sys, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    with opener.open(sys.argv[1], timeout=2) as r:
        sys.exit(0 if 200 <= r.status < 300 else 1)
except Exception:
    sys.exit(1)
EOF
}

# A fresh database for service NAME, in $database: a SQLite file in its
# directory, or, when CONFAB_TEST_DATABASE_URL names a PostgreSQL server (an
# admin URL, as for the Rust tests), a new database there, dropped on exit.
# (A variable, not output: a $(…) subshell would lose the list to drop.)
pg_databases=()
database=""
fresh_database() {
    local name=$1 dir=$2
    local admin=${CONFAB_TEST_DATABASE_URL:-}
    if [[ -z "$admin" ]]; then
        database="$dir/$name.db"
        return
    fi
    command -v psql >/dev/null 2>&1 || die "CONFAB_TEST_DATABASE_URL is set but psql is not installed"
    local db
    db="confab_interop_${name//-/_}_$(date +%s)_$$"
    psql -q -X -v ON_ERROR_STOP=1 "$admin" -c "CREATE DATABASE \"$db\"" >/dev/null
    pg_databases+=("$db")
    database="${admin%/*}/$db"
}

drop_databases() {
    local db
    for db in "${pg_databases[@]}"; do
        psql -q -X "$CONFAB_TEST_DATABASE_URL" -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
    done
}

# start_service NAME[@INSTANCE] VAR [ENV=VALUE...]
# Starts target/debug/NAME on a free 127.0.0.1 port (or $service_port) with a
# fresh database (none when service_database=0), ENV=VALUE added to its
# environment, its log in $tmp/NAME[-INSTANCE].log; waits for /ready and
# exports VAR=http://127.0.0.1:PORT for the suites. @INSTANCE tells two
# processes of one binary apart.
start_service() {
    local label=$1 var=$2
    local name=${label%@*}
    shift 2
    local bin=$bin_dir/$name
    [[ -x "$bin" ]] || die "$bin not found or not executable"
    local slug=${label//@/-}
    local port dir=$tmp/$slug
    port=${service_port:-$(free_port)}
    mkdir -p "$dir"
    local log=$tmp/$slug.log
    if [[ "${service_database:-1}" == 1 ]]; then
        fresh_database "${slug//-/_}" "$dir"
    else
        database=""
    fi
    # Nothing of the caller's Confab configuration leaks in.
    local env_args=(-u DATABASE_URL -u PORT)
    local var_name
    while IFS= read -r var_name; do
        env_args+=(-u "$var_name")
    done < <(compgen -e | grep '^CONFAB_' || true)
    # Development: the suites use the development secrets of the defaults.
    env_args+=("PORT=$port" "CONFAB__SERVER__HOST=127.0.0.1" "CONFAB__ENV=development" "NO_COLOR=1")
    [[ -z "$database" ]] || env_args+=("DATABASE_URL=$database")
    env_args+=("$@")
    # Runs in its own directory so nothing lands in the repo's ./data; stays
    # in this script's process group, so a signal to the whole group (a CI
    # timeout) reaches it too. The subshell and env exec: $! is its own pid.
    (cd "$dir" && exec env "${env_args[@]}" "$bin" >"$log" 2>&1 </dev/null) &
    local pid=$!
    # The database without its credentials, when it is a PostgreSQL URL.
    local shown=${database##*@}
    say "started $label (pid $pid) on 127.0.0.1:$port with ${shown:-no database}, log $log"
    wait_ready "$label" "$pid" "$log" "http://127.0.0.1:$port" "$var"
}

# start_sdk_agent NAME VAR PROTOCOL
# Starts infra/interop/a2a_sdk_agent.py (the a2a-sdk agent) serving A2A
# PROTOCOL only, on a free port; waits for it and exports VAR=its URL.
start_sdk_agent() {
    local name=$1 var=$2 protocol=$3
    local port log=$tmp/$name.log
    port=$(free_port)
    "$venv/bin/python" "$here/a2a_sdk_agent.py" --port "$port" --protocol "$protocol" \
        --chunk-delay 0.05 >"$log" 2>&1 </dev/null &
    local pid=$!
    say "started $name (pid $pid, a2a-sdk, A2A $protocol only) on 127.0.0.1:$port, log $log"
    wait_ready "$name" "$pid" "$log" "http://127.0.0.1:$port" "$var"
}

# wait_ready NAME PID LOG URL VAR: remembers the process (to stop it on exit),
# waits for URL/ready, exports VAR=URL.
wait_ready() {
    local name=$1 pid=$2 log=$3 url=$4 var=$5
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
    say "$name ready: $var=$url"
    export "$var=$url"
}

# --- main -----------------------------------------------------------------------

main() {
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP

    printf '\n######## Confab interoperability suites (infra/interop) ########\n'
    echo "repo: $repo"

    ensure_venv
    build_services

    tmp=$(mktemp -d "${TMPDIR:-/tmp}/confab-interop.XXXXXX")
    say "temporary directory: $tmp"

    # The gateway starts last (its upstreams must be known), but the others
    # verify user tokens against its JWKS, so its port is picked first.
    local gateway_port jwks
    gateway_port=$(free_port)
    jwks="CONFAB__AUTH__JWKS_URL=http://127.0.0.1:$gateway_port/.well-known/jwks.json"

    printf '\n---- llm-proxy-service x OpenAI Python SDK ----\n'
    start_service llm-proxy-service CONFAB_LLM_PROXY_URL "$jwks"

    printf '\n---- demo agents and chat-service x a2a-sdk ----\n'
    # The agents' model answers slowly enough (a chunk every 150 ms) that a
    # test can cancel a task, or drop and re-subscribe to it, mid-way.
    start_service llm-proxy-service@agents CONFAB_AGENTS_LLM_URL \
        CONFAB__PROVIDERS__BUILTIN__CHUNK_DELAY_MS=150 "$jwks"
    local math_port text_port tree_port
    math_port=$(free_port)
    text_port=$(free_port)
    tree_port=$(free_port)
    service_database=0 service_port=$math_port start_service demo-agents CONFAB_MATH_AGENT_URL \
        "CONFAB__LLM__BASE_URL=$CONFAB_AGENTS_LLM_URL" \
        "CONFAB__AGENTS__MATH__PORT=$math_port" \
        "CONFAB__AGENTS__TEXT__PORT=$text_port" \
        "CONFAB__AGENTS__TREE__PORT=$tree_port"
    export CONFAB_TEXT_AGENT_URL=http://127.0.0.1:$text_port
    export CONFAB_TREE_AGENT_URL=http://127.0.0.1:$tree_port
    start_sdk_agent a2a-sdk-agent-v1 CONFAB_SDK_V1_AGENT_URL 1.0
    start_sdk_agent a2a-sdk-agent-v03 CONFAB_SDK_V03_AGENT_URL 0.3
    # An agent nothing answers for: a port that was free a moment ago.
    local offline_port
    offline_port=$(free_port)
    start_service chat-service CONFAB_CHAT_URL \
        "CONFAB__AGENTS__MATH__URL=$CONFAB_MATH_AGENT_URL/" \
        "CONFAB__AGENTS__TEXT__URL=$CONFAB_TEXT_AGENT_URL/" \
        "CONFAB__AGENTS__TREE__URL=$CONFAB_TREE_AGENT_URL/" \
        "CONFAB__AGENTS__SDK_V1__URL=$CONFAB_SDK_V1_AGENT_URL/" \
        "CONFAB__AGENTS__SDK_V03__URL=$CONFAB_SDK_V03_AGENT_URL/" \
        "CONFAB__AGENTS__OFFLINE__URL=http://127.0.0.1:$offline_port/" \
        "CONFAB__BUDGET__URL=$CONFAB_AGENTS_LLM_URL" \
        "$jwks"

    printf '\n---- gateway and dashboard-proxy x OpenAI Python SDK, websockets ----\n'
    # Every suite registers and logs in its own users through this one
    # gateway, all from 127.0.0.1, and posts many chat turns as them: the
    # per-IP login/register limits (10 a minute by default) and the per-user
    # chat POST limit (60) are raised so that the suites, not a 429, decide.
    service_port=$gateway_port start_service gateway CONFAB_GATEWAY_URL \
        "CONFAB__UPSTREAMS__CHAT=$CONFAB_CHAT_URL" \
        "CONFAB__UPSTREAMS__LLM_PROXY=$CONFAB_AGENTS_LLM_URL" \
        CONFAB__RATE_LIMITS__LOGIN_PER_MINUTE=1000 \
        CONFAB__RATE_LIMITS__REGISTER_PER_MINUTE=1000 \
        CONFAB__RATE_LIMITS__CHAT_POSTS_PER_MINUTE=1000
    service_database=0 start_service dashboard-proxy CONFAB_DASHBOARD_URL \
        "CONFAB__UPSTREAM__URL=ws://127.0.0.1:$gateway_port"

    # The bearer token the demo agents accept: the shared service token,
    # which every service here has at its development default.
    CONFAB_AGENT_TOKEN=$(sed -n 's/^service_token = "\(.*\)"$/\1/p' "$repo/services/demo-agents/config/default.toml")
    [[ -n "$CONFAB_AGENT_TOKEN" ]] || die "no service_token in services/demo-agents/config/default.toml"
    export CONFAB_AGENT_TOKEN

    # The services are on 127.0.0.1: never through an HTTP proxy.
    export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
    export no_proxy=$NO_PROXY
    # No .pytest_cache or __pycache__ in the work tree.
    export PYTHONDONTWRITEBYTECODE=1

    printf '\n---- pytest -q infra/interop ----\n'
    local status=0
    (cd "$repo" && "$venv/bin/python" -m pytest -q -p no:cacheprovider infra/interop "$@") || status=$?
    if ((status != 0)); then
        echo "interop/run.sh: pytest exited with status $status" >&2
        show_logs
    fi
    printf '\n######## interoperability suites: %s ########\n' "$([[ $status == 0 ]] && echo passed || echo "FAILED (exit $status)")"
    return "$status"
}

main "$@"

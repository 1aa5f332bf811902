#!/usr/bin/env bash
# infra/interop/run.sh — interoperability suites: Confab's services driven by
# third-party clients (DESIGN.md §13). Step 7 of infra/ci.sh; also runs alone:
#
#   bash infra/interop/run.sh [PYTEST_ARGS...]    e.g. -k streaming
#
# What it does:
#   1. a Python venv with the pinned packages of requirements.txt (exact
#      versions of every transitive package in constraints.txt); reused while
#      those two files are unchanged
#   2. cargo build --bins -p <each service a suite needs>   (debug profile)
#   3. starts each service on a free 127.0.0.1 port with a fresh SQLite file
#      in a temporary directory (its log is there too), or, when
#      CONFAB_TEST_DATABASE_URL names a PostgreSQL server (infra/ci.sh's
#      second run), a fresh database there, dropped on exit; waits for /ready
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
# The plumbing of steps 1-3 and 5 is infra/lib/stack.sh.
#
# The services get a clean configuration: CONFAB_*, OTEL_*, DATABASE_URL and PORT from
# the caller's environment are not passed on, so their development defaults
# (service token, agent keys, builtin model) are what the suites rely on.
#
# Environment:
#   INTEROP_VENV=DIR             the venv (default: <repo>/target/interop-venv)
#   INTEROP_READY_TIMEOUT=SECS   wait for each /ready (default 30)
#   INTEROP_STOP_TIMEOUT=SECS    wait for each service to stop (default 35)
#   INTEROP_KEEP_TMP=1           keep the temporary directory (logs, databases)
#
# Adding a suite for another service: build it (main's stack_build), start it in
# main with start_service NAME VAR [ENV=VALUE...] (VAR receives its URL and is
# exported to pytest), and put its test_*.py beside this file.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
here=$repo/infra/interop
stack_name=interop
stack_python_dir=$here
stack_venv=${INTEROP_VENV:-$repo/target/interop-venv}
stack_ready_timeout=${INTEROP_READY_TIMEOUT:-30}
stack_stop_timeout=${INTEROP_STOP_TIMEOUT:-35}
stack_keep_tmp=${INTEROP_KEEP_TMP:-0}
# CONFAB_TEST_DATABASE_URL (infra/ci.sh's PostgreSQL run): a database per
# service there instead of SQLite files.
stack_postgres_from_env=1
# shellcheck source=../lib/stack.sh
. "$repo/infra/lib/stack.sh"

# start_service NAME[@INSTANCE] VAR [ENV=VALUE...]
# Starts target/debug/NAME on a free 127.0.0.1 port (or $service_port) with a
# fresh database (none when service_database=0) and ENV=VALUE added to its
# environment (stack_start_service); waits for /ready and exports
# VAR=http://127.0.0.1:PORT for the suites. @INSTANCE tells two processes of
# one binary apart.
start_service() {
    local label=$1 var=$2
    shift 2
    local no_database=0
    [[ "${service_database:-1}" == 1 ]] || no_database=1
    stack_no_database=$no_database stack_start_service "$label" "${service_port:-}" "$@"
    export "$var=$stack_url"
}

# start_sdk_agent NAME VAR PROTOCOL
# Starts infra/interop/a2a_sdk_agent.py (the a2a-sdk agent) serving A2A
# PROTOCOL only, on a free port; waits for it and exports VAR=its URL.
start_sdk_agent() {
    local name=$1 var=$2 protocol=$3
    local port log=$stack_tmp/$name.log
    port=$(stack_free_port)
    "$stack_venv/bin/python" "$here/a2a_sdk_agent.py" --port "$port" --protocol "$protocol" \
        --chunk-delay 0.05 >"$log" 2>&1 </dev/null &
    local pid=$!
    say "started $name (pid $pid, a2a-sdk, A2A $protocol only) on 127.0.0.1:$port, log $log"
    stack_track "$name" "$pid" "$log" "http://127.0.0.1:$port"
    export "$var=http://127.0.0.1:$port"
}

# --- main -----------------------------------------------------------------------

main() {
    stack_traps

    printf '\n######## Confab interoperability suites (infra/interop) ########\n'
    echo "repo: $repo"

    stack_ensure_venv openai httpx pydantic pytest websockets
    stack_build llm-proxy-service demo-agents chat-service gateway dashboard-proxy
    stack_make_tmp

    # The gateway starts last (its upstreams must be known), but the others
    # verify user tokens against its JWKS, so its port is picked first.
    local gateway_port jwks
    gateway_port=$(stack_free_port)
    jwks="CONFAB__AUTH__JWKS_URL=http://127.0.0.1:$gateway_port/.well-known/jwks.json"

    printf '\n---- llm-proxy-service x OpenAI Python SDK ----\n'
    start_service llm-proxy-service CONFAB_LLM_PROXY_URL "$jwks"

    printf '\n---- demo agents and chat-service x a2a-sdk ----\n'
    # The agents' model answers slowly enough (a chunk every 150 ms) that a
    # test can cancel a task, or drop and re-subscribe to it, mid-way.
    start_service llm-proxy-service@agents CONFAB_AGENTS_LLM_URL \
        CONFAB__PROVIDERS__BUILTIN__CHUNK_DELAY_MS=150 "$jwks"
    local math_port text_port tree_port
    math_port=$(stack_free_port)
    text_port=$(stack_free_port)
    tree_port=$(stack_free_port)
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
    offline_port=$(stack_free_port)
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

    printf '\n---- pytest -q infra/interop ----\n'
    local status=0
    (cd "$repo" && "$stack_venv/bin/python" -m pytest -q -p no:cacheprovider infra/interop "$@") || status=$?
    if ((status != 0)); then
        echo "interop/run.sh: pytest exited with status $status" >&2
        stack_show_logs
    fi
    printf '\n######## interoperability suites: %s ########\n' "$([[ $status == 0 ]] && echo passed || echo "FAILED (exit $status)")"
    return "$status"
}

main "$@"

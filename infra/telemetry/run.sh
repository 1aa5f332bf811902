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
# The plumbing of steps 1-3 and 7 is infra/lib/stack.sh.
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
stack_name=telemetry
stack_python_dir=$here
stack_venv=${TELEMETRY_VENV:-$repo/target/telemetry-venv}
stack_ready_timeout=${TELEMETRY_READY_TIMEOUT:-30}
stack_stop_timeout=${TELEMETRY_STOP_TIMEOUT:-35}
stack_keep_tmp=${TELEMETRY_KEEP_TMP:-0}
# shellcheck source=../lib/stack.sh
. "$repo/infra/lib/stack.sh"

# The LLM calls' spans log a debug line as they end, inside the span: the
# lines the test finds by the turn's trace id.
rust_log="info,llm_proxy_service::call=debug,demo_agents::llm=debug"

# --- main -----------------------------------------------------------------------

main() {
    stack_traps

    printf '\n######## Confab trace test (infra/telemetry) ########\n'
    stack_ensure_venv opentelemetry-proto protobuf pytest
    stack_build llm-proxy-service demo-agents chat-service gateway
    stack_make_tmp
    local tmp=$stack_tmp venv=$stack_venv

    local receiver_port
    receiver_port=$(stack_free_port)
    "$venv/bin/python" "$here/receiver.py" --port "$receiver_port" --out "$tmp/otlp" \
        >"$tmp/receiver.log" 2>&1 </dev/null &
    stack_track receiver $! "$tmp/receiver.log" "http://127.0.0.1:$receiver_port"
    # Every service exports its spans to the receiver.
    stack_service_env=("OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$receiver_port" "RUST_LOG=$rust_log")

    local gateway_port llm_port chat_port math_port text_port tree_port jwks
    gateway_port=$(stack_free_port)
    llm_port=$(stack_free_port)
    chat_port=$(stack_free_port)
    math_port=$(stack_free_port)
    text_port=$(stack_free_port)
    tree_port=$(stack_free_port)
    jwks="CONFAB__AUTH__JWKS_URL=http://127.0.0.1:$gateway_port/.well-known/jwks.json"

    stack_start_service llm-proxy-service "$llm_port" "$jwks" CONFAB__TELEMETRY__LOG_FORMAT=json \
        CONFAB__TELEMETRY__CAPTURE_CONTENT=true
    stack_start_service demo-agents "$math_port" \
        "CONFAB__LLM__BASE_URL=http://127.0.0.1:$llm_port" \
        "CONFAB__AGENTS__MATH__PORT=$math_port" \
        "CONFAB__AGENTS__TEXT__PORT=$text_port" \
        "CONFAB__AGENTS__TREE__PORT=$tree_port"
    stack_start_service chat-service "$chat_port" "$jwks" CONFAB__TELEMETRY__LOG_FORMAT=json \
        "CONFAB__AGENTS__MATH__URL=http://127.0.0.1:$math_port/" \
        "CONFAB__AGENTS__TEXT__URL=http://127.0.0.1:$text_port/" \
        "CONFAB__AGENTS__TREE__URL=http://127.0.0.1:$tree_port/" \
        "CONFAB__BUDGET__URL=http://127.0.0.1:$llm_port"
    stack_start_service gateway "$gateway_port" \
        "CONFAB__UPSTREAMS__CHAT=http://127.0.0.1:$chat_port" \
        "CONFAB__UPSTREAMS__LLM_PROXY=http://127.0.0.1:$llm_port"

    printf '\n---- one turn through the gateway ----\n'
    "$venv/bin/python" "$here/turn.py" --gateway "http://127.0.0.1:$gateway_port" --out "$tmp/turn.json" ||
        {
            stack_show_logs
            die "the turn failed"
        }

    printf '\n---- stopping the services (SIGTERM: each flushes its spans) ----\n'
    stack_stop_all

    printf '\n---- pytest -q infra/telemetry ----\n'
    local status=0
    (cd "$repo" && CONFAB_TELEMETRY_DIR=$tmp "$venv/bin/python" -m pytest -q -p no:cacheprovider \
        infra/telemetry "$@") || status=$?
    if ((status != 0)); then
        echo "telemetry/run.sh: pytest exited with status $status" >&2
        stack_show_logs
    fi
    printf '\n######## trace test: %s ########\n' "$([[ $status == 0 ]] && echo passed || echo "FAILED (exit $status)")"
    return "$status"
}

main "$@"

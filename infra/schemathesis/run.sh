#!/usr/bin/env bash
# infra/schemathesis/run.sh — the API contract test (DESIGN.md §13):
# schemathesis, a property-based API tester we did not write, generates
# valid and invalid requests for every operation of the gateway's published
# OpenAPI 3.1 document (GET /api/v1/openapi.json) and sends them to the
# real gateway, in front of the real chat-service, llm-proxy-service and
# demo agents. Every response must be no 5xx, match the status codes and
# schemas the document gives for it, and come within 5 s. A step of
# infra/ci.sh; also runs alone:
#
#   bash infra/schemathesis/run.sh [SCHEMATHESIS_RUN_ARGS...]
#                                  e.g. --include-path-regex '^/api/v1/agents'
#
# What it does:
#   1. a Python venv with the pinned packages of requirements.txt (every
#      transitive package pinned in constraints.txt); reused while those two
#      files are unchanged
#   2. cargo build --bins -p llm-proxy-service -p demo-agents -p chat-service
#      -p gateway   (debug profile)
#   3. starts each on a free 127.0.0.1 port with a fresh SQLite file in a
#      temporary directory (its log there too), wired as infra/telemetry
#      wires them: the agents registered with chat-service, the gateway's
#      upstreams chat-service and llm-proxy-service, which verify user
#      tokens against the gateway's JWKS. The gateway has an administrator
#      (a random password of this run's alone), and its per-IP login and
#      register limits and per-user chat limit are raised (see below)
#   4. registers and logs in a user through POST /api/v1/auth/register and
#      POST /api/v1/auth/login (DESIGN §5), and logs the administrator in
#   5. two schemathesis runs over the document, with --checks all, every
#      phase (examples, coverage, fuzzing, stateful), a fixed seed and a
#      bounded number of examples per operation:
#        user   every operation but /api/v1/admin/…, with the user's token
#        admin  the /api/v1/admin/… operations, with the administrator's
#      JUnit reports and NDJSON events of both land in the temporary
#      directory (or SCHEMATHESIS_REPORT_DIR); summary.py prints from the
#      events the checks run (passed and failed, per check) and each
#      distinct failure (operation, check, status, a curl line)
#   6. on exit, however it happens: stops what it started (TERM, then KILL
#      after SCHEMATHESIS_STOP_TIMEOUT s) and removes the temporary directory
# The exit status is 0 when both runs pass, else the first failing run's
# (or 1 when setting up failed). schemathesis prints its own summary of each
# run: operations tested, test cases and checks run, and every failure with
# a curl line that reproduces it.
# The plumbing of steps 1-3 and 6 is infra/lib/stack.sh.
#
# Nothing of the document is left out, but its operations are split in two
# runs, each with the token that can use them:
#   - /api/v1/admin/… need an administrator: with a user token every one of
#     them would only answer 403, so the user run leaves them to the admin
#     run. The admin run's token is the administrator's own; the gateway
#     refuses to let an administrator delete, disable or demote herself, so
#     the run cannot lock itself out. It runs after the user run (it may
#     disable or delete the user, whose run is over by then).
#   - The operations that end sessions stay in the user run:
#     POST /api/v1/auth/logout and DELETE /api/v1/auth/sessions/{id} revoke
#     refresh tokens only; the access token the run uses is verified without
#     a database lookup and lives its 30 minutes. POST /api/v1/auth/password
#     needs the current password, which the generated requests do not know.
# Why the limits are raised: at their defaults (10 logins and registrations a
# minute per IP, 60 chat POSTs a minute per user) nearly every generated
# request to those operations would meet the limiter's 429 instead of the
# operation; the limiter itself has its own tests. The turn limits (4 in
# flight, DESIGN §14) stay at their defaults: their 429 is documented.
#
# Environment:
#   SCHEMATHESIS_VENV=DIR             the venv (default: <repo>/target/schemathesis-venv)
#   SCHEMATHESIS_SEED=N               hypothesis' seed (default 22)
#   SCHEMATHESIS_MAX_EXAMPLES=N       test cases per operation and phase (default 10)
#   SCHEMATHESIS_WORKERS=N            concurrent workers (default 2)
#   SCHEMATHESIS_REPORT_DIR=DIR       where the reports go (default: the
#                                     temporary directory)
#   SCHEMATHESIS_READY_TIMEOUT=SECS   wait for each /ready (default 30)
#   SCHEMATHESIS_STOP_TIMEOUT=SECS    wait for each service to stop (default 35)
#   SCHEMATHESIS_NO_BUILD=1           use the binaries already built
#   SCHEMATHESIS_KEEP_TMP=1           keep the temporary directory (logs, reports)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
here=$repo/infra/schemathesis
stack_name=schemathesis
stack_python_dir=$here
stack_venv=${SCHEMATHESIS_VENV:-$repo/target/schemathesis-venv}
stack_ready_timeout=${SCHEMATHESIS_READY_TIMEOUT:-30}
stack_stop_timeout=${SCHEMATHESIS_STOP_TIMEOUT:-35}
stack_keep_tmp=${SCHEMATHESIS_KEEP_TMP:-0}
stack_no_build=${SCHEMATHESIS_NO_BUILD:-0}
# shellcheck source=../lib/stack.sh
. "$repo/infra/lib/stack.sh"

seed=${SCHEMATHESIS_SEED:-22}
max_examples=${SCHEMATHESIS_MAX_EXAMPLES:-10}
workers=${SCHEMATHESIS_WORKERS:-2}
# DESIGN.md's (and the issue's) bound on any one response.
max_response_time=5

# log_in GATEWAY USERNAME PASSWORD [register]: prints the access token of
# POST /api/v1/auth/login, after POST /api/v1/auth/register when asked.
log_in() {
    python3 - "$@" <<'PY'
import json, sys, urllib.request, urllib.error

gateway, username, password = sys.argv[1:4]
register = sys.argv[4:] == ["register"]
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

def post(path, body):
    request = urllib.request.Request(
        gateway + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with opener.open(request, timeout=30) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        sys.exit(f"POST {path}: {error.code} {error.read().decode(errors='replace')}")

credentials = {"username": username, "password": password}
if register:
    post("/api/v1/auth/register", credentials)
answer = post("/api/v1/auth/login", credentials)
assert answer["token_type"] == "bearer", answer
print(answer["access_token"])
PY
}

# schemathesis_run NAME TOKEN [ARGS...]: one run over the gateway's document
# with TOKEN as the bearer; its JUnit report is $report_dir/NAME.xml, its
# events $report_dir/NAME.ndjson, summarised by summary.py (the checks run,
# passed and failed, and each distinct failure with a curl line, also as a
# Markdown table in $report_dir/NAME-findings.md).
schemathesis_run() {
    local name=$1 token=$2 status=0
    shift 2
    printf '\n---- schemathesis run: %s ----\n' "$name"
    # In the temporary directory: nothing (.hypothesis, reports) lands in
    # the work tree.
    (cd "$stack_tmp" && "$stack_venv/bin/schemathesis" run "$openapi_url" \
        --header "Authorization: Bearer $token" \
        --checks all \
        --max-response-time "$max_response_time" \
        --request-timeout 30 \
        --seed "$seed" \
        --max-examples "$max_examples" \
        --workers "$workers" \
        --generation-database none \
        --wait-for-schema 60 \
        --report junit,ndjson \
        --report-junit-path "$report_dir/$name.xml" \
        --report-ndjson-path "$report_dir/$name.ndjson" \
        --no-color \
        "$@") || status=$?
    if [[ -s "$report_dir/$name.ndjson" ]]; then
        python3 "$here/summary.py" "$report_dir/$name.ndjson" "$name" "$report_dir/$name-findings.md" ||
            echo "schemathesis/run.sh: could not summarise $report_dir/$name.ndjson" >&2
    fi
    return "$status"
}

# --- main -----------------------------------------------------------------------

main() {
    stack_traps

    printf '\n######## Confab API contract test (infra/schemathesis) ########\n'
    stack_ensure_venv schemathesis hypothesis requests
    stack_build llm-proxy-service demo-agents chat-service gateway
    stack_make_tmp
    report_dir=${SCHEMATHESIS_REPORT_DIR:-$stack_tmp/report}
    mkdir -p "$report_dir"

    local gateway_port llm_port chat_port math_port text_port tree_port jwks
    gateway_port=$(stack_free_port)
    llm_port=$(stack_free_port)
    chat_port=$(stack_free_port)
    math_port=$(stack_free_port)
    text_port=$(stack_free_port)
    tree_port=$(stack_free_port)
    jwks="CONFAB__AUTH__JWKS_URL=http://127.0.0.1:$gateway_port/.well-known/jwks.json"

    stack_start_service llm-proxy-service "$llm_port" "$jwks"
    stack_start_service demo-agents "$math_port" \
        "CONFAB__LLM__BASE_URL=http://127.0.0.1:$llm_port" \
        "CONFAB__AGENTS__MATH__PORT=$math_port" \
        "CONFAB__AGENTS__TEXT__PORT=$text_port" \
        "CONFAB__AGENTS__TREE__PORT=$tree_port"
    stack_start_service chat-service "$chat_port" "$jwks" \
        "CONFAB__AGENTS__MATH__URL=http://127.0.0.1:$math_port/" \
        "CONFAB__AGENTS__TEXT__URL=http://127.0.0.1:$text_port/" \
        "CONFAB__AGENTS__TREE__URL=http://127.0.0.1:$tree_port/" \
        "CONFAB__BUDGET__URL=http://127.0.0.1:$llm_port"
    local admin_username=contractadmin admin_password
    admin_password=$(python3 -c 'import secrets; print("adm-" + secrets.token_hex(12))')
    stack_start_service gateway "$gateway_port" \
        "CONFAB__UPSTREAMS__CHAT=http://127.0.0.1:$chat_port" \
        "CONFAB__UPSTREAMS__LLM_PROXY=http://127.0.0.1:$llm_port" \
        "CONFAB__ADMIN__USERNAME=$admin_username" \
        "CONFAB__ADMIN__PASSWORD=$admin_password" \
        CONFAB__RATE_LIMITS__LOGIN_PER_MINUTE=100000 \
        CONFAB__RATE_LIMITS__REGISTER_PER_MINUTE=100000 \
        CONFAB__RATE_LIMITS__CHAT_POSTS_PER_MINUTE=100000
    local gateway=$stack_url
    openapi_url=$gateway/api/v1/openapi.json

    printf '\n---- the document and the tokens ----\n'
    local user_token admin_token
    user_token=$(log_in "$gateway" contractuser "pw-$(python3 -c 'import secrets; print(secrets.token_hex(12))')" register) ||
        {
            stack_show_logs
            die "registering and logging in the user failed"
        }
    admin_token=$(log_in "$gateway" "$admin_username" "$admin_password") ||
        {
            stack_show_logs
            die "logging in the administrator failed"
        }
    say "user contractuser and administrator $admin_username logged in"
    python3 - "$openapi_url" <<'PY' || die "the gateway serves no OpenAPI document at $openapi_url"
import json, sys, urllib.error, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    with opener.open(sys.argv[1], timeout=30) as response:
        doc = json.load(response)
except urllib.error.HTTPError as error:
    sys.exit(f"GET {sys.argv[1]}: {error.code} {error.read()[:300].decode(errors='replace')}")
verbs = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
operations = [(m.upper(), p) for p, item in doc.get("paths", {}).items() for m in item if m in verbs]
admin = sum(1 for _, p in operations if p.startswith("/api/v1/admin/"))
print(f"    OpenAPI {doc.get('openapi')}: {len(operations)} operations "
      f"({len(operations) - admin} for the user run, {admin} for the admin run)")
PY

    local status=0 run_status
    run_status=0
    schemathesis_run user "$user_token" --exclude-path-regex '^/api/v1/admin/' "$@" || run_status=$?
    ((status != 0)) || status=$run_status
    local user_status=$run_status
    run_status=0
    schemathesis_run admin "$admin_token" --include-path-regex '^/api/v1/admin/' "$@" || run_status=$?
    ((status != 0)) || status=$run_status

    if ((status != 0)); then
        stack_show_logs
    fi
    say "reports (JUnit, NDJSON events): $report_dir"
    printf '\n######## API contract test: user run %s, admin run %s ########\n' \
        "$([[ $user_status == 0 ]] && echo passed || echo "FAILED (exit $user_status)")" \
        "$([[ $run_status == 0 ]] && echo passed || echo "FAILED (exit $run_status)")"
    return "$status"
}

main "$@"

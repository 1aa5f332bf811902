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
#   5. three schemathesis runs over the document (user, admin, service: see
#      below), with --checks all, every phase (examples, coverage, fuzzing,
#      stateful), --continue-on-failure, a fixed seed and a bounded number
#      of examples per operation. The JUnit reports and NDJSON events land
#      in the temporary directory (or SCHEMATHESIS_REPORT_DIR); summary.py
#      prints from the events the checks run (passed and failed, per check)
#      and each distinct failure (operation, check, status, a curl line);
#      the document tested is saved beside them (openapi.json)
#   6. on exit, however it happens: stops what it started (TERM, then KILL
#      after SCHEMATHESIS_STOP_TIMEOUT s) and removes the temporary directory
# The exit status is 0 when every run passes, else the first failing run's
# (or 1 when setting up failed). schemathesis prints its own summary of each
# run: operations tested, test cases and checks run, and every failure with
# a curl line that reproduces it.
# The plumbing of steps 1-3 and 6 is infra/lib/stack.sh.
#
# The operations are split in three runs, each with the credentials that
# can use them, so that every operation is tested past its authentication:
#   user     every operation but those of the two below, with the user's
#            access token (Authorization: Bearer)
#   admin    /api/v1/admin/… and GET /metrics (the operator's: the service
#            token or an administrator's token), with the administrator's
#            access token. The gateway refuses to let an administrator
#            delete, disable or demote herself, so the run cannot lock
#            itself out. It runs after the user run (it may disable or
#            delete the user, whose run is over by then).
#   service  /internal/… (the services' own: the service token only), with
#            X-Service-Token (this run's services have the development one)
# The operations that end sessions stay in the user run:
# POST /api/v1/auth/logout and DELETE /api/v1/auth/sessions/{id} revoke
# refresh tokens only; the access token the run uses is verified without a
# database lookup and lives its 30 minutes. POST /api/v1/auth/password needs
# the current password, which the generated requests do not know.
# Three operations are left out, because they cannot be tested this way:
#   GET /ws/chat and GET /ws/trace/{agent_id} are WebSocket handshakes: a
#            request valid by the document carries the upgrade headers and
#            is answered 101, after which the connection is no longer
#            HTTP; schemathesis's HTTP client would read it as a response
#            without a body and put the upgraded connection back in its
#            pool. Their refusals (a plain GET, a wrong version, no token)
#            and both dialects are tested by chat-service's and
#            llm-proxy-service's tests/api and by infra/interop's
#            test_websockets_front_door.py (the websockets library).
#   GET /api/chat/sessions/{id}/messages/stream (seed 000's EventSource)
#            follows a conversation and, by design, never ends while the
#            conversation exists (a keep-alive every 15 s); schemathesis
#            reads every response to its end, so a generated request for an
#            existing session never completes (seen: a run that hung until
#            killed). Its events, resumption and refusals are tested by
#            infra/interop/test_seeds.py and chat-service's tests/api.
# Nothing else is excluded: the filters are in main, the line "OpenAPI 3.1.0:
# N operations: ..." says how many each run gets, and each run's output how
# many it selected of schemathesis' total. That total is one short of the
# document's: schemathesis leaves out GET /api/v1/openapi.json, the
# document it loaded (which every run has just fetched, a 200).
# Why the limits are raised: at their defaults (10 logins and registrations a
# minute per IP, 60 chat POSTs a minute per user) nearly every generated
# request to those operations would meet the limiter's 429 instead of the
# operation; the limiter itself has its own tests. The turn limits (4 in
# flight, DESIGN §14) stay at their defaults: their 429 is documented.
#
# Environment:
#   SCHEMATHESIS_VENV=DIR             the venv (default: <repo>/target/schemathesis-venv)
#   SCHEMATHESIS_SEED=N               hypothesis' seed (default 22)
#   SCHEMATHESIS_MAX_EXAMPLES=N       test cases per operation and phase (default 50:
#                                     the three runs take about a minute on 2 cores;
#                                     100 takes twice that)
#   SCHEMATHESIS_WORKERS=N            concurrent workers (default 1: with 2,
#                                     hypothesis 6 races on an internal cache
#                                     now and then, AST_LAMBDAS_CACHE KeyError,
#                                     an error of the tool, not of the API)
#   SCHEMATHESIS_RUN_TIMEOUT=SECS     stop a run still going after this long,
#                                     as failed (default 900)
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
max_examples=${SCHEMATHESIS_MAX_EXAMPLES:-50}
workers=${SCHEMATHESIS_WORKERS:-1}
# The issue's bound on any one response (the max_response_time check);
# --request-timeout (30 s between bytes) only keeps a hung request from
# holding the run.
max_response_time=5
run_timeout=${SCHEMATHESIS_RUN_TIMEOUT:-900}

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

# schemathesis_run NAME HEADER [ARGS...]: one run over the gateway's
# document, HEADER (NAME: VALUE) sent with every request; its JUnit report
# is $report_dir/NAME.xml, its events $report_dir/NAME.ndjson, summarised by
# summary.py (the checks run, passed and failed, and each distinct failure
# with a curl line, also as a Markdown table in $report_dir/NAME-findings.md).
schemathesis_run() {
    local name=$1 header=$2 status=0
    shift 2
    printf '\n---- schemathesis run: %s ----\n' "$name"
    # In the temporary directory: nothing (.hypothesis, reports) lands in
    # the work tree. In the background, remembered with the services: a
    # signal to this script stops it too, and so does the deadline.
    (cd "$stack_tmp" && exec "$stack_venv/bin/schemathesis" run "$openapi_url" \
        --header "$header" \
        --checks all \
        --max-response-time "$max_response_time" \
        --request-timeout 30 \
        --seed "$seed" \
        --max-examples "$max_examples" \
        --workers "$workers" \
        --continue-on-failure \
        --generation-database none \
        --wait-for-schema 60 \
        --report junit,ndjson \
        --report-junit-path "$report_dir/$name.xml" \
        --report-ndjson-path "$report_dir/$name.ndjson" \
        --no-color \
        "$@") &
    local pid=$! deadline=$((SECONDS + run_timeout))
    stack_remember "schemathesis ($name run)" "$pid"
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            echo "schemathesis/run.sh: the $name run did not end within ${run_timeout}s (a response that never ends?): stopping it" >&2
            kill -TERM "$pid" 2>/dev/null || true
            break
        fi
        sleep 1
    done
    wait "$pid" || status=$?
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
    # The service token the services here have: their development default.
    local service_token
    service_token=$(sed -n 's/^service_token = "\(.*\)"$/\1/p' "$repo/services/gateway/config/default.toml")
    [[ -n "$service_token" ]] || die "no service_token in services/gateway/config/default.toml"

    local admin_ops='^/api/v1/admin/|^/metrics$' service_ops='^/internal/' websocket_ops='^/ws/'
    local endless='GET /api/chat/sessions/{id}/messages/stream'
    python3 - "$openapi_url" "$admin_ops" "$service_ops" "$endless" "$websocket_ops" "$stack_tmp/runs" "$report_dir/openapi.json" <<'PY' ||
import json, re, sys, urllib.error, urllib.request
url, admin_ops, service_ops, endless, websocket_ops, counts, copy = sys.argv[1:8]
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    with opener.open(url, timeout=30) as response:
        doc = json.load(response)
except urllib.error.HTTPError as error:
    sys.exit(f"GET {url}: {error.code} {error.read()[:300].decode(errors='replace')}")
with open(copy, "w") as out:
    json.dump(doc, out, indent=1)
verbs = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
operations = [f"{m.upper()} {p}" for p, item in doc.get("paths", {}).items() for m in item if m in verbs]
admin = [o for o in operations if re.search(admin_ops, o.split(" ", 1)[1])]
service = [o for o in operations if re.search(service_ops, o.split(" ", 1)[1])]
left_out = [o for o in operations if o == endless or re.search(websocket_ops, o.split(" ", 1)[1])]
user = len(operations) - len(admin) - len(service) - len(left_out)
with open(counts, "w") as out:
    out.write(f"user {user}\nadmin {len(admin)}\nservice {len(service)}\n")
print(f"    OpenAPI {doc.get('openapi')}: {len(operations)} operations: "
      f"{user} for the user run, "
      f"{len(admin)} for the admin run, {len(service)} for the service run, "
      f"{len(left_out)} left out ({', '.join(left_out) or 'none'})")
PY
        die "the gateway serves no OpenAPI document at $openapi_url"

    local status=0 run_status results=() run operations
    while read -r -u 3 run operations; do
        if ((operations == 0)); then
            results+=("$run run: no operations")
            continue
        fi
        run_status=0
        case $run in
            user) schemathesis_run user "Authorization: Bearer $user_token" \
                --exclude-path-regex "$admin_ops|$service_ops|$websocket_ops" --exclude-name "$endless" "$@" ;;
            admin) schemathesis_run admin "Authorization: Bearer $admin_token" \
                --include-path-regex "$admin_ops" "$@" ;;
            service) schemathesis_run service "X-Service-Token: $service_token" \
                --include-path-regex "$service_ops" "$@" ;;
        esac || run_status=$?
        results+=("$run run $([[ $run_status == 0 ]] && echo passed || echo "FAILED (exit $run_status)")")
        ((status != 0)) || status=$run_status
    done 3<"$stack_tmp/runs"

    if ((status != 0)); then
        stack_show_logs
    fi
    say "reports (JUnit, NDJSON events, findings): $report_dir"
    local joined
    joined=$(printf '%s, ' "${results[@]}")
    printf '\n######## API contract test: %s ########\n' "${joined%, }"
    return "$status"
}

main "$@"

#!/usr/bin/env bash
# infra/bench/gateway.sh — the latency the gateway adds in front of
# chat-service, against nginx's proxy_pass in front of the same chat-service,
# on this machine, with the same client.
#
# Upstream: the real chat-service (SQLite in a temporary directory), its math
# demo agent and llm-proxy-service's builtin model at zero delays. Three
# paths to it, as one user logged in once through the gateway:
#   direct   client → chat-service /chat/conversations…, `Authorization:
#            Bearer <access token>` (chat-service verifies it against the
#            gateway's JWKS);
#   gateway  client → gateway /api/v1/conversations… → chat-service (the
#            gateway verifies the token and injects the identity with the
#            service token: chat-service then verifies no JWT);
#   nginx    client → nginx /api/v1/conversations… → chat-service: `location
#            /api/v1/conversations { proxy_pass http://chat/chat/conversations; }`,
#            the Authorization header forwarded as it is, HTTP/1.1 keep-alive
#            to chat-service (`upstream` with `keepalive`, `proxy_http_version
#            1.1`, `Connection ""`), `proxy_buffering off` (SSE passes event by
#            event), no access log (the gateway logs at warn, so per request
#            nothing either), keep-alive limits raised on both sides so neither
#            connection is ever closed during the run (nginx's default closes a
#            connection after 1,000 requests; the gateway and chat-service
#            have no such limit).
# Two workloads, each on all three paths (infra/bench/gateway_latency.py: one
# synchronous httpx client per path with one kept-alive connection,
# sequential requests, WARMUP unmeasured iterations then N measured; every
# iteration sends one request per path, in every order in turn, arranged so
# each path follows each other path as often, across iterations too):
#   json   POST …/conversations {"title":"bench"} (201): time to the full
#          response;
#   sse    POST …/conversations/{id}/messages/stream with a short message the
#          model echoes: time to the first event and to the stream's end; a
#          new conversation every PER_CONVERSATION turns (per path) so the
#          history chat-service sends the agent stays short.
# Per workload and path: count, errors, p50/p90/p99/max/mean; then "added by
# gateway" and "added by nginx", p50(path) - p50(direct) and likewise p99
# (with the median of the per-iteration differences as a check on noise), and
# the ratio gateway/nginx of the added p50 against the target <= TARGET (1.5).
# Per workload also the CPU time the gateway and nginx (master and workers)
# spent per measured request (their threads' time on a CPU over the
# measured iterations, the conversations created meanwhile included): the
# proxies share the two CPUs with chat-service, the agent, the model and the
# client, so what a proxy spends is taken from the turn it forwards (where
# it spends it matters too: infra/bench/hops.py splits the time by hop).
# Errors (not 201/200, a broken or failed stream) are counted and their kinds
# printed, never left out silently.
#
# Decisions:
# - nginx is Debian's package, pinned to NGINX_VERSION (the bookworm-security
#   candidate when this was written; `apt-cache policy nginx` shows the
#   current one). Missing, it is installed with apt-get (root only). Where
#   /usr/sbin/policy-rc.d forbids starting services (Docker images, this
#   machine) the package's own nginx does not start; elsewhere it starts on
#   :80 as a system service, which this script leaves alone. Installed in
#   another version, the script warns on stderr and in
#   the header and measures that one: the comparison is still nginx against
#   the gateway on this machine, only not the pinned build.
# - nginx runs as a child of this script (`daemon off`, master + workers)
#   under its own prefix in the temporary directory (configuration, pid, error
#   log, temp paths); common.sh's trap stops it with the services.
# - worker_processes auto: one per CPU, as the gateway's default (workers =
#   0, one actix worker per core). The client is sequential, so one worker of
#   each does the work and the count only matters for fairness on paper.
# - The gateway runs with its built-in defaults apart from ports, database
#   and its per-user limit on chat POSTs (rate_limits.chat_posts_per_minute,
#   60 by default, which a benchmark sending hundreds a second would hit):
#   raised to CHAT_POSTS_PER_MINUTE, 10^9, not turned off (0), so the
#   limiter's check stays in the measured path as in production. The
#   benchmark logs in once (login is limited per IP too).
# - Fairness caveat: on the direct and nginx paths chat-service verifies the
#   JWT (Ed25519); on the gateway path the gateway does, and chat-service
#   trusts the service token instead. "Added by gateway" is thus the
#   gateway's whole cost minus one JWT verification saved downstream.
#
#   infra/bench/gateway.sh                    N = 2,000 per workload and path
#   N=200 WARMUP=20 infra/bench/gateway.sh
#   WORKLOADS=json infra/bench/gateway.sh     only one workload (json, sse)
#   PER_CONVERSATION=50                       SSE turns per conversation
#   TARGET=1.5                                largest gateway/nginx ratio
#   WORKERS=1                                 the gateway's workers and nginx's
#                                             worker_processes (default: one
#                                             per CPU for both)
#   NGINX_VERSION=1.22.1-9+deb12u11           the Debian version to install
#   SAMPLES=/tmp/gateway.json                 keep every request's timings
#   GATEWAY_FORM=1                            a fourth path: straight to
#                                             chat-service in the request form
#                                             the gateway sends (its service
#                                             token, identity, _auth, request
#                                             id, traceparent), to show what
#                                             that form costs chat-service
#
# Exit status: 1 when any request failed, 2 when a ratio missed the target,
# else 0. Builds llm-proxy-service, demo-agents, chat-service and gateway
# (release, into the workspace's target/), starts them on free 127.0.0.1
# ports, logging at warn, and stops them at the end. Needs python3 (with
# venv), curl, and apt-get (or nginx already installed); the client's venv
# (httpx, pinned) is created in target/bench-venv when missing.
set -euo pipefail

N=${N:-2000}
WARMUP=${WARMUP:-100}
WORKLOADS=${WORKLOADS:-json sse}
PER_CONVERSATION=${PER_CONVERSATION:-50}
TARGET=${TARGET:-1.5}
NGINX_VERSION=${NGINX_VERSION:-1.22.1-9+deb12u11}
CHAT_POSTS_PER_MINUTE=${CHAT_POSTS_PER_MINUTE:-1000000000}
WORKERS=${WORKERS:-}
SAMPLES=${SAMPLES:-}
GATEWAY_FORM=${GATEWAY_FORM:-}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bench_name=gateway
# shellcheck source=infra/bench/common.sh
. "$repo/infra/bench/common.sh"

# --- tools --------------------------------------------------------------------------
installed_nginx() { { dpkg-query -W -f='${Status} ${Version}' nginx 2>/dev/null || true; } | sed -n 's/^install ok installed //p'; }
nginx_version=$(installed_nginx)
if [[ -z "$nginx_version" ]]; then
    if [[ $EUID -ne 0 ]]; then
        echo "bench: nginx is not installed; as root: apt-get install nginx=$NGINX_VERSION" >&2
        exit 1
    fi
    echo "==> installing nginx=$NGINX_VERSION (Debian)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "nginx=$NGINX_VERSION" >"$work/apt.log" 2>&1 || {
        cat "$work/apt.log" >&2
        echo "bench: could not install nginx=$NGINX_VERSION; 'apt-cache policy nginx' lists the versions there are (NGINX_VERSION=…)" >&2
        exit 1
    }
    nginx_version=$(installed_nginx)
fi
nginx_note=""
if [[ "$nginx_version" != "$NGINX_VERSION" ]]; then
    nginx_note=" (NOT the pinned $NGINX_VERSION)"
    echo "bench: WARNING: nginx $nginx_version is installed, not the pinned $NGINX_VERSION; measuring it anyway" >&2
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

ensure_client_venv

build_services llm-proxy-service demo-agents chat-service gateway

# --- the services ---------------------------------------------------------------------
# The gateway's port first: chat-service verifies user tokens against its keys.
gateway_port=$(free_port)
start_chat_stack 0 0 "http://127.0.0.1:$gateway_port/.well-known/jwks.json"

start gateway "PORT=$gateway_port" "DATABASE_URL=$work/gateway/gateway.db" \
    "CONFAB__UPSTREAMS__CHAT=http://127.0.0.1:$chat_port" \
    "CONFAB__UPSTREAMS__LLM_PROXY=http://127.0.0.1:$proxy_port" \
    "CONFAB__RATE_LIMITS__CHAT_POSTS_PER_MINUTE=$CHAT_POSTS_PER_MINUTE" \
    ${WORKERS:+"CONFAB__SERVER__WORKERS=$WORKERS"}
wait_for "http://127.0.0.1:$gateway_port/ready" "$started_pid" "$work/gateway.log"
gateway_pid=$started_pid
# The services run on their default configuration; GATEWAY_FORM's path
# presents chat-service's default service token, as the gateway does.
service_token=$(sed -n 's/^service_token = "\(.*\)"$/\1/p' "$repo/services/chat-service/config/default.toml")

# nginx: everything under its own prefix; `user` only matters as root (the
# workers would otherwise become nobody, shut out of the 0700 $work).
nginx_port=$(free_port)
nginx_dir=$work/nginx
mkdir -p "$nginx_dir/logs" "$nginx_dir/temp"
nginx_user=""
[[ $EUID -eq 0 ]] && nginx_user="user root root;"
cat >"$nginx_dir/nginx.conf" <<EOF
$nginx_user
# One worker per CPU, as the gateway's default (one actix worker per core).
worker_processes ${WORKERS:-auto};
pid $nginx_dir/nginx.pid;
error_log $nginx_dir/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $nginx_dir/temp/client_body;
    proxy_temp_path $nginx_dir/temp/proxy;
    fastcgi_temp_path $nginx_dir/temp/fastcgi;
    uwsgi_temp_path $nginx_dir/temp/uwsgi;
    scgi_temp_path $nginx_dir/temp/scgi;
    # Never close the client's kept-alive connection during the run (the
    # default closes it after 1,000 requests).
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    # As the gateway's limits.body_bytes.
    client_max_body_size 1m;
    upstream chat {
        server 127.0.0.1:$chat_port;
        keepalive 16;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$nginx_port;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_buffering off;
        location /api/v1/conversations {
            proxy_pass http://chat/chat/conversations;
        }
        location = /ready {
            proxy_pass http://chat/ready;
        }
    }
}
EOF
"$nginx_bin" -t -q -p "$nginx_dir/" -e "$nginx_dir/logs/error.log" -c nginx.conf
(cd "$nginx_dir" && exec "$nginx_bin" -p "$nginx_dir/" -e "$nginx_dir/logs/error.log" -c nginx.conf -g 'daemon off;' >"$work/nginx.log" 2>&1 </dev/null) &
pids+=($!)
nginx_pid=$!
wait_for "http://127.0.0.1:$nginx_port/ready" "$nginx_pid" "$nginx_dir/logs/error.log"
# Its workers, for the CPU they use per request (the master only waits).
nginx_workers=$({ tr -s ' ' ',' <"/proc/$nginx_pid/task/$nginx_pid/children"; } 2>/dev/null | sed 's/,$//' || true)

# --- measure --------------------------------------------------------------------------
echo
echo "commit $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$repo" diff --quiet HEAD -- services crates 2>/dev/null || echo ' (services or crates modified)'), $(nproc) CPUs, release build, SQLite, logs at warn, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "nginx $nginx_version$nginx_note ($("$nginx_bin" -v 2>&1 | sed 's/^nginx version: //'), worker_processes ${WORKERS:-auto}) on :$nginx_port; gateway (workers ${WORKERS:-default, one per CPU}) on :$gateway_port; chat-service on :$chat_port; agent math on :$math_port; builtin model at zero delays"
status=0
PYTHONDONTWRITEBYTECODE=1 "$venv/bin/python" "$repo/infra/bench/gateway_latency.py" \
    --gateway-url "http://127.0.0.1:$gateway_port" \
    --chat-url "http://127.0.0.1:$chat_port" \
    --nginx-url "http://127.0.0.1:$nginx_port" \
    --n "$N" --warmup "$WARMUP" --workloads "$WORKLOADS" \
    --per-conversation "$PER_CONVERSATION" --target "$TARGET" \
    --cpu "gateway=$gateway_pid" --cpu "nginx=$nginx_pid${nginx_workers:+,$nginx_workers}" \
    ${GATEWAY_FORM:+--gateway-form "$service_token"} \
    ${SAMPLES:+--samples "$SAMPLES"} || status=$?
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine adds noise to every path alike, not bias)"

for log in llm-proxy-service.log demo-agents.log chat-service.log gateway.log nginx.log nginx/logs/error.log; do
    if [[ -s "$work/$log" ]]; then
        echo "$log: $(wc -l <"$work/$log") lines at warn or above; the last:" >&2
        tail -n 3 "$work/$log" >&2
    fi
done
exit "$status"

#!/usr/bin/env bash
# start-dev.sh — build and run the whole Confab stack locally (DESIGN.md §12).
#
#   ./start-dev.sh              debug build, then start every service
#   ./start-dev.sh --release    release build (target/release)
#
# With no configuration at all every service uses its embedded defaults: SQLite
# under ./data/<service>.db, the builtin LLM and the localhost ports below. No
# database server is needed, so this works on a fresh clone.
#
# Services started (entry point first):
#   gateway            http://127.0.0.1:9050   public entry point (API, WebSockets, console)
#   chat-service       http://127.0.0.1:8003   internal
#   llm-proxy-service  http://127.0.0.1:8006   internal
#   dashboard-proxy    http://127.0.0.1:8091   internal
#   demo-agents        http://127.0.0.1:8101   math agent (text 8102, tree 8103)
#
# Logs go to ./data/logs/<service>.log (overwritten on each start, NO_COLOR=1).
# Ctrl-C (or TERM) stops every process this script started, and only those.
#
# Environment:
#   GATEWAY_DATABASE_URL     passed to gateway as DATABASE_URL when set
#   CHAT_DATABASE_URL        passed to chat-service as DATABASE_URL when set
#   LLM_PROXY_DATABASE_URL   passed to llm-proxy-service as DATABASE_URL when set
#       e.g. postgres://confab:confab@127.0.0.1:5432/chat_db (see init-db.sql).
#       A plain DATABASE_URL or PORT in your shell is NOT passed on: one value
#       cannot be right for five services.
#   CONFAB__SECTION__KEY, RUST_LOG, OTEL_EXPORTER_OTLP_ENDPOINT
#       passed through unchanged to every service.
#   CONFAB__ENV              development unless set: the services then accept
#       the development secrets of their defaults (every service refuses them
#       otherwise). Set CONFAB__ENV=production with secrets of your own to try
#       the stack as it runs in production.
#   START_DEV_CONFIG_DIR=DIR a service with a file DIR/<service>.toml (e.g.
#       DIR/chat-service.toml) is started with CONFAB_CONFIG set to it: its
#       own settings over the defaults, e.g. one more agent for chat-service
#       only, where a CONFAB__AGENTS__… variable would reach demo-agents too
#   START_DEV_NO_BUILD=1     skip `cargo build` and use the binaries already built
#   START_DEV_BIN_DIR=DIR    take the binaries from DIR instead of
#                            ${CARGO_TARGET_DIR:-target}/<profile>
#   START_DEV_INSTANCES=N    run N instances (1-9, default 1) of chat-service
#       and of llm-proxy-service, on ports 8003, 8013, 8023, … and 8006, 8016,
#       8026, … (logs <service>-<i>.log); the gateway gets all of them
#       (CONFAB__UPSTREAMS__CHAT and …__LLM_PROXY, which override those of
#       your shell) and takes them in turn. The instances meet on the bus
#       and share one database, so N > 1 requires both (DESIGN §15):
#         CONFAB__BUS__URL=nats://…   an in-process bus cannot join
#             processes (each instance would allow its own turn of a
#             conversation and miss the others' cancels and trace events);
#             give it as this variable, not in a START_DEV_CONFIG_DIR file
#         CHAT_DATABASE_URL and LLM_PROXY_DATABASE_URL = postgres://…
#             several instances run on PostgreSQL (the combination CI
#             tests); two processes on one SQLite file would queue every
#             write behind its file lock
#       e.g. START_DEV_INSTANCES=2 CONFAB__BUS__URL=nats://127.0.0.1:4222 \
#            CHAT_DATABASE_URL=postgres://confab:confab@127.0.0.1:5432/chat_db \
#            LLM_PROXY_DATABASE_URL=postgres://confab:confab@127.0.0.1:5432/llm_proxy_db \
#            ./start-dev.sh
#       The first instance of each starts alone and the others once it is
#       ready: it runs the migrations, which two instances starting on a
#       fresh database would both try at once. One gateway, one
#       dashboard-proxy and one demo-agents still run; the agents call
#       llm-proxy-service's first instance (demo-agents has one [llm]
#       base_url for all its agents), and a /ws/trace on any instance sees
#       those calls through the bus.
#   START_DEV_READY_TIMEOUT  seconds to wait for each /ready (default 60)
#   START_DEV_STOP_TIMEOUT   seconds a service may take to stop after SIGTERM
#                            before it is killed (default 35: the services
#                            drain for up to 30 s, server.shutdown_timeout_secs)
set -euo pipefail

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
}

profile=debug
for arg in "$@"; do
    case "$arg" in
        --release) profile=release ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            echo "start-dev.sh: unknown argument '$arg' (try --help)" >&2
            exit 2
            ;;
    esac
done

cd "$(dirname "${BASH_SOURCE[0]}")"
root=$PWD

ready_timeout=${START_DEV_READY_TIMEOUT:-60}
stop_timeout=${START_DEV_STOP_TIMEOUT:-35}
bin_dir=${START_DEV_BIN_DIR:-${CARGO_TARGET_DIR:-target}/$profile}
data_dir=$root/data
log_dir=$data_dir/logs

# demo-agents' further agents: checked for /health after start-up and listed
# when they answer; their absence is not an error.
optional_agent_ports=(8102 8103)

die() {
    echo "start-dev.sh: $*" >&2
    exit 1
}

command -v curl >/dev/null 2>&1 || die "curl is required (apt-get install curl)"

# --- instances --------------------------------------------------------------
instances_count=${START_DEV_INSTANCES:-1}
# At most 9: the tenth chat-service would take 8093, the eleventh 8103, a
# demo agent's port.
[[ "$instances_count" =~ ^[1-9]$ ]] ||
    die "START_DEV_INSTANCES must be a number from 1 to 9, not '$instances_count'"
if ((instances_count > 1)); then
    [[ -n "${CONFAB__BUS__URL:-}" ]] ||
        die "START_DEV_INSTANCES=$instances_count needs CONFAB__BUS__URL=nats://… (e.g. nats://127.0.0.1:4222, a nats-server started with -js): without it every instance has a bus of its own in its process, and instances that cannot reach each other would each run a turn of the same conversation and miss each other's cancels and trace events"
    for db_var in CHAT_DATABASE_URL LLM_PROXY_DATABASE_URL; do
        [[ "${!db_var:-}" =~ ^postgres(ql)?:// ]] ||
            die "START_DEV_INSTANCES=$instances_count needs $db_var=postgres://… (one PostgreSQL database the instances share; see --help): several instances are run on PostgreSQL, not on one SQLite file"
    done
fi

# What to start, in start order, as name:binary:port:wave. The port is the one
# whose /ready we wait for. Every instance of a wave starts, then the script
# waits for all of them to be ready before the next wave: a service's first
# instance runs its migrations alone (wave 1), its other instances follow
# (wave 2). With one instance each, the name is the binary's.
instances=()
chat_urls=()
llm_proxy_urls=()
add_instances() {
    local binary=$1 first_port=$2 i name port wave
    for ((i = 1; i <= instances_count; i++)); do
        name=$binary
        ((instances_count > 1)) && name=$binary-$i
        port=$((first_port + 10 * (i - 1)))
        wave=1
        ((i > 1)) && wave=2
        instances+=("$name:$binary:$port:$wave")
    done
}
instances+=(gateway:gateway:9050:1)
add_instances chat-service 8003
add_instances llm-proxy-service 8006
instances+=(dashboard-proxy:dashboard-proxy:8091:1 demo-agents:demo-agents:8101:1)
for ((i = 0; i < instances_count; i++)); do
    chat_urls+=("http://127.0.0.1:$((8003 + 10 * i))")
    llm_proxy_urls+=("http://127.0.0.1:$((8006 + 10 * i))")
done

# --- build ------------------------------------------------------------------
if [[ "${START_DEV_NO_BUILD:-}" == 1 ]]; then
    echo "==> START_DEV_NO_BUILD=1: skipping the build, using $bin_dir"
else
    command -v cargo >/dev/null 2>&1 || die "cargo not found (install Rust with rustup)"
    build_args=(build --workspace --bins)
    [[ "$profile" == release ]] && build_args+=(--release)
    echo "==> cargo ${build_args[*]}"
    cargo "${build_args[@]}"
fi

for entry in "${instances[@]}"; do
    IFS=: read -r _ binary _ _ <<<"$entry"
    [[ -x "$bin_dir/$binary" ]] || die "binary $bin_dir/$binary not found or not executable (build first, or unset START_DEV_NO_BUILD)"
done

# --- ports ------------------------------------------------------------------
# True when something listens on 127.0.0.1:$1 (or on any address, per ss).
port_in_use() {
    local port=$1
    if command -v ss >/dev/null 2>&1 && [[ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]]; then
        return 0
    fi
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

busy=()
for entry in "${instances[@]}"; do
    IFS=: read -r name _ port _ <<<"$entry"
    port_in_use "$port" && busy+=("$port ($name)")
done
if ((${#busy[@]} > 0)); then
    echo "start-dev.sh: these ports are already in use:" >&2
    printf '  %s\n' "${busy[@]}" >&2
    echo "Stop whatever holds them (e.g. an earlier start-dev.sh: 'ss -ltnp' shows the process) and retry." >&2
    exit 1
fi
for port in "${optional_agent_ports[@]}"; do
    if port_in_use "$port"; then
        echo "start-dev.sh: warning: port $port (a demo agent) is already in use" >&2
    fi
done

# --- start ------------------------------------------------------------------
mkdir -p "$data_dir" "$log_dir"

# The defaults carry development secrets, which every service refuses unless
# it runs in development (DESIGN §5).
export CONFAB__ENV=${CONFAB__ENV:-development}
if [[ "$CONFAB__ENV" == development ]]; then
    echo "==> CONFAB__ENV=development: the services accept the development secrets of their defaults; do not expose them"
fi

declare -A pid_of=()
pids=()
stopping=0

# Stop every child this script started: TERM first so services shut down
# gracefully (finish turns, flush queued writes), KILL whatever is left after
# $stop_timeout seconds.
cleanup() {
    local status=$?
    ((stopping)) && return
    stopping=1
    trap - INT TERM HUP
    local alive=()
    local pid
    for pid in "${pids[@]}"; do
        kill -0 "$pid" 2>/dev/null && alive+=("$pid")
    done
    if ((${#alive[@]} > 0)); then
        echo
        echo "==> stopping ${#alive[@]} service(s)"
        kill -TERM "${alive[@]}" 2>/dev/null || true
        local deadline=$((SECONDS + stop_timeout))
        for pid in "${alive[@]}"; do
            while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
                sleep 0.2
            done
            if kill -0 "$pid" 2>/dev/null; then
                echo "    pid $pid did not stop in time, killing it" >&2
                kill -KILL "$pid" 2>/dev/null || true
            fi
            wait "$pid" 2>/dev/null || true
        done
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# Name of the variable holding a service's DATABASE_URL ("" for services
# without a database). Unset or empty means the embedded SQLite default.
database_url_var_for() {
    case "$1" in
        gateway) echo GATEWAY_DATABASE_URL ;;
        chat-service) echo CHAT_DATABASE_URL ;;
        llm-proxy-service) echo LLM_PROXY_DATABASE_URL ;;
        *) echo "" ;;
    esac
}

# Each service runs in its own session (setsid) so that Ctrl-C in the terminal
# reaches only this script, which then sends every service one SIGTERM: one
# graceful shutdown instead of a SIGINT and a SIGTERM racing each other.
# (setsid does not fork here, so $! is the service's own pid.)
launcher=()
command -v setsid >/dev/null 2>&1 && launcher=(setsid)

if [[ -n "${DATABASE_URL:-}" || -n "${PORT:-}" ]]; then
    echo "start-dev.sh: note: DATABASE_URL/PORT from your shell are not passed on; use GATEWAY_DATABASE_URL, CHAT_DATABASE_URL, LLM_PROXY_DATABASE_URL" >&2
fi

if ((instances_count > 1)); then
    for var in CONFAB__UPSTREAMS__CHAT CONFAB__UPSTREAMS__LLM_PROXY; do
        if [[ -n "${!var:-}" ]]; then
            echo "start-dev.sh: note: $var from your shell is not passed on; the gateway is pointed at the instances started here" >&2
        fi
    done
fi

# Starts one instance (an entry of $instances) in the background.
start_instance() {
    local name binary port
    IFS=: read -r name binary port _ <<<"$1"
    local log=$log_dir/$name.log
    # Logs go to files: no ANSI colour codes in them.
    local env_args=(-u DATABASE_URL -u PORT "NO_COLOR=${NO_COLOR:-1}")
    local db_var db_url="" config=""
    db_var=$(database_url_var_for "$binary")
    [[ -n "$db_var" ]] && db_url=${!db_var:-}
    [[ -n "$db_url" ]] && env_args+=("DATABASE_URL=$db_url")
    if [[ -n "${START_DEV_CONFIG_DIR:-}" && -f "$START_DEV_CONFIG_DIR/$binary.toml" ]]; then
        config=$(cd "$START_DEV_CONFIG_DIR" && pwd)/$binary.toml
        env_args+=("CONFAB_CONFIG=$config")
    fi
    if ((instances_count > 1)); then
        case "$binary" in
            chat-service | llm-proxy-service) env_args+=("PORT=$port") ;;
            gateway)
                # Comma-separated: the gateway's form of several instances.
                env_args+=("CONFAB__UPSTREAMS__CHAT=$(IFS=,; echo "${chat_urls[*]}")"
                    "CONFAB__UPSTREAMS__LLM_PROXY=$(IFS=,; echo "${llm_proxy_urls[*]}")")
                ;;
        esac
    fi
    # Runs from the repo root so ./data and infra/llm-fixtures resolve.
    "${launcher[@]}" env "${env_args[@]}" "$bin_dir/$binary" >"$log" 2>&1 </dev/null &
    pid_of[$name]=$!
    pids+=("$!")
    local details="pid $!"
    [[ "$name" != "$binary" ]] && details+=", port $port"
    [[ -n "$db_url" ]] && details+=", DATABASE_URL from $db_var"
    [[ -n "$config" ]] && details+=", settings from $config"
    echo "==> started $name ($details), log $log"
}

fail_with_log() {
    local name=$1 reason=$2
    echo "start-dev.sh: $name $reason" >&2
    echo "---- last 40 lines of $log_dir/$name.log ----" >&2
    tail -n 40 "$log_dir/$name.log" >&2 || true
    echo "----" >&2
    exit 1
}

# Waits for one instance's /ready; stops everything if it exits or is late.
wait_ready() {
    local name port
    IFS=: read -r name _ port _ <<<"$1"
    local url=http://127.0.0.1:$port/ready
    local deadline=$((SECONDS + ready_timeout))
    printf '==> waiting for %s (%s) ' "$name" "$url"
    until curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
        if ! kill -0 "${pid_of[$name]}" 2>/dev/null; then
            echo
            fail_with_log "$name" "exited before it became ready"
        fi
        if ((SECONDS >= deadline)); then
            echo
            fail_with_log "$name" "was not ready on $url within ${ready_timeout}s"
        fi
        printf '.'
        sleep 0.5
    done
    echo ' ready'
}

# --- start, then wait for /ready, wave by wave -----------------------------
for wave in 1 2; do
    wave_instances=()
    for entry in "${instances[@]}"; do
        if [[ "${entry##*:}" == "$wave" ]]; then
            wave_instances+=("$entry")
        fi
    done
    # (bash before 4.4 calls an empty array unbound under set -u)
    ((${#wave_instances[@]} > 0)) || continue
    for entry in "${wave_instances[@]}"; do
        start_instance "$entry"
    done
    for entry in "${wave_instances[@]}"; do
        wait_ready "$entry"
    done
done

extra_agents=()
for port in "${optional_agent_ports[@]}"; do
    if curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$port/health" 2>/dev/null; then
        extra_agents+=("http://127.0.0.1:$port")
    fi
done

# One line per instance after the gateway, names padded to one column.
width=18
for entry in "${instances[@]}"; do
    name=${entry%%:*}
    ((${#name} > width)) && width=${#name}
done
internal=""
label="  Internal:     "
for entry in "${instances[@]}"; do
    IFS=: read -r name binary port _ <<<"$entry"
    [[ "$binary" == gateway ]] && continue
    line=$(printf '%s%-*s http://127.0.0.1:%s' "$label" "$width" "$name" "$port")
    [[ "$binary" == demo-agents ]] && line+=" (math)${extra_agents[*]:+ ${extra_agents[*]}}"
    internal+=$line$'\n'
    label="                "
done

cat <<EOF

Confab is running.

  Entry point:  $(printf '%-*s' "$width" gateway) http://127.0.0.1:9050

$internal
  Logs:         $log_dir/
  Data:         $data_dir/

Press Ctrl-C to stop.
EOF

# Block until Ctrl-C. If a service dies on its own, say which and stop the rest.
while true; do
    status=0
    if ((BASH_VERSINFO[0] > 4 || (BASH_VERSINFO[0] == 4 && BASH_VERSINFO[1] >= 3))); then
        wait -n || status=$?
    else
        wait || status=$?
    fi
    for entry in "${instances[@]}"; do
        name=${entry%%:*}
        if ! kill -0 "${pid_of[$name]}" 2>/dev/null; then
            fail_with_log "$name" "stopped unexpectedly (exit status $status)"
        fi
    done
done

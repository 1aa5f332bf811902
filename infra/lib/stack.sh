# shellcheck shell=bash
# infra/lib/stack.sh — the plumbing the suites under infra/ share: a Python
# venv of pinned packages, the services built and started on free ports
# with fresh databases, and everything stopped again however the run ends.
# Sourced, never run:
#
#   repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
#   stack_name=telemetry                   # messages, stamp, temporary dir
#   stack_python_dir=$repo/infra/telemetry # its requirements.txt + constraints.txt
#   stack_venv=${TELEMETRY_VENV:-$repo/target/telemetry-venv}
#   stack_ready_timeout=30 stack_stop_timeout=35 stack_keep_tmp=0
#   . "$repo/infra/lib/stack.sh"
#   stack_traps                            # clean up on exit, however it happens
#   stack_ensure_venv pytest               # (packages whose versions are shown)
#   stack_build gateway chat-service       # cargo build --bins -p ... (debug)
#   stack_make_tmp
#   stack_start_service gateway "$(stack_free_port)" CONFAB__X=y
#   echo "$stack_url"
#
# Functions:
#   say MESSAGE / die MESSAGE         a progress line / an error, exit 1
#   stack_traps                       EXIT: stack_cleanup; INT/TERM/HUP exit
#                                     130/143/129 (so EXIT runs)
#   stack_ensure_venv [PKG...]        the venv with requirements.txt installed
#                                     (-c constraints.txt), reused while both
#                                     files and the Python are unchanged
#                                     (a stamp); python3 and python3-venv
#                                     installed with apt-get when missing (root)
#   stack_build PKG...                cargo build --bins -p PKG...; sets
#                                     stack_bin_dir (target/debug);
#                                     stack_no_build=1: the binaries already
#                                     there, as they are
#   stack_make_tmp                    a temporary directory: stack_tmp
#   stack_free_port                   prints a port free on 127.0.0.1 now
#   stack_http_ok URL                 true when GET URL answers 2xx
#   stack_start_service LABEL PORT [ENV=VALUE...]
#                                     target/debug/NAME (LABEL is NAME or
#                                     NAME@INSTANCE) on 127.0.0.1:PORT (a free
#                                     one when PORT is empty) in its own
#                                     directory under stack_tmp, with a fresh
#                                     database, a clean environment plus
#                                     stack_service_env and ENV=VALUE, its log
#                                     in stack_tmp/LABEL.log; waits for /ready;
#                                     sets stack_url. stack_no_database=1 in
#                                     its environment: no database.
#   stack_remember NAME PID [LOG]     remembers a process started otherwise:
#                                     stopped on exit (and its log shown on a
#                                     failure)
#   stack_track NAME PID LOG URL      remembers a process started otherwise
#                                     (stopped on exit, its log shown on a
#                                     failure) and waits for URL/ready
#   stack_stop_all                    TERM, then KILL after stack_stop_timeout,
#                                     each process this script started (and
#                                     only those), the newest first
#   stack_show_logs                   every log, or its first 10 and last 40
#                                     lines (to stderr, after a failure)
#   stack_cleanup                     stops everything, drops the PostgreSQL
#                                     databases, removes stack_tmp (unless
#                                     stack_keep_tmp=1)
#
# Databases: a SQLite file in the service's directory; when the runner sets
# stack_postgres_from_env=1 and CONFAB_TEST_DATABASE_URL names a PostgreSQL
# server (an admin URL, as for the Rust tests), a new database there per
# service instead, dropped on exit.
#
# The services never see the caller's configuration: CONFAB_*, OTEL_*,
# DATABASE_URL and PORT are removed from their environment, and
# CONFAB__ENV=development lets them start on their development secrets,
# which the suites rely on.

: "${stack_name:?set stack_name before sourcing infra/lib/stack.sh}"
: "${stack_ready_timeout:=30}"
: "${stack_stop_timeout:=35}"
: "${stack_keep_tmp:=0}"
: "${stack_postgres_from_env:=0}"
: "${stack_no_build:=0}"

stack_tmp=""
stack_bin_dir=""
stack_url=""
stack_names=()
stack_pids=()
stack_logs=()
stack_pg_databases=()
# ENV=VALUE added to every service stack_start_service starts.
stack_service_env=()

say() {
    printf '==> %s\n' "$*"
}

die() {
    echo "$stack_name/run.sh: $*" >&2
    exit 1
}

# --- clean-up -------------------------------------------------------------------

stack_stop_all() {
    local i pid name deadline
    for ((i = ${#stack_pids[@]} - 1; i >= 0; i--)); do
        pid=${stack_pids[$i]}
        name=${stack_names[$i]}
        if kill -0 "$pid" 2>/dev/null; then
            say "stopping $name (pid $pid)"
            kill -TERM "$pid" 2>/dev/null || true
            deadline=$((SECONDS + stack_stop_timeout))
            while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
                sleep 0.1
            done
            if kill -0 "$pid" 2>/dev/null; then
                echo "$stack_name/run.sh: $name (pid $pid) did not stop within ${stack_stop_timeout}s, killing it" >&2
                kill -KILL "$pid" 2>/dev/null || true
            fi
        fi
        wait "$pid" 2>/dev/null || true
    done
    stack_pids=()
    stack_names=()
}

stack_drop_databases() {
    local db
    for db in "${stack_pg_databases[@]}"; do
        psql -q -X "$CONFAB_TEST_DATABASE_URL" -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
    done
    stack_pg_databases=()
}

stack_cleanup() {
    local status=$?
    trap - INT TERM HUP
    stack_stop_all
    stack_drop_databases
    if [[ -n "$stack_tmp" && -d "$stack_tmp" ]]; then
        if [[ "$stack_keep_tmp" == 1 ]]; then
            say "keeping $stack_tmp"
        else
            rm -rf "$stack_tmp"
        fi
    fi
    exit "$status"
}

stack_traps() {
    trap stack_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP
}

# A start-up error comes first in a log, before any backtrace: hence the
# head as well as the tail of a long one.
stack_show_logs() {
    local log lines
    for log in "${stack_logs[@]}"; do
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
    ((${#stack_logs[@]} == 0)) || echo "----" >&2
}

# --- Python ---------------------------------------------------------------------

stack_apt_install() {
    ((EUID == 0)) || return 1
    command -v apt-get >/dev/null 2>&1 || return 1
    apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

stack_ensure_venv() {
    local venv=${stack_venv:?set stack_venv} dir=${stack_python_dir:?set stack_python_dir}
    if ! command -v python3 >/dev/null 2>&1; then
        say "python3 not found: installing python3 and python3-venv"
        stack_apt_install python3 python3-venv || die "python3 not found and could not be installed (needs root and apt-get)"
    fi
    if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
        say "creating the venv $venv ($(python3 --version 2>&1))"
        rm -rf "$venv"
        mkdir -p "$(dirname "$venv")"
        if ! python3 -m venv "$venv"; then
            # Debian's python3 needs python3-venv (ensurepip) for this; a
            # failed attempt leaves a venv without pip behind.
            rm -rf "$venv"
            say "python3 -m venv failed: installing python3-venv"
            stack_apt_install python3-venv ||
                die "python3 -m venv failed and python3-venv could not be installed (needs root and apt-get)"
            python3 -m venv "$venv" || die "python3 -m venv $venv failed"
        fi
    fi
    local stamp=$venv/.confab-$stack_name-stamp want
    want=$(cat "$dir/requirements.txt" "$dir/constraints.txt" <("$venv/bin/python" -VV) | sha256sum | cut -d' ' -f1)
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        say "venv up to date: $venv"
    else
        say "installing ${dir#"$repo"/}/requirements.txt into $venv"
        rm -f "$stamp"
        "$venv/bin/python" -m pip install --disable-pip-version-check --no-input -q \
            -r "$dir/requirements.txt" -c "$dir/constraints.txt"
        echo "$want" >"$stamp"
    fi
    if (($# > 0)); then
        "$venv/bin/python" - "$@" <<'PY'
import importlib.metadata as m, sys
print("    " + ", ".join(f"{p} {m.version(p)}" for p in sys.argv[1:]))
PY
    fi
}

# --- services -------------------------------------------------------------------

stack_build() {
    if ! command -v cargo >/dev/null 2>&1 && [[ -f "${HOME:-/root}/.cargo/env" ]]; then
        # shellcheck source=/dev/null
        . "${HOME:-/root}/.cargo/env"
    fi
    command -v cargo >/dev/null 2>&1 || die "cargo not found: put the Rust toolchain on PATH"
    local target_dir=${CARGO_TARGET_DIR:-$repo/target}
    [[ "$target_dir" == /* ]] || target_dir=$repo/$target_dir
    stack_bin_dir=$target_dir/debug
    if [[ "$stack_no_build" == 1 ]]; then
        say "not building: the binaries in $stack_bin_dir as they are"
        return
    fi
    local packages=() package
    for package in "$@"; do
        packages+=(-p "$package")
    done
    say "cargo build --bins ${packages[*]}"
    (cd "$repo" && cargo build --bins "${packages[@]}")
}

stack_make_tmp() {
    stack_tmp=$(mktemp -d "${TMPDIR:-/tmp}/confab-$stack_name.XXXXXX")
    say "temporary directory: $stack_tmp"
    # The services are on 127.0.0.1: never through an HTTP proxy.
    export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
    export no_proxy=$NO_PROXY
    # No __pycache__ or .pytest_cache in the work tree.
    export PYTHONDONTWRITEBYTECODE=1
}

# The kernel's pick: nobody listens there right now.
stack_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# No proxy: the URL is on 127.0.0.1.
stack_http_ok() {
    python3 - "$1" <<'PY' 2>/dev/null
import sys, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    with opener.open(sys.argv[1], timeout=2) as r:
        sys.exit(0 if 200 <= r.status < 300 else 1)
except Exception:
    sys.exit(1)
PY
}

stack_remember() {
    stack_names+=("$1")
    stack_pids+=("$2")
    [[ -z "${3:-}" ]] || stack_logs+=("$3")
}

stack_track() {
    local name=$1 pid=$2 log=$3 url=$4
    stack_remember "$name" "$pid" "$log"
    local deadline=$((SECONDS + stack_ready_timeout))
    until stack_http_ok "$url/ready"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            stack_show_logs
            die "$name exited before it became ready"
        fi
        if ((SECONDS >= deadline)); then
            stack_show_logs
            die "$name was not ready on $url/ready within ${stack_ready_timeout}s"
        fi
        sleep 0.2
    done
    say "$name ready on $url"
}

# Sets stack_database (a variable, not output: a $(…) subshell would lose
# the list of databases to drop).
stack_database=""
stack_fresh_database() {
    local slug=$1 dir=$2
    local admin=${CONFAB_TEST_DATABASE_URL:-}
    if [[ "$stack_postgres_from_env" != 1 || -z "$admin" ]]; then
        stack_database="$dir/$slug.db"
        return
    fi
    command -v psql >/dev/null 2>&1 || die "CONFAB_TEST_DATABASE_URL is set but psql is not installed"
    local db
    db="confab_${stack_name}_${slug//-/_}_$(date +%s)_$$"
    psql -q -X -v ON_ERROR_STOP=1 "$admin" -c "CREATE DATABASE \"$db\"" >/dev/null
    stack_pg_databases+=("$db")
    stack_database="${admin%/*}/$db"
}

stack_start_service() {
    local label=$1 port=$2
    shift 2
    local name=${label%@*} slug=${label//@/-}
    local bin=$stack_bin_dir/$name
    [[ -x "$bin" ]] || die "$bin not found or not executable"
    [[ -n "$stack_tmp" ]] || die "stack_start_service before stack_make_tmp"
    [[ -n "$port" ]] || port=$(stack_free_port)
    local dir=$stack_tmp/$slug log=$stack_tmp/$slug.log
    mkdir -p "$dir"
    if [[ "${stack_no_database:-0}" == 1 ]]; then
        stack_database=""
    else
        stack_fresh_database "$slug" "$dir"
    fi
    local env_args=(-u DATABASE_URL -u PORT) var_name
    while IFS= read -r var_name; do
        env_args+=(-u "$var_name")
    done < <(compgen -e | grep -E '^(CONFAB_|OTEL_)' || true)
    env_args+=("PORT=$port" "CONFAB__SERVER__HOST=127.0.0.1" "CONFAB__ENV=development" "NO_COLOR=1")
    [[ -z "$stack_database" ]] || env_args+=("DATABASE_URL=$stack_database")
    env_args+=("${stack_service_env[@]}" "$@")
    # In its own directory so nothing lands in the repo's ./data; in this
    # script's process group, so a signal to the whole group (a CI timeout)
    # reaches it too. The subshell execs env, which execs the binary: $! is
    # the service's own pid.
    (cd "$dir" && exec env "${env_args[@]}" "$bin" >"$log" 2>&1 </dev/null) &
    local pid=$!
    # The database without its credentials, when it is a PostgreSQL URL.
    local shown=${stack_database##*@}
    say "started $label (pid $pid) on 127.0.0.1:$port with ${shown:-no database}, log $log"
    stack_url=http://127.0.0.1:$port
    stack_track "$label" "$pid" "$log" "$stack_url"
}

# shellcheck shell=bash disable=SC2154,SC2034 # sourced: bench_name comes from the caller, started_pid goes to it
# infra/bench/common.sh — what the benchmarks that start Confab's own
# services share (sourced by a2a.sh and chat.sh, not run on its own).
#
# Before sourcing, the script sets `repo` and `bench_name`. Afterwards it has:
#   target, venv, work       the cargo target dir, the client's venv
#                            (target/bench-venv), a temporary directory
#   free_port                a free TCP port on 127.0.0.1
#   start NAME ENV=VALUE...  target/release/NAME in its own directory under
#                            $work, logging at warn, none of the caller's
#                            Confab settings; its pid in $started_pid
#   wait_for URL PID LOG     until URL answers, or the log if it never does
#   ensure_client_venv       the venv with the pinned httpx client packages
# and an EXIT trap that stops (TERM) only what `start` started and removes
# $work.

# httpx and everything it pulls in, as `pip freeze` lists them (Python 3.11).
CLIENT_PACKAGES="httpx==0.28.1 httpcore==1.0.9 h11==0.16.0 anyio==4.16.0 idna==3.20 certifi==2026.10.18 typing_extensions==4.16.0"

target=${CARGO_TARGET_DIR:-$repo/target}
[[ "$target" == /* ]] || target=$repo/$target
venv=$target/bench-venv
work=$(mktemp -d "/tmp/confab-bench-$bench_name.XXXXXX")
pids=()
started_pid=""

# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    # TERM (graceful stop) to what this script started, nothing else.
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

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
    local env_args=(-u DATABASE_URL -u PORT) var
    while IFS= read -r var; do env_args+=(-u "$var"); done < <(compgen -e | grep '^CONFAB_' || true)
    (cd "$dir" && exec env "${env_args[@]}" RUST_LOG=warn NO_COLOR=1 "$@" "$target/release/$name" >"$work/$name.log" 2>&1 </dev/null) &
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

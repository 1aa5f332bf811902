#!/usr/bin/env bash
# infra/ci.sh — the whole CI run; `.ci/run` calls it (DESIGN.md §12).
#
# Meant for a fresh Debian bookworm machine, run as root (apt-get is used for
# missing tools), with the machine's Rust toolchain already installed. Steps:
#   1. tools: cargo (required), rustfmt + clippy, curl, python3 + pip
#   2. every compose file (docker-compose.dev.yml, the observability overlay)
#      against the vendored Compose Specification JSON schema, and Confab's
#      rules for them: settings, ports and build args the binaries read
#      (infra/check-compose.sh)
#   3. cargo fmt --all -- --check
#   4. cargo clippy --workspace --all-targets -- -D warnings
#   5. cargo test --workspace                      (embedded SQLite backend)
#   6. cargo test --workspace with CONFAB_TEST_DATABASE_URL set (PostgreSQL):
#      the server on 127.0.0.1:5432 when it answers as a `postgres` user that may
#      create databases, otherwise a throwaway cluster this script starts on a
#      free port (55432 upward) and removes again
#      Step 6 also sets CONFAB_TEST_NATS_URL: the tests' services meet on NATS
#      JetStream (the embedded bus is step 5's), and the bus tests and the
#      tests of several instances run there: the server on 127.0.0.1:4222
#      when it answers with JetStream, otherwise a throwaway `nats-server -js`
#      (Debian's package, installed when missing) on a free port (54222
#      upward), removed again
#   7. interoperability suites: infra/interop/run.sh when it exists
#   8. the web console's browser suite on SQLite: infra/browser/run.sh (Debian's
#      Chromium, installed with apt-get when missing, driven by Playwright)
#   9. the trace test: infra/telemetry/run.sh (one turn through the real
#      binaries, exported over OTLP/HTTP to a receiver that decodes it with
#      the pinned opentelemetry-proto, checked to be one trace across every
#      service with the GenAI attributes)
#  10. the API contract: infra/schemathesis/run.sh (the pinned schemathesis
#      generates valid and invalid requests for every operation of the
#      gateway's GET /api/v1/openapi.json and sends them to the real
#      gateway and services, as a user and as an administrator: no 5xx,
#      every response as documented, none slower than 5 s)
# Any failure stops the run with a non-zero exit and names the failing step.
#
# Environment:
#   CONFAB_TEST_DATABASE_URL=postgres://...  use this admin URL for step 6
#                                            instead of looking for a server
#   CI_FORCE_THROWAWAY_PG=1                  skip the server on :5432 and always
#                                            start a throwaway cluster
#   CONFAB_TEST_NATS_URL=nats://...          the NATS server of step 6
#   CI_FORCE_THROWAWAY_NATS=1                always start a throwaway NATS
#
# The file can be sourced (`source infra/ci.sh`) to call one function alone,
# e.g. `with_test_postgres psql "$CONFAB_TEST_DATABASE_URL" -c 'select 1'`;
# nothing runs then until main is called.
set -euo pipefail

# --- helpers ------------------------------------------------------------------

current_step="start-up"
step_started=$SECONDS

step() {
    step_done
    current_step=$1
    step_started=$SECONDS
    printf '\n==== %s ====\n' "$current_step"
}

step_done() {
    if [[ "$current_step" != "start-up" ]]; then
        printf -- '---- %s: done in %ss\n' "$current_step" "$((SECONDS - step_started))"
    fi
}

die() {
    echo "ci.sh: $*" >&2
    exit 1
}

# Run a command as root: directly when we are root, else through sudo.
as_root() {
    if ((EUID == 0)); then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "'$*' needs root and sudo is not available"
    fi
}

apt_updated=0
apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install $* by hand"
    # Explicit returns: callers may run this where `set -e` is suspended.
    if ((apt_updated == 0)); then
        as_root apt-get update -qq || return 1
        apt_updated=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "$@" || return 1
}

# --- step 1: tools --------------------------------------------------------------

ensure_tools() {
    if ! command -v cargo >/dev/null 2>&1 && [[ -f "${HOME:-/root}/.cargo/env" ]]; then
        # shellcheck source=/dev/null
        . "${HOME:-/root}/.cargo/env"
    fi
    command -v cargo >/dev/null 2>&1 ||
        die "cargo not found: CI uses the machine's Rust toolchain (rustup); put cargo on PATH"
    cargo --version
    rustc --version

    local component
    for component in rustfmt clippy; do
        local sub=${component/rustfmt/fmt}
        if ! cargo "$sub" --version >/dev/null 2>&1; then
            echo "cargo $sub missing: rustup component add $component"
            rustup component add "$component"
        fi
        cargo "$sub" --version
    done

    local packages=()
    command -v curl >/dev/null 2>&1 || packages+=(curl)
    if ! command -v python3 >/dev/null 2>&1; then
        packages+=(python3 python3-pip python3-venv)
    else
        python3 -m pip --version >/dev/null 2>&1 || packages+=(python3-pip)
        # Debian's python3 needs python3-venv for `python3 -m venv` (PEP 668
        # makes a venv the way to pip-install the interop suites' packages).
        python3 -c 'import ensurepip' >/dev/null 2>&1 || packages+=(python3-venv)
    fi
    if ((${#packages[@]} > 0)); then
        echo "installing: ${packages[*]}"
        apt_install "${packages[@]}"
    fi
    curl --version | sed -n 1p
    python3 --version
    python3 -m pip --version
}

# --- step 6: PostgreSQL -----------------------------------------------------------

# Set while this script runs its own cluster; pg_cleanup stops and removes it.
pg_dir=""
pg_bin=""
pg_port=""
policy_rc_added=0

# The bin directory of the newest PostgreSQL with initdb, or nothing.
find_pg_bin() {
    local initdb
    initdb=$(printf '%s\n' /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)
    if [[ -x "$initdb" ]]; then
        dirname "$initdb"
    fi
}

# True when a server on 127.0.0.1:5432 lets user postgres in without a password
# and may create databases (the test helpers create one per test).
existing_pg_usable() {
    command -v pg_isready >/dev/null 2>&1 || return 1
    command -v psql >/dev/null 2>&1 || return 1
    pg_isready -q -h 127.0.0.1 -p 5432 -t 5 || return 1
    local can_create
    can_create=$(PGCONNECT_TIMEOUT=5 psql -w -X -q -h 127.0.0.1 -p 5432 -U postgres -d postgres \
        -tAc 'select rolsuper or rolcreatedb from pg_roles where rolname = current_user' \
        2>/dev/null) || return 1
    [[ "$can_create" == t ]]
}

# True when nothing listens on 127.0.0.1:$1.
port_free() {
    if command -v ss >/dev/null 2>&1 && [[ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]]; then
        return 1
    fi
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Install Debian's package $1 without letting it start its service (its
# PostgreSQL "main" cluster, its nats-server): a policy-rc.d that denies
# service starts for the duration.
apt_install_unstarted() {
    local policy=/usr/sbin/policy-rc.d
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\n# added by confab infra/ci.sh during apt-get install\nexit 101\n' |
            as_root tee "$policy" >/dev/null
        as_root chmod 755 "$policy"
        policy_rc_added=1
    fi
    local status=0
    apt_install "$1" || status=$?
    remove_policy_rc
    return "$status"
}

install_postgresql_package() {
    echo "initdb not found under /usr/lib/postgresql/*/bin: installing Debian's postgresql"
    apt_install_unstarted postgresql
}

remove_policy_rc() {
    if ((policy_rc_added)); then
        as_root rm -f /usr/sbin/policy-rc.d
        policy_rc_added=0
    fi
}

# Run a PostgreSQL tool as the cluster's owner: root may not run initdb or
# postgres, so as root use the `postgres` OS user. Runs inside the cluster dir
# so the tools never try to read root's working directory.
pg_as_owner() {
    if ((EUID == 0)); then
        (cd "$pg_dir" && runuser -u postgres -- "$@")
    else
        (cd "$pg_dir" && "$@")
    fi
}

start_throwaway_pg() {
    pg_bin=$(find_pg_bin)
    if [[ -z "$pg_bin" ]]; then
        install_postgresql_package
        pg_bin=$(find_pg_bin)
        [[ -n "$pg_bin" ]] || die "postgresql installed but no initdb under /usr/lib/postgresql/*/bin"
    fi
    if ((EUID == 0)); then
        command -v runuser >/dev/null 2>&1 || die "runuser not found (util-linux)"
        id postgres >/dev/null 2>&1 || die "no 'postgres' OS user to own the cluster"
    fi

    local port=55432
    until port_free "$port"; do
        port=$((port + 1))
        ((port < 55532)) || die "no free port in 55432-55531 for a throwaway PostgreSQL"
    done

    # Under /tmp, not $TMPDIR: the server's socket path must stay short.
    pg_dir=$(mktemp -d /tmp/confab-ci-pg.XXXXXX)
    chmod 700 "$pg_dir"
    if ((EUID == 0)); then
        chown postgres: "$pg_dir"
    fi
    echo "starting a throwaway PostgreSQL ($pg_bin) in $pg_dir on 127.0.0.1:$port"

    # UTF8 explicitly: with no locale set initdb would pick SQL_ASCII.
    if ! pg_as_owner "$pg_bin/initdb" -D "$pg_dir/data" -A trust -U postgres \
        -E UTF8 --locale=C --no-sync >"$pg_dir/initdb.log" 2>&1; then
        cat "$pg_dir/initdb.log" >&2
        die "initdb failed"
    fi
    # Durability is not needed for a cluster that lives for one test run.
    if ! pg_as_owner "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w -t 60 \
        -o "-p $port -k $pg_dir -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >/dev/null; then
        cat "$pg_dir/server.log" >&2 || true
        die "pg_ctl start failed"
    fi
    pg_port=$port
    "$pg_bin/psql" -w -X -q -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -tAc 'select version()'
}

# Stop and delete the throwaway cluster, if this script started one. Safe to
# call more than once; never touches a server it did not start.
pg_cleanup() {
    remove_policy_rc
    [[ -n "$pg_dir" ]] || return 0
    if [[ -f "$pg_dir/data/postmaster.pid" ]]; then
        echo "stopping the throwaway PostgreSQL on 127.0.0.1:$pg_port"
        pg_as_owner "$pg_bin/pg_ctl" -D "$pg_dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
    fi
    rm -rf "$pg_dir"
    pg_dir=""
    pg_port=""
}

# Run "$@" with CONFAB_TEST_DATABASE_URL pointing at an admin PostgreSQL URL;
# a throwaway cluster started for it is stopped again afterwards.
with_test_postgres() {
    local url
    if [[ -n "${preset_test_db_url:-}" ]]; then
        url=$preset_test_db_url
        echo "using CONFAB_TEST_DATABASE_URL from the environment"
    elif [[ "${CI_FORCE_THROWAWAY_PG:-}" != 1 ]] && existing_pg_usable; then
        url=postgres://postgres@127.0.0.1:5432/postgres
        echo "using the PostgreSQL server on 127.0.0.1:5432"
    else
        if [[ "${CI_FORCE_THROWAWAY_PG:-}" == 1 ]]; then
            echo "CI_FORCE_THROWAWAY_PG=1: not using a server on 127.0.0.1:5432"
        else
            echo "no usable PostgreSQL on 127.0.0.1:5432 (as user postgres, able to create databases)"
        fi
        start_throwaway_pg
        url=postgres://postgres@127.0.0.1:$pg_port/postgres
    fi
    echo "CONFAB_TEST_DATABASE_URL=$url"
    local status=0
    CONFAB_TEST_DATABASE_URL=$url "$@" || status=$?
    pg_cleanup
    return "$status"
}

# --- NATS JetStream for the bus tests (DESIGN §15) --------------------------------

nats_dir=""
nats_pid=""
nats_port=""

# Whether a NATS server with JetStream answers on 127.0.0.1:$1: its INFO line
# says so.
nats_with_jetstream() {
    local info
    info=$(timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 && IFS= read -r line <&3 && echo \"\$line\"" 2>/dev/null) || return 1
    [[ "$info" == INFO*'"jetstream":true'* ]]
}

start_throwaway_nats() {
    if ! command -v nats-server >/dev/null 2>&1; then
        echo "nats-server not found: installing Debian's nats-server (its service is not started)"
        apt_install_unstarted nats-server || die "installing nats-server failed"
    fi
    local port=54222
    until port_free "$port"; do
        port=$((port + 1))
        ((port < 54322)) || die "no free port in 54222-54321 for a throwaway NATS"
    done
    nats_dir=$(mktemp -d /tmp/confab-ci-nats.XXXXXX)
    echo "starting a throwaway NATS with JetStream in $nats_dir on 127.0.0.1:$port"
    nats-server -a 127.0.0.1 -p "$port" -js -sd "$nats_dir" >"$nats_dir/server.log" 2>&1 &
    nats_pid=$!
    local tries=0
    until nats_with_jetstream "$port"; do
        tries=$((tries + 1))
        if ((tries > 100)) || ! kill -0 "$nats_pid" 2>/dev/null; then
            cat "$nats_dir/server.log" >&2 || true
            die "the throwaway NATS did not start"
        fi
        sleep 0.1
    done
    nats_port=$port
}

# Stop and delete the throwaway NATS, if this script started one.
nats_cleanup() {
    if [[ -n "$nats_pid" ]]; then
        echo "stopping the throwaway NATS on 127.0.0.1:$nats_port"
        kill "$nats_pid" 2>/dev/null || true
        wait "$nats_pid" 2>/dev/null || true
    fi
    [[ -z "$nats_dir" ]] || rm -rf "$nats_dir"
    nats_dir=""
    nats_pid=""
    nats_port=""
}

# Run "$@" with CONFAB_TEST_NATS_URL naming a NATS server with JetStream: the
# one on 127.0.0.1:4222 when it answers with JetStream, else a throwaway one
# started for it and stopped afterwards.
with_test_nats() {
    local url
    if [[ -n "${preset_test_nats_url:-}" ]]; then
        url=$preset_test_nats_url
        echo "using CONFAB_TEST_NATS_URL from the environment"
    elif [[ "${CI_FORCE_THROWAWAY_NATS:-}" != 1 ]] && nats_with_jetstream 4222; then
        url=nats://127.0.0.1:4222
        echo "using the NATS server with JetStream on 127.0.0.1:4222"
    else
        echo "no NATS with JetStream on 127.0.0.1:4222 (or CI_FORCE_THROWAWAY_NATS=1)"
        start_throwaway_nats
        url=nats://127.0.0.1:$nats_port
    fi
    echo "CONFAB_TEST_NATS_URL=$url"
    local status=0
    CONFAB_TEST_NATS_URL=$url "$@" || status=$?
    nats_cleanup
    return "$status"
}

# --- step 7: interoperability suites --------------------------------------------

# Suites against third-party clients and servers (DESIGN.md §13) live in
# infra/interop/run.sh, which installs its own pinned packages.
interop_suites() {
    if [[ -f infra/interop/run.sh ]]; then
        echo "--- on SQLite"
        bash infra/interop/run.sh
        echo "--- on PostgreSQL"
        with_test_postgres bash infra/interop/run.sh
    else
        echo "no interoperability suites yet (infra/interop/run.sh does not exist)"
    fi
}

# --- main -------------------------------------------------------------------------

on_exit() {
    local status=$?
    trap - INT TERM
    pg_cleanup
    nats_cleanup
    if ((status == 0)); then
        step_done
        printf '\n==== CI passed ====\n'
    else
        printf '\n==== CI FAILED (exit %s) in step: %s ====\n' "$status" "$current_step" >&2
    fi
    exit "$status"
}

main() {
    cd "$(dirname "${BASH_SOURCE[0]}")/.."

    export CARGO_TERM_COLOR=never
    export CARGO_INCREMENTAL=0
    # The SQLite run must not inherit a PostgreSQL URL; step 6 uses it explicitly.
    preset_test_db_url=${CONFAB_TEST_DATABASE_URL:-}
    preset_test_nats_url=${CONFAB_TEST_NATS_URL:-}
    unset CONFAB_TEST_DATABASE_URL DATABASE_URL CONFAB_TEST_NATS_URL

    trap on_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    echo "Confab CI in $PWD ($(uname -sm), $(date -u '+%Y-%m-%d %H:%M:%S UTC'))"

    step "1/10 tools"
    ensure_tools

    step "2/10 the compose files against the Compose Specification and the binaries (infra/check-compose.sh)"
    bash infra/check-compose.sh

    step "3/10 cargo fmt --all -- --check"
    cargo fmt --all -- --check

    step "4/10 cargo clippy --workspace --all-targets -- -D warnings"
    cargo clippy --workspace --all-targets -- -D warnings

    step "5/10 cargo test --workspace (SQLite, the bus in-process)"
    cargo test --workspace

    step "6/10 cargo test --workspace (PostgreSQL, the bus on NATS JetStream)"
    with_test_postgres with_test_nats cargo test --workspace

    step "7/10 interoperability suites"
    interop_suites

    step "8/10 the web console in Chromium (infra/browser/run.sh, SQLite)"
    bash infra/browser/run.sh

    step "9/10 one trace from the browser to the model (infra/telemetry/run.sh)"
    bash infra/telemetry/run.sh

    step "10/10 the API contract: schemathesis against /api/v1/openapi.json (infra/schemathesis/run.sh)"
    bash infra/schemathesis/run.sh
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    main "$@"
fi

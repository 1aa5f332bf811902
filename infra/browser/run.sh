#!/usr/bin/env bash
# infra/browser/run.sh — the web console's browser suite (issue 17, DESIGN §13):
# Debian's Chromium, driven by Playwright, against the real binaries started
# the way ./start-dev.sh starts them. A step of infra/ci.sh; also runs alone:
#
#   bash infra/browser/run.sh [PYTEST_ARGS...]      e.g. -k chat -x
#
# What it does:
#   1. checks for Debian's Chromium at $BROWSER_CHROMIUM (default
#      /usr/bin/chromium); installs the `chromium` package with apt-get when it
#      is missing and this runs as root (no browser is ever downloaded)
#   2. a Python venv with requirements.txt (every transitive package pinned in
#      constraints.txt); reused while those two files are unchanged
#   3. cargo build --workspace --bins (debug profile), unless BROWSER_NO_BUILD=1
#   4. ./start-dev.sh with START_DEV_NO_BUILD=1, every service on its usual
#      port, each SQLite database in a fresh temporary directory, and:
#        - the builtin model slowed to BROWSER_CHUNK_DELAY_MS (default 25) per
#          chunk, so a reply is still streaming when a test stops or reloads;
#        - the gateway taking the client IP from X-Forwarded-For, so each test
#          is its own client for the per-IP login and register limits (the
#          browser contexts send a unique X-Forwarded-For; conftest.py);
#        - chat-service with one more agent, `offline`, on a port nothing
#          listens on, so a turn is retried and fails for real
#          (START_DEV_CONFIG_DIR with a chat-service.toml)
#        - the gateway with an administrator, `browseradmin`, and a random
#          password made for this run (START_DEV_CONFIG_DIR with a
#          gateway.toml, `[admin]`), which pytest gets as
#          BROWSER_ADMIN_USERNAME and BROWSER_ADMIN_PASSWORD
#        - the gateway allowing 3 API keys per user (`[limits]
#          api_keys_per_user`), so the keys screen's refusal of one more is
#          reached in a few clicks
#   5. pytest -q infra/browser with CONSOLE_URL (the gateway), DASHBOARD_URL,
#      BROWSER_CHROMIUM, BROWSER_SCREENSHOTS and the administrator's
#      BROWSER_ADMIN_USERNAME / BROWSER_ADMIN_PASSWORD in the environment
#   6. on exit, however it happens: stops the stack (start-dev.sh stops what it
#      started) and removes the temporary directory
# The exit status is pytest's (or 1 when setting up failed).
#
# Screenshots of the main screens are written to $BROWSER_SCREENSHOTS
# (default <repo>/target/browser-screenshots).
#
# Environment:
#   BROWSER_VENV=DIR          the venv (default: <repo>/target/browser-venv)
#   BROWSER_CHROMIUM=PATH     the Chromium binary (default /usr/bin/chromium)
#   BROWSER_NO_BUILD=1        use the binaries already built
#   BROWSER_CHUNK_DELAY_MS=N  the builtin model's delay between chunks
#   BROWSER_KEEP_TMP=1        keep the temporary directory (logs, databases)
# The fixed ports of ./start-dev.sh (9050, 8003, 8006, 8091, 8101-8103) must be
# free.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
here=$repo/infra/browser
venv=${BROWSER_VENV:-$repo/target/browser-venv}
chromium=${BROWSER_CHROMIUM:-/usr/bin/chromium}
screenshots=${BROWSER_SCREENSHOTS:-$repo/target/browser-screenshots}

say() {
    printf '==> %s\n' "$*"
}

die() {
    echo "browser/run.sh: $*" >&2
    exit 1
}

apt_install() {
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
    else
        return 1
    fi
}

tmp=""
stack_pid=""

cleanup() {
    local status=$?
    trap - INT TERM HUP
    if [[ -n "$stack_pid" ]] && kill -0 "$stack_pid" 2>/dev/null; then
        say "stopping the stack (start-dev.sh, pid $stack_pid)"
        # start-dev.sh stops every service it started on TERM.
        kill -TERM "$stack_pid" 2>/dev/null || true
        wait "$stack_pid" 2>/dev/null || true
    fi
    if [[ -n "$tmp" && -d "$tmp" ]]; then
        if [[ "${BROWSER_KEEP_TMP:-}" == 1 ]]; then
            say "BROWSER_KEEP_TMP=1: keeping $tmp"
        else
            rm -rf "$tmp"
        fi
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# --- 1. Chromium ------------------------------------------------------------------
if [[ ! -x "$chromium" ]]; then
    say "$chromium not found: installing Debian's chromium"
    apt_install chromium || die "$chromium not found and chromium could not be installed (as root: apt-get install chromium)"
fi
say "browser: $("$chromium" --version 2>/dev/null | head -n1)"

# --- 2. venv ----------------------------------------------------------------------
command -v python3 >/dev/null 2>&1 || die "python3 not found (apt-get install python3 python3-venv)"
if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
    say "creating the venv $venv ($(python3 --version 2>&1))"
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    if ! python3 -m venv "$venv"; then
        rm -rf "$venv"
        apt_install python3-venv || die "python3 -m venv failed and python3-venv could not be installed"
        python3 -m venv "$venv" || die "python3 -m venv $venv failed"
    fi
fi
stamp=$venv/.confab-browser-stamp
want=$(cat "$here/requirements.txt" "$here/constraints.txt" <("$venv/bin/python" -VV) | sha256sum | cut -d' ' -f1)
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    say "venv up to date: $venv"
else
    say "installing infra/browser/requirements.txt into $venv"
    "$venv/bin/pip" install -q --disable-pip-version-check \
        -r "$here/requirements.txt" -c "$here/constraints.txt"
    echo "$want" >"$stamp"
fi

# --- 3. build ---------------------------------------------------------------------
if [[ "${BROWSER_NO_BUILD:-}" != 1 ]]; then
    say "cargo build --workspace --bins"
    (cd "$repo" && cargo build --workspace --bins)
fi

# --- 4. the stack -----------------------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/confab-browser.XXXXXX")
mkdir -p "$screenshots" "$tmp/config"
# A port that was free a moment ago: nothing will answer for this agent.
offline_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$tmp/config/chat-service.toml" <<TOML
[agents.offline]
url = "http://127.0.0.1:$offline_port/"
TOML
# The administration screens' tests sign in as this admin. The password is
# this run's alone and its file lives (and goes) with the temporary directory.
admin_username=browseradmin
admin_password=$(python3 -c 'import secrets; print("adm-" + secrets.token_hex(12))')
cat >"$tmp/config/gateway.toml" <<TOML
[admin]
username = "$admin_username"
password = "$admin_password"

[limits]
api_keys_per_user = 3
TOML
say "starting the stack (./start-dev.sh), databases and logs in $tmp"
(
    cd "$repo"
    START_DEV_NO_BUILD=1 \
        START_DEV_CONFIG_DIR="$tmp/config" \
        GATEWAY_DATABASE_URL="sqlite://$tmp/gateway.db" \
        CHAT_DATABASE_URL="sqlite://$tmp/chat.db" \
        LLM_PROXY_DATABASE_URL="sqlite://$tmp/llm_proxy.db" \
        CONFAB__PROVIDERS__BUILTIN__CHUNK_DELAY_MS="${BROWSER_CHUNK_DELAY_MS:-25}" \
        CONFAB__RATE_LIMITS__TRUST_FORWARDED_FOR=true \
        exec ./start-dev.sh
) >"$tmp/start-dev.log" 2>&1 &
stack_pid=$!

# start-dev.sh prints its URLs once every service answers /ready.
deadline=$((SECONDS + 120))
until grep -q "^Confab is running" "$tmp/start-dev.log" 2>/dev/null; do
    if ! kill -0 "$stack_pid" 2>/dev/null; then
        cat "$tmp/start-dev.log" >&2
        die "./start-dev.sh stopped before the stack was ready"
    fi
    ((SECONDS < deadline)) || {
        cat "$tmp/start-dev.log" >&2
        die "the stack was not ready within 120 s"
    }
    sleep 0.5
done
say "stack ready"

# --- 5. the suite -----------------------------------------------------------------
status=0
CONSOLE_URL=http://127.0.0.1:9050 \
    DASHBOARD_URL=http://127.0.0.1:8091 \
    BROWSER_CHROMIUM="$chromium" \
    BROWSER_SCREENSHOTS="$screenshots" \
    BROWSER_ADMIN_USERNAME="$admin_username" \
    BROWSER_ADMIN_PASSWORD="$admin_password" \
    "$venv/bin/python" -m pytest -q -p no:cacheprovider "$here" "$@" || status=$?
if ((status != 0)); then
    for log in "$repo"/data/logs/*.log; do
        [[ -f "$log" ]] || continue
        echo "---- last 30 lines of $log ----" >&2
        tail -n 30 "$log" >&2 || true
    done
fi
say "screenshots in $screenshots"
exit "$status"

#!/usr/bin/env bash
# The service benchmarks (llm-proxy.sh, a2a.sh, gateway.sh, chat.sh) at two
# revisions, side by side on this machine: each benchmark runs at the before
# revision and then at the after one, before the next benchmark starts, so
# the two runs of one benchmark share the machine's state as far as it can
# be shared. Each side runs in its own checkout with its own release target
# dir, and both run the AFTER side's benchmark scripts (copied over the
# before side's infra/bench/), so a fix to a script measures both sides
# alike. Nothing is asserted; read the figures side by side, as ratios.
#
# usage: infra/bench/compare.sh [BEFORE] [AFTER]   (default issue18-base HEAD)
#   BEFORE, AFTER: a revision (checked out in a new worktree) or the folder of
#   a checkout already built (used as it is, so its target dir is reused;
#   as BEFORE, its infra/bench/ is overwritten)
#   BENCHES="a2a chat"                      which benchmarks (default: all four)
#   BEFORE_TARGET=… AFTER_TARGET=…          release target dirs to reuse
#                                           (default: fresh ones under /tmp)
# Each benchmark takes its usual settings from the environment (TURNS, N, NS,
# RATES, DURATION, …), the same for both sides.
set -euo pipefail

before=${1:-issue18-base}
after=${2:-HEAD}
benches=${BENCHES:-llm-proxy a2a gateway chat}
root=$(git rev-parse --show-toplevel)
work=$(mktemp -d /tmp/confab-bench-compare.XXXXXX)
target_before=${BEFORE_TARGET:-$work/target-before}
target_after=${AFTER_TARGET:-$work/target-after}

cleanup() {
    git -C "$root" worktree remove --force "$work/before" 2>/dev/null || true
    git -C "$root" worktree remove --force "$work/after" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

declare -A dir
for side in before after; do
    rev=${!side}
    if [[ -d $rev ]]; then
        dir[$side]=$(cd "$rev" && pwd)
    else
        git -C "$root" worktree add -q --detach "$work/$side" "$rev"
        dir[$side]=$work/$side
    fi
done

cp "${dir[after]}"/infra/bench/*.sh "${dir[after]}"/infra/bench/*.py "${dir[before]}/infra/bench/"

for bench in $benches; do
    for side in before after; do
        target=$target_before
        [[ $side == after ]] && target=$target_after
        echo "==> $bench, $side ($(git -C "${dir[$side]}" log --oneline -1 | cut -c1-60))"
        (cd "${dir[$side]}" && CARGO_TARGET_DIR=$target bash "infra/bench/$bench.sh") ||
            echo "==> $bench, $side: failed (status $?)"
    done
done

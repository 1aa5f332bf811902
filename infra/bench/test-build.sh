#!/usr/bin/env bash
# How long the workspace's tests take to build and run, at two revisions side
# by side on this machine, in one target dir (issue 18 point 6):
#   cold  `cargo test --workspace --no-run` after `cargo clean -p` of every
#         workspace package (third-party crates stay built: what a change to
#         protocol or kit costs)
#   warm  the same after touching one file of chat-service
#   run   `cargo test --workspace` with everything built
# and the number of test executables each revision links.
#
# usage: infra/bench/test-build.sh [BEFORE_REV] [AFTER_REV]   (default issue18-base HEAD)
# Debug builds, as the tests use; nothing is asserted. Run it on a quiet machine.
set -euo pipefail

before=${1:-issue18-base}
after=${2:-HEAD}
root=$(git rev-parse --show-toplevel)
work=$(mktemp -d /tmp/confab-test-build.XXXXXX)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$work/target}

cleanup() {
    git -C "$root" worktree remove --force "$work/before" 2>/dev/null || true
    git -C "$root" worktree remove --force "$work/after" 2>/dev/null || true
    if [[ $CARGO_TARGET_DIR == "$work/target" ]]; then rm -rf "$work"; fi
}
trap cleanup EXIT

git -C "$root" worktree add -q --detach "$work/before" "$before"
git -C "$root" worktree add -q --detach "$work/after" "$after"

seconds() { # command…: its wall time in seconds
    local start end
    start=$(date +%s.%N)
    "$@" >/dev/null 2>&1 || echo "failed: $*" >&2
    end=$(date +%s.%N)
    python3 -c "print(f'{$end - $start:.1f}')"
}

packages() { # the workspace's own packages, one per line
    cargo metadata --no-deps --format-version 1 |
        python3 -c 'import json,sys; print("\n".join(p["name"] for p in json.load(sys.stdin)["packages"]))'
}

executables() { # test executables `cargo test --workspace` links
    cargo test --workspace --no-run 2>&1 | grep -c 'Executable tests/' || true
}

# Both revisions built once, so neither pays for third-party crates below.
for side in before after; do
    echo "==> priming $side ($(git -C "$work/$side" log --oneline -1))" >&2
    (cd "$work/$side" && cargo test --workspace --no-run -q >/dev/null 2>&1)
done

printf '%-8s %8s %8s %8s %12s\n' side cold_s warm_s run_s integration
for side in before after; do
    cd "$work/$side"
    for package in $(packages); do cargo clean -q -p "$package"; done
    cold=$(seconds cargo test --workspace --no-run)
    touch services/chat-service/src/lib.rs
    warm=$(seconds cargo test --workspace --no-run)
    run=$(seconds cargo test --workspace)
    printf '%-8s %8s %8s %8s %12s\n' "$side" "$cold" "$warm" "$run" "$(executables)"
done

#!/usr/bin/env bash
# infra/fuzz.sh — fuzzes every parser that reads client bytes for a fixed
# time: every `fuzz_…` test of the workspace (confab_kit::fuzz), each for
# SECONDS (default 60), with fresh random inputs round after round.
# `cargo test --workspace` (and so CI) runs one round of each.
#
#   infra/fuzz.sh [SECONDS] [FILTER]     e.g. infra/fuzz.sh 300 fuzz_tree
#
# PROPTEST_CASES sets the inputs per round (256). A failure prints the
# smallest failing input it found.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds=${1:-60}
filter=${2:-fuzz_}
echo "==> fuzzing every test matching '$filter' for ${seconds}s each"
CONFAB_FUZZ_SECONDS=$seconds cargo test --workspace -- "$filter"

#!/usr/bin/env bash
# infra/bench/turns.sh — streaming chat turns through the gateway, measured
# by the compiled load generator (infra/bench/loadgen, issue 20): per form,
# time to first event and to done, turns/s, errors, a read-back of every
# conversation, and each service's CPU per turn and per token and RSS per
# open turn, beside the client's own CPU.
#
#   infra/bench/turns.sh                 1,000 turns at once, forms sse openai ws
#   N=2000 WORDS=200 infra/bench/turns.sh
#   RATE=300 FORMS=sse infra/bench/turns.sh   a fixed arrival rate (turns/s)
#   CONCURRENCY=200 DURATION=20 infra/bench/turns.sh
#                                        saturation: 200 clients back to back
#   BASE=d57d24f infra/bench/turns.sh    the same runs against that commit's
#                                        build too, in turn, and the ratios
#   ROUNDS=3 …                           each run that many times, interleaved;
#                                        the medians compared
#   PROFILE=/tmp/prof infra/bench/turns.sh     and a perf profile per service
#                                              and form there, its top frames printed
#   PROFILE_CALLGRAPH=1 …                      the profiles with call graphs (DWARF)
#   SYSCALLS=/tmp/sys infra/bench/turns.sh    system calls counted per service
#                                              (strace -c -f), per token printed;
#                                              slows the services, so figures of
#                                              time and CPU from that run are not quoted
#   BENCH_ENV="CONFAB__SERVER__WORKERS=1" …     settings for every service
#   BASE=same HEAD_ENV="K=V …" …               a setting against none: head's
#                                              binaries on both sides, HEAD_ENV's
#                                              settings for head only
#
# Builds the services and the load generator (release, into the workspace's
# target/), starts llm-proxy-service (builtin model, CHUNK_DELAY_MS=20 between
# one-word chunks), demo-agents, chat-service and the gateway on free
# 127.0.0.1 ports with SQLite files in a temporary directory, the per-user
# limits lifted (one user runs every turn), and stops them at the end. A new
# stack for every run, so that runs do not inherit each other's databases.
#
# BASE: the commit's services are built once from `git archive` into
# target/base-target (a target dir of their own, so that the two builds do
# not undo each other) and kept in target/base/<commit>/.
set -euo pipefail

N=${N:-1000}
FORMS=${FORMS:-sse openai ws}
RATE=${RATE:-0}
WORDS=${WORDS:-50}
CHUNK_DELAY_MS=${CHUNK_DELAY_MS:-20}
CONCURRENCY=${CONCURRENCY:-0}
DURATION=${DURATION:-20}
ROUNDS=${ROUNDS:-1}
BASE=${BASE:-}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bench_name=turns
# shellcheck source=infra/bench/common.sh
. "$repo/infra/bench/common.sh"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
service_bins=(llm-proxy-service demo-agents chat-service gateway)

echo "==> building llm-proxy-service, demo-agents, chat-service, gateway and the load generator (release)"
(cd "$repo" && cargo build --release -q "${service_bins[@]/#/-p}" --bins)
(cd "$repo/infra/bench/loadgen" && CARGO_TARGET_DIR=$target cargo build --release -q)
head_bin=${HEAD_BIN:-$target/release}
head_label="$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$repo" diff --quiet HEAD 2>/dev/null || echo '+changes')"
variants=(head)
if [[ $BASE == same ]]; then
    base_rev=same
    base_bin=$head_bin
    variants=(base head)
elif [[ -n "$BASE" ]]; then
    base_rev=$(git -C "$repo" rev-parse --short "$BASE")
    base_bin=$target/base/$base_rev
    if [[ ! -x "$base_bin/gateway" ]]; then
        echo "==> building $base_rev (release) into $target/base-target"
        src=$work/base-src
        mkdir -p "$src" "$base_bin"
        git -C "$repo" archive "$base_rev" | tar -x -C "$src"
        (cd "$src" && CARGO_TARGET_DIR=$target/base-target cargo build --release -q "${service_bins[@]/#/-p}" --bins)
        for name in "${service_bins[@]}"; do cp "$target/base-target/release/$name" "$base_bin/"; done
    fi
    variants=(base head)
fi

# Starts the stack from the binaries in $bin; sets gateway_port, services.
start_stack() {
    gateway_port=$(free_port)
    start_chat_stack 0 "$CHUNK_DELAY_MS" "http://127.0.0.1:$gateway_port/.well-known/jwks.json"
    start_gateway
    services=(gateway "$gateway_pid" chat-service "$chat_pid" demo-agents "$agents_pid" llm-proxy-service "$proxy_pid")
}

# One run of the load generator against the running stack, profiled when
# PROFILE is set; its summary line appended to $work/summaries.
run_form() {
    local form=$1 label=$2 perfs=() straces=() i perf_args=(-F 499)
    [[ -n "${PROFILE_CALLGRAPH:-}" ]] && perf_args=(-F 199 --call-graph dwarf,16384)
    if [[ -n "${PROFILE:-}" ]]; then
        mkdir -p "$PROFILE"
        for ((i = 0; i < ${#services[@]}; i += 2)); do
            perf record -q "${perf_args[@]}" -o "$PROFILE/$label-$form-${services[i]}.data" -p "${services[i + 1]}" 2>/dev/null &
            perfs+=($!)
        done
    fi
    if [[ -n "${SYSCALLS:-}" ]]; then
        mkdir -p "$SYSCALLS"
        for ((i = 0; i < ${#services[@]}; i += 2)); do
            strace -c -f -q -o "$SYSCALLS/$label-$form-${services[i]}.txt" -p "${services[i + 1]}" &
            straces+=($!)
        done
        sleep 1
    fi
    local how=(--n "$N" --rate "$RATE")
    ((CONCURRENCY > 0)) && how=(--concurrency "$CONCURRENCY" --duration "$DURATION")
    "$target/release/confab-loadgen" --gateway "http://127.0.0.1:$gateway_port" \
        --form "$form" --words "$WORDS" "${how[@]}" \
        --pids "$(printf '%s=%s,' "${services[@]}" | sed 's/,$//')" | tee "$work/run.out" ||
        status=1
    grep '^summary ' "$work/run.out" | sed "s/^summary /summary variant=$label /" >>"$work/summaries" || true
    if ((${#straces[@]})); then
        kill -INT "${straces[@]}"
        wait "${straces[@]}" 2>/dev/null || true
        local tokens=$((N * WORDS))
        ((CONCURRENCY > 0)) && tokens=$(($(sed -n 's/^summary .*turns=\([0-9]*\).*/\1/p' "$work/run.out") * WORDS))
        for ((i = 0; i < ${#services[@]}; i += 2)); do
            echo "-- ${services[i]}: system calls per token ($tokens tokens; $SYSCALLS/$label-$form-${services[i]}.txt)"
            awk -v t="$tokens" '$4 ~ /^[0-9]+$/ && $NF != "total" { s += $4; e += (NF == 6 ? $5 : 0)
                    printf "%8.2f %s%s\n", $4 / t, $NF, (NF == 6 ? sprintf(" (%.2f failed)", $5 / t) : "") }
                END { printf "%8.2f all (%.2f failed)\n", s / t, e / t }' \
                "$SYSCALLS/$label-$form-${services[i]}.txt" | sort -rn | head -n 12
        done
    fi
    if ((${#perfs[@]})); then
        kill -INT "${perfs[@]}"
        wait "${perfs[@]}" 2>/dev/null || true
        for ((i = 0; i < ${#services[@]}; i += 2)); do
            echo "-- ${services[i]}: top frames by own CPU ($PROFILE/$label-$form-${services[i]}.data)"
            perf report -q -i "$PROFILE/$label-$form-${services[i]}.data" --no-children --sort dso,symbol --stdio 2>/dev/null |
                grep -v '^$' | head -n "${PROFILE_TOP:-15}" | cut -c1-150
        done
    fi
}

echo "$(nproc) CPUs, release build, SQLite, chunk delay ${CHUNK_DELAY_MS} ms; head = $head_label${BASE:+, base = $base_rev}${BENCH_ENV:+; BENCH_ENV=$BENCH_ENV}${HEAD_ENV:+; head only: $HEAD_ENV}"
status=0
bench_env_all=${BENCH_ENV:-}
: >"$work/summaries"
for ((round = 1; round <= ROUNDS; round++)); do
    for form in $FORMS; do
        for variant in "${variants[@]}"; do
            if [[ $variant == base ]]; then
                bin=$base_bin label=$base_rev BENCH_ENV=$bench_env_all
            else
                bin=$head_bin label=$head_label BENCH_ENV="$bench_env_all ${HEAD_ENV:-}"
            fi
            echo
            echo "== round $round, $form, $variant ($label)"
            start_stack
            run_form "$form" "$variant"
            stop_started
            rm -rf "${work:?}"/{gateway,chat-service,demo-agents,llm-proxy-service}
        done
    done
done

# The medians of each variant's runs per form, and head against base.
echo
python3 - "$work/summaries" <<'EOF'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    fields = dict(f.split("=", 1) for f in line.split()[1:])
    runs.setdefault((fields["form"], fields["variant"]), []).append(fields)
def median(rows, key):
    return statistics.median(float(r[key]) for r in rows)
keys = ["turns_per_s", "cpu_ms_per_turn", "kib_per_open_turn", "first_p50_ms", "done_p99_ms", "client_ms_per_turn"]
print(f"{'form':<7} {'variant':<8} {'runs':>4} {'errors':>6} " + " ".join(f"{k:>18}" for k in keys))
for form in dict.fromkeys(f for f, _ in runs):
    for variant in ("base", "head"):
        rows = runs.get((form, variant))
        if not rows:
            continue
        bad = sum(int(r["errors"]) + int(r["wrong"]) for r in rows)
        print(f"{form:<7} {variant:<8} {len(rows):>4} {bad:>6} " + " ".join(f"{median(rows, k):>18.2f}" for k in keys))
    if (form, "base") in runs and (form, "head") in runs:
        b, h = runs[(form, "base")], runs[(form, "head")]
        print(f"{form:<7} head/base: turns/s x{median(h, 'turns_per_s') / median(b, 'turns_per_s'):.2f}, "
              f"CPU per turn x{median(h, 'cpu_ms_per_turn') / median(b, 'cpu_ms_per_turn'):.2f}, "
              f"KiB per open turn x{median(h, 'kib_per_open_turn') / max(median(b, 'kib_per_open_turn'), 1e-9):.2f}")
EOF
exit "$status"

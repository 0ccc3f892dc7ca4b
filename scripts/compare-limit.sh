#!/usr/bin/env bash
# Replays one archive with `outbox-consumer replay --count-types` (release build), with the C++
# limit probe (simdjson On-Demand + sqlite3 prepared INSERT OR IGNORE, one thread) and with the
# Python reference consumer, alternately, each on a fresh ledger, and prints the medians of
# wall time, CPU time (user+sys) and peak RSS, and the ratios ours/probe and python/ours
# (issue 13). A benchmark, not a test: without ../shared/bench it says so and exits 0.
#
# usage: scripts/compare-limit.sh [EVENTS]
#   EVENTS  archive size (default 1000000; ~480 MB, made by ../shared/bench/gen_events.py
#           EVENTS --seed 23 --payload-as-string 0.1)
# env: RUNS (default 5), WORK (default a directory in /dev/shm, tmpfs; kept for reuse),
#      BATCH (the probe's commit interval, default 1000), PROBE_ONLY_PARSE=1 adds a run of the
#      probe with --no-ledger, BEFORE=path/to/an/older/outbox-consumer adds that build (A/B),
#      SCRATCH_PATH (the release build's folder, default .build).
# Needs g++, libsimdjson-dev and libsqlite3-dev (installed with apt-get when missing and root),
# python3 with orjson, /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/.."

bench="../shared/bench"
if [ ! -f "$bench/limit_probe.cpp" ] || [ ! -f "$bench/gen_events.py" ] || [ ! -f "$bench/baseline_consumer.py" ]; then
    echo "compare-limit: $bench (limit_probe.cpp, gen_events.py, baseline_consumer.py) is not here; nothing to compare"
    exit 0
fi
bench="$(cd "$bench" && pwd)"

events="${1:-1000000}"
runs="${RUNS:-5}"
batch="${BATCH:-1000}"
if [ -d /dev/shm ]; then default_work=/dev/shm/outbox-limit; else default_work=/tmp/outbox-limit; fi
work="${WORK:-$default_work}"
mkdir -p "$work"

[ -x /usr/bin/time ] || { echo "compare-limit: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
command -v g++ >/dev/null || { echo "compare-limit: needs g++" >&2; exit 1; }
python3 -c "import orjson" 2>/dev/null || python3 -m pip install -q orjson >&2

# simdjson: Debian's libsimdjson-dev (pkg-config simdjson), Homebrew's simdjson on macOS.
if ! pkg-config --exists simdjson 2>/dev/null && [ ! -f /usr/include/simdjson.h ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        echo "compare-limit: installing libsimdjson-dev" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libsimdjson-dev >/dev/null
    else
        echo "compare-limit: needs simdjson (apt-get install libsimdjson-dev, brew install simdjson)" >&2
        exit 1
    fi
fi
simdjson_flags="$(pkg-config --cflags --libs simdjson 2>/dev/null || echo -lsimdjson)"

# The probe, rebuilt when its source is newer (build line as at the top of limit_probe.cpp).
probe="$work/limit_probe"
if [ ! -x "$probe" ] || [ "$bench/limit_probe.cpp" -nt "$probe" ]; then
    echo "compare-limit: building $probe" >&2
    # shellcheck disable=SC2086
    g++ -O3 -march=native "$bench/limit_probe.cpp" $simdjson_flags -lsqlite3 -o "$probe"
fi

source scripts/compare-common.sh
release_build

archive="$work/events-$events-seed23-strings0.1.jsonl"
if [ ! -s "$archive" ]; then
    echo "compare-limit: generating $archive" >&2
    python3 "$bench/gen_events.py" "$events" --seed 23 --payload-as-string 0.1 >"$archive.part"
    mv "$archive.part" "$archive"
fi
echo "archive: $archive ($(du -h "$archive" | cut -f1), $(wc -l <"$archive") lines)"

# measure COMMAND...: one run on a fresh ledger; prints "wall cpu rss_kb" (seconds, seconds, KiB).
measure() {
    rm -f "$work"/ledger.sqlite*
    local out
    out=$( { /usr/bin/time -f "LIMIT-TIME %e %U %S %M" "$@" 2>&1 >/dev/null; } | grep '^LIMIT-TIME' | tail -1)
    [ -n "$out" ] || { echo "compare-limit: no timing from: $*" >&2; exit 1; }
    echo "$out" | awk '{ printf "%s %.2f %s\n", $2, $3 + $4, $5 }'
}

ours=(); probes=(); pythons=(); parse_only=(); befores=()
for ((i = 1; i <= runs; i++)); do
    ours+=("$(measure "$bin" replay "$archive" --ledger "$work/ledger.sqlite" --count-types)")
    probes+=("$(measure "$probe" "$archive" "$work/ledger.sqlite" "$batch")")
    pythons+=("$(measure python3 "$bench/baseline_consumer.py" "$archive" "$work/ledger.sqlite")")
    if [ -n "${BEFORE:-}" ]; then
        befores+=("$(measure "$BEFORE" replay "$archive" --ledger "$work/ledger.sqlite" --count-types)")
    fi
    if [ -n "${PROBE_ONLY_PARSE:-}" ]; then
        parse_only+=("$(measure "$probe" "$archive" "$work/ledger.sqlite" "$batch" --no-ledger)")
    fi
    echo "run $i: ours ${ours[-1]}  probe ${probes[-1]}  python ${pythons[-1]}  (wall s, cpu s, rss KiB)" >&2
done

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# column ARRAY_NAME N: the median of field N of each run
column() { local -n rows=$1; printf '%s\n' "${rows[@]}" | awk -v n="$2" '{print $n}' | median; }

printf '%-34s %8s %8s %9s\n' "consumer (median of $runs)" "wall s" "CPU s" "peak RSS"
row() { printf '%-34s %8s %8s %6d MB\n' "$1" "$(column "$2" 1)" "$(column "$2" 2)" "$(( $(column "$2" 3) / 1024 ))"; }
row "outbox-consumer replay" ours
row "limit_probe (batch $batch)" probes
row "baseline_consumer.py" pythons
if [ -n "${PROBE_ONLY_PARSE:-}" ]; then row "limit_probe --no-ledger" parse_only; fi
if [ -n "${BEFORE:-}" ]; then
    row "BEFORE build" befores
    awk -v ow="$(column ours 1)" -v oc="$(column ours 2)" -v bw="$(column befores 1)" -v bc="$(column befores 2)" \
        'BEGIN { printf "ours/BEFORE: wall %.2fx, CPU %.2fx\n", ow / bw, oc / bc }'
fi
awk -v ow="$(column ours 1)" -v oc="$(column ours 2)" -v pw="$(column probes 1)" -v pc="$(column probes 2)" \
    -v yw="$(column pythons 1)" -v yc="$(column pythons 2)" 'BEGIN {
    printf "ours/probe:  wall %.2fx, CPU %.2fx   (targets: <= 1.0x, <= 1.5x)\n", ow / pw, oc / pc
    printf "python/ours: wall %.2fx, CPU %.2fx   (target: >= 4x wall)\n", yw / ow, yc / oc
}'

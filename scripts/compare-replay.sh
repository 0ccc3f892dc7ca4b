#!/usr/bin/env bash
# Replays one generated archive with `outbox-consumer replay --count-types` (release build: one
# handler counting events by type, as the Python script has) and with a Python
# reference consumer, in the same session, and prints both rates, their ratio and each one's
# peak RSS. Each side runs RUNS times on a fresh ledger; the median is reported (the machine is
# shared and noisy).
#
# usage: scripts/compare-replay.sh [EVENTS] [PYTHON_CONSUMER]
#   EVENTS           archive size (default 1000000; ~500 MB)
#   PYTHON_CONSUMER  the reference script (default ../shared/bench/baseline_consumer.py); it
#                    takes FILE LEDGER and prints events_per_s=N. Needs python3 with orjson.
# env: RUNS (default 3), SEED (default 7), PAYLOAD_AS_STRING (default 0), WORK (default /tmp/outbox-compare)
set -euo pipefail
cd "$(dirname "$0")/.."

events="${1:-1000000}"
python_consumer="${2:-../shared/bench/baseline_consumer.py}"
runs="${RUNS:-3}"
work="${WORK:-/tmp/outbox-compare}"
source scripts/compare-common.sh

[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
prepare_comparison orjson
echo "archive: $archive ($(du -h "$archive" | cut -f1), $events lines)"

# run NAME COMMAND...: prints "rate rss_kb" for one run
measure() {
    local out
    rm -f "$work"/ledger.sqlite*
    out=$( { /usr/bin/time -f "RSS %M" "$@" 2>&1 1>&3 3>&-; } 3>&1 )
    echo "$out"
}

swift_rates=(); swift_rss=(); python_rates=(); python_rss=()
for ((i = 1; i <= runs; i++)); do
    out=$(measure "$bin" replay "$archive" --ledger "$work/ledger.sqlite" --count-types --json)
    swift_rates+=("$(echo "$out" | grep -o '"events_per_second":[0-9.]*' | cut -d: -f2)")
    swift_rss+=("$(echo "$out" | awk '/^RSS/ {print $2}')")
    out=$(measure python3 "$python_consumer" "$archive" "$work/ledger.sqlite")
    python_rates+=("$(echo "$out" | grep -o 'events_per_s=[0-9]*' | cut -d= -f2)")
    python_rss+=("$(echo "$out" | awk '/^RSS/ {print $2}')")
done

s=$(printf '%s\n' "${swift_rates[@]}" | median)
p=$(printf '%s\n' "${python_rates[@]}" | median)
srss=$(printf '%s\n' "${swift_rss[@]}" | median)
prss=$(printf '%s\n' "${python_rss[@]}" | median)
echo "outbox-consumer replay: ${swift_rates[*]} events/s (median $s), peak RSS median $((srss / 1024)) MB"
echo "python reference:       ${python_rates[*]} events/s (median $p), peak RSS median $((prss / 1024)) MB"
awk -v s="$s" -v p="$p" 'BEGIN { printf "ratio: %.2fx\n", s / p }'

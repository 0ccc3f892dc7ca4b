#!/usr/bin/env bash
# Drains one Redis Stream of generated events with `outbox-consumer consume` (release build) and
# with a Python reference consumer, in the same session, and prints both rates and their ratio.
# A throw-away redis-server runs on a free loopback port (scripts/with-redis.sh); the archive is
# published once and each run reads it through a consumer group of its own, on a fresh ledger.
#
# usage: scripts/compare-redis.sh [EVENTS] [PYTHON_CONSUMER]
#   EVENTS           entries to load (default 1000000)
#   PYTHON_CONSUMER  the reference script (default ../shared/bench/baseline_redis_consumer.py); it
#                    takes --port, --group, LEDGER and prints events_per_s=N. Needs python3 with
#                    redis and orjson.
# env: RUNS (default 3), SEED (default 7), PAYLOAD_AS_STRING (default 0), WORK (default /tmp/outbox-compare)
#
# Both sides stop after the stream has been quiet for 0.2 s, and both rates leave that wait out
# (the Python script subtracts its final 200 ms block; ours is read / (seconds - 0.2)).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${OUTBOX_REDIS_TEST_URL:-}" ]]; then
    exec scripts/with-redis.sh "$0" "$@"
fi

events="${1:-1000000}"
python_consumer="${2:-../shared/bench/baseline_redis_consumer.py}"
runs="${RUNS:-3}"
work="${WORK:-/tmp/outbox-compare}"
url="$OUTBOX_REDIS_TEST_URL"
port="${url##*:}"
source scripts/compare-common.sh
prepare_comparison orjson redis
"$bin" publish "$archive" --redis "$url" --json | tail -1 >&2
echo "stream: $events entries from $archive, redis-server at $url"

swift_rates=(); python_rates=()
for ((i = 1; i <= runs; i++)); do
    rm -f "$work"/redis-ledger.sqlite*
    out=$("$bin" consume --redis "$url" --group "swift$i" --ledger "$work/redis-ledger.sqlite" \
        --idle-exit 0.2 --count-types --json | tail -1)
    read_count=$(echo "$out" | grep -o '"read":[0-9]*' | cut -d: -f2)
    seconds=$(echo "$out" | grep -o '"seconds":[0-9.]*' | cut -d: -f2)
    [[ "$read_count" == "$events" ]] || { echo "consume read $read_count entries, expected $events: $out" >&2; exit 1; }
    swift_rates+=("$(awk -v n="$read_count" -v s="$seconds" 'BEGIN { printf "%d", n / (s - 0.2) }')")
    rm -f "$work"/redis-python.sqlite*
    out=$(python3 "$python_consumer" --port "$port" --group "python$i" "$work/redis-python.sqlite")
    python_rates+=("$(echo "$out" | grep -o 'events_per_s=[0-9]*' | cut -d= -f2)")
done

s=$(printf '%s\n' "${swift_rates[@]}" | median)
p=$(printf '%s\n' "${python_rates[@]}" | median)
echo "outbox-consumer consume: ${swift_rates[*]} events/s (median $s)"
echo "python reference:        ${python_rates[*]} events/s (median $p)"
awk -v s="$s" -v p="$p" 'BEGIN { printf "ratio: %.2fx\n", s / p }'

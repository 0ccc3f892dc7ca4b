#!/usr/bin/env bash
# One vs three `outbox-consumer consume` processes draining one Redis Stream into one shared
# PostgreSQL ledger: wall time and events/s of each, medians of RUNS runs, and the ratio. A
# benchmark, not a test.
#
# A throw-away redis-server and PostgreSQL server (scripts/with-redis.sh, scripts/with-postgres.sh)
# run for the whole comparison; a generated archive (with its re-deliveries) is published once,
# and every run reads all of it through a consumer group of its own into a fresh schema, the
# two sizes alternating. The three processes of a run share the group and the schema, with
# distinct consumer names, as on three machines.
#
# usage: scripts/compare-scaleout.sh [EVENTS]
#   EVENTS  entries to load (default 200000)
# env: RUNS (default 3), SEED (default 7), PAYLOAD_AS_STRING (default 0), WORK (default
#      /tmp/outbox-compare), SCRATCH_PATH (release build directory, default .build),
#      REF_BIN (another build's outbox-consumer: also runs one and three of it in each round,
#      for an A/B of two builds in the same session)
#
# Every process exits after the stream has been quiet for IDLE (0.5 s); the rates leave that
# wait out: events / (wall - IDLE), wall from the first start to the last exit. CPU seconds
# (user+sys) are given for the consumers, the PostgreSQL server (backends that exited, counted
# by their postmaster) and redis-server, to show where the cores went.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${OUTBOX_TEST_POSTGRES_URL:-}" ]]; then
    exec scripts/with-postgres.sh "$0" "$@"
fi
if [[ -z "${OUTBOX_REDIS_TEST_URL:-}" ]]; then
    exec scripts/with-redis.sh "$0" "$@"
fi

events="${1:-200000}"
runs="${RUNS:-3}"
work="${WORK:-/tmp/outbox-compare}"
redis_url="$OUTBOX_REDIS_TEST_URL"
pg_url="$OUTBOX_TEST_POSTGRES_URL"
idle=0.5
source scripts/compare-common.sh
build_and_generate
"$bin" publish "$archive" --redis "$redis_url" --json | tail -1 >&2
echo "stream: $events entries from $archive; redis-server at $redis_url, PostgreSQL ${pg_url##*@}"

# CPU ticks of a process and of its waited-for children (/proc/PID/stat fields 14-17).
process_ticks() { awk '{ print $14 + $15 + $16 + $17 }' "/proc/$1/stat"; }
# The postmaster: the parent of the server's background processes (the checkpointer and the
# like, which live as long as it; at this point no other client is connected).
backend=$("${OUTBOX_POSTGRES_BINDIR:+$OUTBOX_POSTGRES_BINDIR/}psql" -X -A -t -q "$pg_url" \
    -c "SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid() ORDER BY pid LIMIT 1")
postmaster=$(awk '/^PPid:/ { print $2 }' "/proc/$backend/status")
[[ "$(cat "/proc/$postmaster/comm")" == postgres ]] || { echo "no postmaster found (pid '$postmaster')" >&2; exit 1; }
redis_ticks() { redis-cli -u "$redis_url" info cpu | awk -F: '/^used_cpu_(user|sys):/ { s += $2 } END { printf "%d", s * 100 }'; }
ticks_per_s=$(getconf CLK_TCK)

# run N I [BIN] [TAG]: drains the stream with N processes of BIN (default this build) into schema
# s<N><TAG>_<I> through group g<N><TAG>_<I>; prints "wall rate consumers_cpu server_cpu redis_cpu delivered".
run() {
    local n=$1 i=$2 bin=${3:-$bin} tag=${4:-}
    local ledger="$pg_url?schema=s${n}${tag}_$i&sslmode=disable" group="g${n}${tag}_$i" dir="$work/scaleout-$n$tag-$i"
    rm -rf "$dir"
    mkdir -p "$dir"
    # The schema is created before the clock starts, by a command that opens the ledger.
    "$bin" ledger stats --ledger "$ledger" >/dev/null
    local pg_before redis_before start end pids=() c
    pg_before=$(process_ticks "$postmaster")
    redis_before=$(redis_ticks)
    start=$(date +%s.%N)
    for ((c = 1; c <= n; c++)); do
        /usr/bin/time -f "%U %S" -o "$dir/time-$c" "$bin" consume --redis "$redis_url" --group "$group" \
            --consumer-name "c$c" --ledger "$ledger" --idle-exit "$idle" --count-types --json >"$dir/out-$c" 2>"$dir/err-$c" &
        pids+=($!)
    done
    for c in "${pids[@]}"; do
        wait "$c" || { echo "a consumer failed:" >&2; cat "$dir"/err-* >&2; exit 1; }
    done
    end=$(date +%s.%N)
    # The backends end once their clients have gone; their CPU counts when the postmaster reaps them.
    sleep 0.5
    local read_count delivered cpu
    read_count=$(cat "$dir"/out-* | grep -o '"read":[0-9]*' | cut -d: -f2 | awk '{ s += $1 } END { print s }')
    delivered=$(cat "$dir"/out-* | grep -o '"delivered":[0-9]*' | cut -d: -f2 | awk '{ s += $1 } END { print s }')
    [[ "$read_count" == "$events" ]] || { echo "$n consumers read $read_count entries, expected $events" >&2; exit 1; }
    cpu=$(cat "$dir"/time-* | awk '{ s += $1 + $2 } END { printf "%.2f", s }')
    awk -v s="$start" -v e="$end" -v idle="$idle" -v n="$read_count" -v cpu="$cpu" -v d="$delivered" \
        -v pg="$(($(process_ticks "$postmaster") - pg_before))" -v rd="$(($(redis_ticks) - redis_before))" -v hz="$ticks_per_s" \
        'BEGIN { w = e - s - idle; printf "%.2f %d %s %.2f %.2f %d\n", w, n / w, cpu, pg / hz, rd / 100, d }'
}

declare -A walls rates delivered_counts
kinds=(1 3)
[[ -z "${REF_BIN:-}" ]] || kinds+=(1ref 3ref)
for ((i = 1; i <= runs; i++)); do
    for kind in "${kinds[@]}"; do
        n=${kind%ref}
        if [[ "$kind" == *ref ]]; then line=$(run "$n" "$i" "$REF_BIN" ref); else line=$(run "$n" "$i"); fi
        read -r wall rate consumers server redis delivered <<<"$line"
        printf '%s consumer(s), run %d: %6.2f s  %7d events/s  cpu: consumers %s s, postgres %s s, redis %s s  (delivered %d)\n' \
            "$kind" "$i" "$wall" "$rate" "$consumers" "$server" "$redis" "$delivered"
        walls[$kind]+="$wall "
        rates[$kind]+="$rate "
        delivered_counts[$kind]+="$delivered "
    done
done

# Both sizes deliver each event once: the shared ledger drops the copies wherever they land.
if [[ $(for kind in "${kinds[@]}"; do printf '%s\n' ${delivered_counts[$kind]}; done | sort -u | wc -l) != 1 ]]; then
    echo "delivered counts differ:$(for kind in "${kinds[@]}"; do printf ' %s: %s' "$kind" "${delivered_counts[$kind]}"; done)" >&2
    exit 1
fi
for kind in "${kinds[@]}"; do
    printf '%s consumer(s): median %s s, %s events/s\n' "$kind" \
        "$(printf '%s\n' ${walls[$kind]} | median)" "$(printf '%s\n' ${rates[$kind]} | median)"
done
[[ -z "${REF_BIN:-}" ]] || awk -v new="$(printf '%s\n' ${rates[1]} | median)" -v ref="$(printf '%s\n' ${rates[1ref]} | median)" \
    'BEGIN { printf "one consumer, this build / REF_BIN: %.2fx\n", new / ref }' 
awk -v one="$(printf '%s\n' ${rates[1]} | median)" -v three="$(printf '%s\n' ${rates[3]} | median)" \
    'BEGIN { printf "ratio (3 / 1): %.2fx\n", three / one }'

#!/usr/bin/env bash
# Replay with the PostgreSQL ledger vs ../shared/bench/baseline_pg_consumer.py (psycopg + orjson),
# alternately on one file, fresh tables, one throw-away server. A benchmark, not a test.
#
# usage: scripts/compare-postgres.sh [EVENTS] [RUNS]   (needs ../shared/bench, python3 with psycopg and orjson)
# env: SCRATCH_PATH  the release build's scratch path (default .build)
#      REF_BIN       another build's outbox-consumer (say a copy of the previous commit's), run
#                    in each round too, for an A/B of two builds in the same session
# Prints each run's wall and CPU time (/usr/bin/time; rates are events / wall), then the medians
# and the ratios to the Python script.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${1:-200000}; RUNS=${2:-3}
BENCH=../shared/bench
if [ ! -f "$BENCH/baseline_pg_consumer.py" ]; then echo "compare-postgres: $BENCH is not here; nothing to compare"; exit 0; fi
python3 -c "import psycopg, orjson" 2>/dev/null || pip install -q "psycopg[binary]" orjson
source scripts/compare-common.sh
release_build
DIR=$(mktemp -d /dev/shm/outbox-pg-XXXXXX 2>/dev/null || mktemp -d)
trap 'rm -rf "$DIR"' EXIT
python3 "$BENCH/gen_events.py" "$EVENTS" --seed 23 --payload-as-string 0.1 > "$DIR/events.jsonl"
cat > "$DIR/alternate.sh" <<'INNER'
#!/usr/bin/env bash
set -u
FILE=$1; BIN=$2; RUNS=$3; EVENTS=$4; REF=${5:-}; URL=$OUTBOX_TEST_POSTGRES_URL
# one NAME COMMAND...: runs it, prints "NAME wall cpu" and appends "wall cpu" to $DIR/NAME
one() {
  local name=$1; shift
  if ! /usr/bin/time -o "$DIR/time" -f "%e %U %S" "$@" >"$DIR/out" 2>&1; then
    echo "$name failed:"; tail -5 "$DIR/out"; exit 1
  fi
  local times
  times=$(awk '{printf "%s %.2f", $1, $2 + $3}' "$DIR/time")
  echo "$times" >> "$DIR/$name"
  printf '%-7s wall %s s, cpu %s s\n' "$name" ${times}
}
for i in $(seq 1 "$RUNS"); do
  echo "run $i"
  one ours "$BIN" replay "$FILE" --ledger "$URL?schema=bench$i&sslmode=disable" --count-types --json
  if [ -n "$REF" ]; then one ref "$REF" replay "$FILE" --ledger "$URL?schema=ref$i&sslmode=disable" --count-types --json; fi
  one python python3 ../shared/bench/baseline_pg_consumer.py "$FILE" "$URL" --fresh
done
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
py=$(cut -d' ' -f1 "$DIR/python" | median)
for name in ours ref python; do
  [ -f "$DIR/$name" ] || continue
  wall=$(cut -d' ' -f1 "$DIR/$name" | median); cpu=$(cut -d' ' -f2 "$DIR/$name" | median)
  awk -v n="$name" -v w="$wall" -v c="$cpu" -v p="$py" -v e="$EVENTS" \
    'BEGIN {printf "median %-7s wall %.2f s (%.0fk events/s, %.2fx python), cpu %.2f s\n", n, w, e / w / 1000, p / w, c}'
done
INNER
chmod +x "$DIR/alternate.sh"
DIR="$DIR" scripts/with-postgres.sh "$DIR/alternate.sh" "$DIR/events.jsonl" "$bin" "$RUNS" "$EVENTS" "${REF_BIN:-}"

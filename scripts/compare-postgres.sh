#!/usr/bin/env bash
# Replay with the PostgreSQL ledger vs ../shared/bench/baseline_pg_consumer.py (psycopg + orjson),
# alternately on one file, fresh tables, one throw-away server. A benchmark, not a test.
# usage: scripts/compare-postgres.sh [EVENTS] [RUNS]   (needs ../shared/bench, python3 with psycopg and orjson)
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${1:-200000}; RUNS=${2:-3}
BENCH=../shared/bench
if [ ! -f "$BENCH/baseline_pg_consumer.py" ]; then echo "compare-postgres: $BENCH is not here; nothing to compare"; exit 0; fi
python3 -c "import psycopg, orjson" 2>/dev/null || pip install -q "psycopg[binary]" orjson
swift build -c release --product outbox-consumer >/dev/null
BIN="$(swift build -c release --show-bin-path)/outbox-consumer"
DIR=$(mktemp -d /dev/shm/outbox-pg-XXXXXX 2>/dev/null || mktemp -d)
trap 'rm -rf "$DIR"' EXIT
python3 "$BENCH/gen_events.py" "$EVENTS" --seed 23 --payload-as-string 0.1 > "$DIR/events.jsonl"
cat > "$DIR/alternate.sh" <<'INNER'
#!/usr/bin/env bash
set -u
FILE=$1; BIN=$2; RUNS=$3; URL=$OUTBOX_TEST_POSTGRES_URL
for i in $(seq 1 "$RUNS"); do
  /usr/bin/time -f "ours wall=%e cpu=%U+%S rss=%MKB" "$BIN" replay "$FILE" --ledger "$URL?schema=bench$i&sslmode=disable" --count-types --json 2>&1 | tail -1
  /usr/bin/time -f "python wall=%e cpu=%U+%S rss=%MKB" python3 ../shared/bench/baseline_pg_consumer.py "$FILE" "$URL" --fresh 2>&1 | tail -1
done
INNER
chmod +x "$DIR/alternate.sh"
scripts/with-postgres.sh "$DIR/alternate.sh" "$DIR/events.jsonl" "$BIN" "$RUNS"

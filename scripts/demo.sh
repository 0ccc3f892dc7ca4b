#!/usr/bin/env bash
# The main job: replays the bundled sample archive through the audit-log example consumer on the
# embedded SQLite ledger, twice. The second pass finds every event in the ledger and delivers
# nothing new.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
swift build --product outbox-consumer >&2

work=".demo"
rm -rf "$work" && mkdir -p "$work"
bin="$(swift build --show-bin-path)"

echo "== first pass: every event is new"
"$bin/outbox-consumer" replay Examples/data/sample-2k.jsonl --ledger "$work/ledger.sqlite" --consumer demo
echo
echo "== second pass: the ledger already has them all"
"$bin/outbox-consumer" replay Examples/data/sample-2k.jsonl --ledger "$work/ledger.sqlite" --consumer demo
echo
"$bin/outbox-consumer" ledger stats --ledger "$work/ledger.sqlite"

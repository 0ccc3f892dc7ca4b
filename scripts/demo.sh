#!/usr/bin/env bash
# The main job: replays the bundled sample archive through the audit-log example consumer
# (Examples/AuditLog) on the embedded SQLite ledger, twice. The second pass finds every event in
# the ledger and delivers nothing new, and the JSONL audit trail stays byte-for-byte the same.
# Then a sample query.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
swift build --product audit-log >&2

work=".demo"
rm -rf "$work" && mkdir -p "$work"
bin="$(swift build --show-bin-path)"
sample=Examples/data/sample-2k.jsonl
ledger="$work/ledger.sqlite"
trail="$work/audit-trail.jsonl"

echo "== first pass: every event is new"
"$bin/audit-log" consume "$sample" --ledger "$ledger" --trail "$trail"
echo
echo "== the trail $trail: $(wc -l <"$trail") records, one JSON line each; the first three as text:"
head -n 3 "$trail" | "$bin/audit-log" render
echo
echo "== second pass: the ledger already has them all"
before=$(sha256sum <"$trail")
"$bin/audit-log" consume "$sample" --ledger "$ledger" --trail "$trail"
if [[ "$(sha256sum <"$trail")" == "$before" ]]; then
    echo "the trail is byte-for-byte unchanged"
else
    echo "the trail changed on the second pass" >&2
    exit 1
fi
echo
echo "== query: the emails of issue #39004"
"$bin/audit-log" query --ledger "$ledger" --issue 39004 --type 'helpdesk_ticket.*' --type 'journal_message.*'
echo
echo "More: Examples/AuditLog/README.md and Examples/CustomerTimeline/README.md"

#!/usr/bin/env bash
# Builds the DocC documentation of every library product and fails on any warning (a broken
# symbol link, an undocumented parameter of a documented function). Output: .build/plugins/Swift-DocC/outputs.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
for target in OutboxConsumer OutboxConsumerRedis OutboxConsumerPostgres OutboxConsumerTesting OutboxConsumerArguments; do
    [ -d "Sources/$target" ] || continue
    log=$(mktemp)
    if ! swift package generate-documentation --target "$target" >"$log" 2>&1; then
        cat "$log"; echo "docs: building $target's documentation failed" >&2; status=1
    fi
    # SwiftPM's notes about a flag in a C library's pkg-config file and about a dependency's
    # undeclared resource are not documentation warnings of ours.
    ignore="prohibited flag|'swift-distributed-tracing': found"
    if grep -E "warning:|error:" "$log" | grep -Ev "$ignore" >/dev/null; then
        grep -E -A8 "warning:|error:" "$log" | grep -Ev "$ignore"
        echo "docs: $target's documentation has warnings" >&2; status=1
    fi
    rm -f "$log"
done
[ $status -eq 0 ] && echo "docs: every catalog builds without warnings"
exit $status

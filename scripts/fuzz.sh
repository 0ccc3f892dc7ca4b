#!/usr/bin/env bash
# Runs a libFuzzer target for a bounded time, from its seed corpus in Fuzz/Corpus/TARGET.
#
# usage: scripts/fuzz.sh TARGET SECONDS     one target (json, envelope, lines, redis)
#        scripts/fuzz.sh --all SECONDS      every target in turn (CI: keep SECONDS <= 20)
# env:   FUZZ_WORK (default .build-fuzz/work): new inputs found, and crash files
#        FUZZ_ARGS: extra libFuzzer flags (e.g. -jobs=2)
# Builds once (release, -sanitize=fuzzer,address) into .build-fuzz, apart from .build.
# Exits non-zero when a target crashes, leaks or times out; the input is kept in FUZZ_WORK.
set -euo pipefail
cd "$(dirname "$0")/.."

targets=(json envelope lines redis)
usage() { echo "usage: $0 TARGET|--all SECONDS   (targets: ${targets[*]})" >&2; exit 64; }
[ $# -eq 2 ] || usage
[[ "$2" =~ ^[0-9]+$ ]] || usage
seconds="$2"
if [ "$1" = "--all" ]; then
    selected=("${targets[@]}")
else
    [[ " ${targets[*]} " == *" $1 "* ]] || usage
    selected=("$1")
fi

work="${FUZZ_WORK:-.build-fuzz/work}"
start=$(date +%s)
OUTBOX_FUZZ=1 swift build -c release --scratch-path .build-fuzz --product outbox-fuzz \
    -Xswiftc -sanitize=fuzzer,address >&2
echo "fuzz build: $(( $(date +%s) - start )) s" >&2
bin="$(OUTBOX_FUZZ=1 swift build -c release --scratch-path .build-fuzz --show-bin-path)/outbox-fuzz"

status=0
for target in "${selected[@]}"; do
    mkdir -p "$work/$target/new" "$work/$target/artifacts"
    echo "== $target: ${seconds} s" >&2
    # New inputs go to a scratch folder first so the checked-in corpus only changes on purpose;
    # -rss_limit_mb bounds memory, -timeout flags hangs.
    if ! OUTBOX_FUZZ_TARGET="$target" "$bin" "$work/$target/new" "Fuzz/Corpus/$target" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
        -artifact_prefix="$work/$target/artifacts/" ${FUZZ_ARGS:-} 2>"$work/$target/log"; then
        status=1
        tail -40 "$work/$target/log" >&2
        echo "== $target FAILED; inputs in $work/$target/artifacts/" >&2
    fi
    # The last coverage line and the run totals, for the record.
    grep -E '^#[0-9]+.*(DONE|cov:)' "$work/$target/log" | tail -1 >&2 || true
    grep -E 'stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$work/$target/log" >&2 || true
done
exit $status

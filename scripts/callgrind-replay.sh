#!/usr/bin/env bash
# Counts the instructions (callgrind's Ir) of `outbox-consumer replay --count-types` over a
# generated archive, release build, fresh ledger, and prints the total and the top functions.
# Instruction counts hardly move with the machine's load, unlike wall or CPU time, so they
# are what to compare when A/B-testing a change on a shared machine (docs/performance.md).
#
# usage: scripts/callgrind-replay.sh [EVENTS] [OUT]
#   EVENTS  archive size (default 30000; start-up is about 76M Ir of the total)
#   OUT     callgrind output file (default $WORK/callgrind.out); read it further with
#           callgrind_annotate --inclusive=yes OUT | swift demangle --simplified
# env: WORK (default /dev/shm/outbox-callgrind), SEED (default 23), PAYLOAD_AS_STRING (default 0.1),
#      SCRATCH_PATH (the release build's folder, default .build)
#
# Swift's async main ends in libdispatch's sigsuspend on a mask in read-only memory, which
# valgrind 3.19 writes to and crashes on ("Valgrind received a signal 11"): a preloaded
# sigsuspend that passes a copy of the mask avoids it.
set -euo pipefail
cd "$(dirname "$0")/.."

events="${1:-30000}"
work="${WORK:-/dev/shm/outbox-callgrind}"
out="${2:-$work/callgrind.out}"
mkdir -p "$work"
command -v valgrind >/dev/null || { echo "callgrind-replay: needs valgrind (apt-get install valgrind)" >&2; exit 1; }

shim="$work/sigsuspend-copy.so"
if [ ! -f "$shim" ]; then
    cat >"$work/sigsuspend-copy.c" <<'EOF'
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>
int sigsuspend(const sigset_t *mask) {
    sigset_t copy = *mask;
    return (int)syscall(SYS_rt_sigsuspend, &copy, (long)(_NSIG / 8));
}
EOF
    cc -O2 -shared -fPIC "$work/sigsuspend-copy.c" -o "$shim"
fi

source scripts/compare-common.sh
release_build
archive="$work/archive-$events-seed${SEED:-23}.jsonl"
[ -s "$archive" ] || "$bin" generate "$events" --seed "${SEED:-23}" --payload-as-string "${PAYLOAD_AS_STRING:-0.1}" -o "$archive"

run() {
    rm -f "$work"/ledger.sqlite*
    LD_PRELOAD="$shim" valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$1" replay "$archive" --ledger "$work/ledger.sqlite" --count-types >"$work/valgrind.log" 2>&1 || true
}
run "$bin"
if grep -q "debuginfo reader" "$work/valgrind.log"; then
    # valgrind 3.19 gives up on some DWARF 5 units (from C dependencies): profile a copy
    # without debug info; functions keep their names, not their files and lines.
    echo "callgrind-replay: valgrind cannot read the debug info; profiling a stripped copy" >&2
    objcopy --strip-debug "$bin" "$work/outbox-consumer-stripped"
    run "$work/outbox-consumer-stripped"
fi
grep -E "I +refs" "$work/valgrind.log" || { tail -20 "$work/valgrind.log" >&2; exit 1; }
callgrind_annotate "$out" 2>/dev/null | sed -n '/file:function/,$p' | sed -n 2,26p \
    | { if command -v swift >/dev/null; then swift demangle --simplified; else cat; fi; } | cut -c1-160

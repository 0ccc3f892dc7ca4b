# Sourced by compare-replay.sh, compare-redis.sh and compare-scaleout.sh (the reference script
# check, the release build, the generated archive, reused while its parameters match, and
# medians), and by compare-limit.sh, compare-postgres.sh and callgrind-replay.sh (the build).
# Needs `events` and `work` set (and `python_consumer` for prepare_comparison); sets `bin` and
# `archive`.

# prepare_comparison PYTHON_MODULE...: checks the reference script and its modules, builds,
# generates the archive if missing.
prepare_comparison() {
    [ -f "$python_consumer" ] || { echo "no Python reference consumer at $python_consumer" >&2; exit 1; }
    local module
    for module in "$@"; do
        python3 -c "import $module" 2>/dev/null || python3 -m pip install -q "$module" >&2
    done
    build_and_generate
}

# release_build: builds outbox-consumer for release (in SCRATCH_PATH when set, else .build) and
# sets `bin` to it.
release_build() {
    local scratch=()
    [[ -z "${SCRATCH_PATH:-}" ]] || scratch=(--scratch-path "$SCRATCH_PATH")
    swift build -c release "${scratch[@]}" --product outbox-consumer >&2
    bin="$(swift build -c release "${scratch[@]}" --show-bin-path)/outbox-consumer"
}

# build_and_generate: the release build and the archive of `events` events (SEED,
# PAYLOAD_AS_STRING), generated if missing.
build_and_generate() {
    mkdir -p "$work"
    release_build
    local seed="${SEED:-7}" as_string="${PAYLOAD_AS_STRING:-0}"
    archive="$work/archive-$events-seed$seed.jsonl"
    [[ "$as_string" == 0 ]] || archive="$work/archive-$events-seed$seed-strings$as_string.jsonl"
    if [ ! -s "$archive" ]; then
        "$bin" generate "$events" --seed "$seed" --payload-as-string "$as_string" -o "$archive"
    fi
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

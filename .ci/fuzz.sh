#!/usr/bin/env bash
# Fuzzing (issue 8, item 4): runs every cargo-fuzz target in fuzz/ for a short, bounded time.
# A panic, a crash, a timeout or an allocation over the limits below fails the script, and
# libFuzzer leaves the input under fuzz/artifacts/<target>/.
#
# Only a stable toolchain exists here: cargo-fuzz passes nightly-only flags (-Zsanitizer...),
# which RUSTC_BOOTSTRAP=1 lets the stable compiler accept.
#
#   FUZZ_SECONDS=600 bash .ci/fuzz.sh       # longer runs by hand
#   FUZZ_TARGETS="trace_decode" bash .ci/fuzz.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CARGO_FUZZ_VERSION=0.13.1
FUZZ_SECONDS=${FUZZ_SECONDS:-25}
start=$SECONDS

if ! cargo fuzz --version 2>/dev/null | grep -qF "$CARGO_FUZZ_VERSION"; then
    echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION" >&2
    cargo install --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi
export RUSTC_BOOTSTRAP=1

targets=${FUZZ_TARGETS:-$(cargo fuzz list)}
# One build for all targets; debug assertions on, so overflows are found too.
cargo fuzz build --debug-assertions
echo "fuzz: built in $((SECONDS - start)) s" >&2

for t in $targets; do
    mkdir -p "fuzz/corpus/$t"
    echo "fuzz: $t for ${FUZZ_SECONDS}s" >&2
    # The generated corpus goes to fuzz/corpus (not committed); fuzz/seeds is read only.
    # -rss_limit_mb / -malloc_limit_mb: memory must stay bounded whatever the input (the
    # targets decompress at most 4 MiB). -timeout: no input may take 10 s.
    log="fuzz/corpus/$t.log"
    if ! cargo fuzz run --debug-assertions "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
        -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -malloc_limit_mb=512 \
        -timeout=10 -max_len=262144 -print_final_stats=1 >"$log" 2>&1; then
        tail -n 80 "$log" >&2
        echo "fuzz: $t FAILED; the input is under fuzz/artifacts/$t/" >&2
        exit 1
    fi
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|Done)' "$log" >&2 || true
done
echo "fuzz: done in $((SECONDS - start)) s" >&2

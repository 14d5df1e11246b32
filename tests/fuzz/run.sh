#!/bin/bash
# run.sh - makes the seeds, then runs each named libFuzzer harness for
# FUZZ_SECONDS on its corpus, one after the other, and prints what each did.
# Fails if any harness found something (crash, leak, timeout, out of memory):
# its report is printed, and the input that did it is kept in $BUILD/artifacts.
#
#   BUILD=build-fuzz FUZZ_SECONDS=60 tests/fuzz/run.sh dispatch steps image
#
# FUZZ_TIMEOUT (default 60) is the seconds one input may take before it counts
# as a hang (the dispatch harness stops a call's image work after 2 s);
# FUZZ_FLAGS adds libFuzzer flags (-seed, -runs, -max_len...).
set -uo pipefail

BUILD=${BUILD:-build-fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_TIMEOUT=${FUZZ_TIMEOUT:-60}
read -r -a extra <<<"${FUZZ_FLAGS:-}"

[ $# -gt 0 ] || set -- dispatch steps image
bash tests/fuzz/seeds.sh || exit 1
mkdir -p "$BUILD/artifacts" "$BUILD/logs"

# Leaks are reported per input; tests/fuzz/lsan.supp says what is not.
export LSAN_OPTIONS="suppressions=$PWD/tests/fuzz/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# GLib's slice allocator hands out objects from its own slabs, where ASan
# cannot see an overflow or LeakSanitizer a lost object: one malloc each.
export G_SLICE=always-malloc
# libvips 8.14's threadpool aborts on a race in its error path
# (found/README.md), now and then, whatever the input: one thread per
# evaluation keeps it out of the way.  VIPS_CONCURRENCY=2 fuzzes with two.
export VIPS_CONCURRENCY=${VIPS_CONCURRENCY:-1}

failed=""
for h in "$@"; do
    bin=$BUILD/fuzz/fuzz_$h
    corpus=$BUILD/corpus/$h
    log=$BUILD/logs/$h.log
    opts=(-max_total_time="$FUZZ_SECONDS" -timeout="$FUZZ_TIMEOUT" -rss_limit_mb=4096
          -print_final_stats=1 -artifact_prefix="$BUILD/artifacts/$h-")
    [ -f "tests/fuzz/$h.dict" ] && opts+=(-dict="tests/fuzz/$h.dict")
    mkdir -p "$corpus"
    before=$(ls "$corpus" | wc -l)
    echo "fuzz $h: $FUZZ_SECONDS s on $corpus ($before inputs) and $BUILD/seeds/$h"
    # New inputs go to the first folder, the corpus; the seeds are only read.
    # The dispatch harness's task stores, removed even when it stops on a finding.
    state=$(mktemp -d "$(test -w /dev/shm && echo /dev/shm || echo "${TMPDIR:-/tmp}")/imgproc-fuzz-run.XXXXXX")
    FUZZ_STATE=$state "$bin" "${opts[@]}" "${extra[@]}" "$corpus" "$BUILD/seeds/$h" >"$log" 2>&1
    rc=$?
    rm -rf "$state"

    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
    done_line=$(grep -o 'Done [0-9]* runs in [0-9]* second(s)' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1)
    after=$(ls "$corpus" | wc -l)
    echo "fuzz $h: ${done_line:-stopped after ${runs:-?} runs}; ${rate:-?} exec/s;" \
         "${cov:-no coverage line}; corpus $before -> $after inputs; peak RSS ${rss:-?} MB"
    # After 1000 inputs that keep memory (caches, not leaks) libFuzzer stops
    # looking for leaks after each input; it still looks at exit.  Say so.
    grep -q 'disabled leak detection' "$log" &&
        echo "fuzz $h: note: libFuzzer stopped checking each input for leaks (checked at exit)"
    if [ $rc -ne 0 ]; then
        failed="$failed $h"
        echo "fuzz $h: FAILED (exit $rc); the report ($log):"
        # libFuzzer's report starts at the sanitizer's or its own "ERROR" line.
        sed -n '/ERROR: \|==ERROR\|runtime error:\|fuzz_[a-z]*: /,$p' "$log" | head -80
        ls -t "$BUILD/artifacts/$h-"* 2>/dev/null | head -1 | sed 's/^/fuzz: input: /'
    fi
done
if [ -n "$failed" ]; then
    echo "fuzz: found something in:$failed"
    exit 1
fi
echo "fuzz: nothing found"

#!/bin/bash
# The benchmark harness at a tiny size: it runs, every row has its numbers.
# No time is asserted (bench/run.sh prints them; make bench runs it full size).
PORT=47109
PROG=1061000009
. "$(dirname "$0")/../lib.sh"

[ -x "$TOP/$BUILD/bench/bench" ] || bail "build the benchmark tool first (make check does)"
BENCH_PORT=$PORT BENCH_PROG=$PROG BUILD=$BUILD TMPDIR="$TMP" bash "$TOP/bench/run.sh" --tiny \
    >"$TMP/table.txt" 2>"$TMP/err"
ok $? "bench/run.sh --tiny runs to the end"
[ -s "$TMP/err" ] && sed 's/^/# /' "$TMP/err"
rows=$(grep -c '^[1-7]\. ' "$TMP/table.txt")
is "$rows" 19 "the table has a row for every figure of the seven targets, and the disk"
# Every row: a measured figure and a reference above zero, a ratio, a verdict.
bad=$(grep '^[1-7]\. ' "$TMP/table.txt" | awk '{
        # columns from the right: peak, verdict (one or three words), target, ratio, unit, reference, measured
        n = NF; if ($(n - 1) == "MISSED" || $(n - 2) == "by") off = 2; else off = 0
        if ($(n - 3 - off) !~ /^[0-9.]+x$/ || $(n - 5 - off) + 0 <= 0 || $(n - 6 - off) + 0 <= 0) print }')
is "$bad" "" "every row has a measured figure, a reference and a ratio"
like "$(tail -1 "$TMP/table.txt")" "19 rows, * missed" "the summary line counts rows and misses"
grep -q "peak MB" "$TMP/table.txt"; ok $? "the server's peak memory is a column"
# The server the harness started is gone.
left=$(pgrep -f -- "--port $PORT" | wc -l)
is "$left" 0 "the harness stopped its server"
done_testing

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
rows=$(grep -cE '^[0-9]+\. ' "$TMP/table.txt")
is "$rows" 47 "the table has a row for every figure of the thirteen groups"
groups=$(grep -oE '^[0-9]+\.' "$TMP/table.txt" | sort -un | tr -d . | tr '\n' ' ')
is "$groups" "1 2 3 4 5 6 7 8 9 10 11 12 13 " "the row groups are numbered 1 to 13"
# Every row: a measured figure (a time or a rate above zero; memory above idle
# and idle CPU may be 0), a reference above zero, a ratio, a verdict.
bad=$(grep -E '^[0-9]+\. ' "$TMP/table.txt" | awk '{
        # columns from the right: peak, verdict (one or three words), target, ratio, unit, reference, measured
        n = NF; if ($(n - 1) == "MISSED" || $(n - 2) == "by") off = 2; else off = 0
        m = $(n - 6 - off); unit = $(n - 4 - off)
        if ($(n - 3 - off) !~ /^[0-9.]+x$/ || $(n - 5 - off) + 0 <= 0 || m !~ /^[0-9]+(\.[0-9]+)?$/ ||
            (m + 0 <= 0 && unit != "MB" && unit != "%core")) print }')
is "$bad" "" "every row has a measured figure, a reference and a ratio"
like "$(tail -1 "$TMP/table.txt")" "47 rows, * missed" "the summary line counts rows and misses"
grep -q "peak MB" "$TMP/table.txt"; ok $? "the server's peak memory is a column"
# The servers the harness started are gone: imgprocd, and the bare rpcgen one.
left=$(pgrep -f -- "--port $PORT" | wc -l)
is "$left" 0 "the harness stopped its server"
left=$(pgrep -f -- "/bare $((PORT + 60))\$" | wc -l)
is "$left" 0 "the harness stopped the bare rpcgen server"

# The shared queue's benchmark (bench/cluster.sh, also in make bench): a real
# PostgreSQL and three hosts, as root with PostgreSQL 15 installed.
if [ "$(id -u)" -ne 0 ] || [ ! -x /usr/lib/postgresql/15/bin/initdb ]; then
    echo "ok $((NTEST += 1)) # SKIP bench/cluster.sh needs root and PostgreSQL 15"
else
    BUILD=$BUILD TMPDIR="$TMP" bash "$TOP/bench/cluster.sh" --tiny >"$TMP/cluster.txt" 2>"$TMP/err"
    ok $? "bench/cluster.sh --tiny runs to the end"
    [ -s "$TMP/err" ] && sed 's/^/# /' "$TMP/err"
    is "$(grep -cE '^Q\. ' "$TMP/cluster.txt")-$(grep -cE '^C\. ' "$TMP/cluster.txt")-$(grep -cE '^H\. ' "$TMP/cluster.txt")" \
       "13-23-3" "its rows: 13 of the queue alone, 23 of 1 to 3 hosts, 3 of hosts per database"
    # Every row: a measured figure and a reference above zero, and a ratio.
    bad=$(grep -E '^[QCH]\. ' "$TMP/cluster.txt" | awk '{ n = NF
            if ($n !~ /^[0-9.]+x$/ || $(n - 2) + 0 <= 0 || $(n - 3) + 0 <= 0) print }')
    is "$bad" "" "... each with a measured figure, a reference and a ratio"
    like "$(tail -2 "$TMP/cluster.txt" | head -1)" "39 rows;*" "... and the summary counts them"
fi
done_testing

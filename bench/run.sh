#!/bin/bash
# bench/run.sh - imgproc's benchmarks: one table of measured figures beside their
# references (in-process libvips, timed in the same run) and the ratio.
#
#   bash bench/run.sh           the full run: 1, 9 and 100 MP images, 200 MB transfers
#   bash bench/run.sh --tiny    a seconds-long run at tiny sizes: proves the harness works
#
# Times are medians of several runs after a warm-up (bench/bench.c).  The
# server's peak resident memory (VmHWM, reset before each phase through
# /proc/PID/clear_refs) is printed for every phase.  Nothing here asserts a
# time: a missed target is printed as MISSED with the margin.
set -u
BUILD=${BUILD:-build}
TOP=$(cd "$(dirname "$0")/.." && pwd)
BENCH="$TOP/$BUILD/bench/bench"
IMGPROCD="$TOP/$BUILD/imgprocd"
export BENCH_PORT=${BENCH_PORT:-47190}
export BENCH_PROG=${BENCH_PROG:-1061000090}

if [ "${1:-}" = "--tiny" ]; then
    SIZES="S=200x150 M=600x400 L=1200x1000"; RUNS=1; RATE_CALLS=4; NULLS=2000
    TRANSFER_MB=8; MIXED=(10 100); IMG="$TOP/$BUILD/bench/img-tiny"
else
    SIZES="S=1000x1000 M=3000x3000 L=10000x10000"; RUNS=5; RATE_CALLS=48; NULLS=50000
    TRANSFER_MB=200; MIXED=(100 1000); IMG="$TOP/$BUILD/bench/img"
fi
[ -x "$BENCH" ] && [ -x "$IMGPROCD" ] || { echo "bench: build first (make bench)" >&2; exit 2; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/imgproc-bench.XXXXXX")
SERVER_PID=
WEB_PID=
cleanup() {
    [ -n "$WEB_PID" ] && kill -TERM "$WEB_PID" 2>/dev/null && wait "$WEB_PID" 2>/dev/null
    [ -n "$SERVER_PID" ] && kill -TERM "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
fail() { echo "bench: $*" >&2; exit 1; }

# ---- images: photo-like, made once and kept (they take a while at 100 MP)
mkdir -p "$IMG"
for s in $SIZES; do
    name=${s%%=*}; wh=${s#*=}
    # "9 MP": how the rows name each size.
    declare "MP_$name=$(awk -v w="${wh%x*}" -v h="${wh#*x}" 'BEGIN { printf "%.3g MP", w * h / 1e6 }')"
    for ext in jpg png; do
        f="$IMG/$name.$ext"
        [ -s "$f" ] || "$BENCH" gen "${wh%x*}" "${wh#*x}" "$f" || fail "cannot make $f"
    done
done
# A file of TRANSFER_MB for the transfers: an uncompressed TIFF of noise (three
# independent bands, so that the task's result, deflated, stays as large).
side=$(awk -v mb="$TRANSFER_MB" 'BEGIN { printf "%d", sqrt(mb * 1e6 / 3) }')
XFER="$IMG/transfer-$TRANSFER_MB.tif"
if [ ! -s "$XFER" ]; then
    for b in r g b; do
        vips gaussnoise "$TMP/$b.v" "$side" "$side" --sigma 60 || fail "cannot make noise"
    done
    vips bandjoin "$TMP/r.v $TMP/g.v $TMP/b.v" "$TMP/c.v" &&
        vips cast "$TMP/c.v" "$XFER" uchar || fail "cannot make $XFER"
    rm -f "$TMP"/*.v
fi

# ---- the server: private port and program, no rpcbind needed
mkfifo "$TMP/ready"
"$IMGPROCD" --no-rpcbind --program "$BENCH_PROG" --port "$BENCH_PORT" --state-dir "$TMP/state" \
    --max-upload-bytes 2G >"$TMP/ready" 2>"$TMP/server.log" &
SERVER_PID=$!
read -r line <"$TMP/ready" || true
case "$line" in "imgprocd: ready"*) ;; *) cat "$TMP/server.log" >&2; fail "the server did not start" ;; esac

# Peak resident memory of the server since the last reset, in MB.
peak_reset() { echo 5 >"/proc/$SERVER_PID/clear_refs"; }
peak_mb() { awk '/^VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$SERVER_PID/status"; }
rss_mb() { awk '/^VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$SERVER_PID/status"; }

# row NAME MEASURED REFERENCE UNIT SENSE TARGET PEAK
#   SENSE "le": the ratio measured/reference must be <= TARGET; "ge": >= TARGET.
ROWS=0; MISSED=0
row() {
    local ratio verdict
    ratio=$(awk -v m="$2" -v r="$3" 'BEGIN { printf "%.2f", (r > 0) ? m / r : 0 }')
    verdict=$(awk -v q="$ratio" -v t="$6" -v s="$5" 'BEGIN {
        if (t == "-") { print "-"; exit }
        if (s == "le") { if (q <= t) print "ok"; else printf "MISSED by %.0f%%\n", (q / t - 1) * 100 }
        else           { if (q >= t) print "ok"; else printf "MISSED by %.0f%%\n", (1 - q / t) * 100 } }')
    case "$verdict" in MISSED*) MISSED=$((MISSED + 1)) ;; esac
    ROWS=$((ROWS + 1))
    printf '%-48s %11s %11s %-5s %6sx %-7s %-15s %6s\n' "$1" "$2" "$3" "$4" "$ratio" \
        "$([ "$6" = - ] && echo - || echo "$([ "$5" = le ] && echo '<=' || echo '>=')$6")" "$verdict" "$7"
}

ncores=$(nproc)
echo "imgproc benchmarks: $ncores cores, $(vips --version), median of $RUNS runs after a warm-up"
echo "reference: the server's own image code (ops_process) in this process, same bytes, same run"
echo
printf '%-48s %11s %11s %-5s %7s %-7s %-15s %6s\n' "" measured reference unit ratio target verdict "peak MB"

# 1. each operation over TCP against in-process, on the 9 MP JPEG (alternated)
for op in grayscale resize=100x100 rotate=127 blur=5 blur=5,grayscale; do
    peak_reset
    read -r m r < <("$BENCH" compare call ref "$IMG/M.jpg" "$op" "$RUNS") || fail "compare $op"
    row "1. $op, $MP_M JPEG, TCP vs in-process" "$m" "$r" s le 1.10 "$(peak_mb)"
done

# 2. grayscale against a plain decode and encode (both in-process, alternated)
for ext in jpg png; do
    read -r g c < <("$BENCH" compare ref codec "$IMG/M.$ext" grayscale "$RUNS") || fail "grayscale"
    row "2. grayscale vs decode+encode, $MP_M ${ext^^}" "$g" "$c" s le 1.00 "-"
done

# 3. throughput: 4 connections against 1, on the 1 MP JPEG.  Two kinds of
# work: a resize is codec-bound (one core per request); blur+grayscale is
# work libvips already spreads over every core for a lone request.
for op in resize=100x100 blur=5,grayscale; do
    peak_reset
    one=$("$BENCH" rate "$IMG/S.jpg" "$op" 1 "$RATE_CALLS" 3) || fail "rate 1"
    four=$("$BENCH" rate "$IMG/S.jpg" "$op" 4 "$RATE_CALLS" 3) || fail "rate 4"
    row "3. $op, 4 conns vs 1, $MP_S" "$four" "$one" img/s ge 1.80 "$(peak_mb)"
done

# 4. NULL calls on one connection
peak_reset
sync=$("$BENCH" null sync "$NULLS" "$RUNS") || fail "null sync"
row "4. NULL calls/s, synchronous (target 20000)" "$sync" 20000 1/s ge 1.00 "$(peak_mb)"
peak_reset
batched=$("$BENCH" null batched $((NULLS * 4)) "$RUNS") || fail "null batched"
row "4. NULL calls/s, batched vs synchronous" "$batched" "$sync" 1/s ge 10.0 "$(peak_mb)"

# 5. memory: resize of the 100 MP JPEG; then mixed requests on the 1 MP JPEG
peak_reset
read -r m r < <("$BENCH" compare call ref "$IMG/L.jpg" resize=100x100 "$([ "$RUNS" -gt 3 ] && echo 3 || echo "$RUNS")") ||
    fail "compare 100 MP"
p=$(peak_mb)
row "5. resize $MP_L JPEG, TCP vs in-process" "$m" "$r" s le 1.10 "$p"
row "5. server peak memory, resize $MP_L JPEG" "$p" 250 MB le 1.00 "$p"
"$BENCH" mixed "$IMG/S.jpg" "${MIXED[0]}" >/dev/null || fail "mixed"
after_few=$(rss_mb)
"$BENCH" mixed "$IMG/S.jpg" $((MIXED[1] - MIXED[0])) >/dev/null || fail "mixed"
after_many=$(rss_mb)
row "5. server memory after ${MIXED[1]} vs ${MIXED[0]} requests" "$after_many" "$after_few" MB le 1.20 "$(peak_mb)"

# 6. chunked upload and download of the transfer file.  First the disk: the
# same bytes written, then fsynced, in this process.  An upload is durable
# (fsync) before its last reply too, but starts each chunk's writeback at once.
disk=$("$BENCH" disk "$XFER" "$TMP/state") || fail "disk"
peak_reset
read -r up down bytes < <("$BENCH" transfer "$XFER") || fail "transfer"
[ "$bytes" -gt $((TRANSFER_MB * 900000)) ] || fail "the result was only $bytes bytes"
row "6. upload $TRANSFER_MB MB in 1 MiB chunks (MB/s)" "$up" 500 MB/s ge 1.00 "$(peak_mb)"
row "6. download $TRANSFER_MB MB in 1 MiB chunks (MB/s)" "$down" 500 MB/s ge 1.00 "$(peak_mb)"
row "6. upload vs local write-then-fsync, same file" "$up" "$disk" MB/s ge - "-"

# 7. the web gateway's own cost: the same PROCESS through imgproc-web (HTTP in,
# ONC RPC on, the image copied through) against calling imgprocd directly, both
# on kept-alive connections, alternated.
export BENCH_WEB_PORT=${BENCH_WEB_PORT:-$((BENCH_PORT + 1))}
mkfifo "$TMP/web.ready"
"$TOP/$BUILD/imgproc-web" -p "$BENCH_PORT" --program "$BENCH_PROG" \
    --listen "127.0.0.1:$BENCH_WEB_PORT" >"$TMP/web.ready" 2>"$TMP/web.log" &
WEB_PID=$!
read -r line <"$TMP/web.ready" || true
case "$line" in "imgproc-web: ready"*) ;; *) cat "$TMP/web.log" >&2; fail "the gateway did not start" ;; esac
for op in grayscale resize=800x800; do
    peak_reset
    read -r w c < <("$BENCH" compare web call "$IMG/M.jpg" "$op" "$RUNS") || fail "compare web $op"
    row "7. $op, $MP_M JPEG, HTTP gateway vs RPC" "$w" "$c" s le 1.25 "$(peak_mb)"
done

echo
echo "$ROWS rows, $MISSED missed"

#!/bin/bash
# bench/run.sh - imgproc's benchmarks: one table of measured figures beside their
# references (in-process libvips, the users' own tools, a bare rpcgen server,
# a raw TCP ping-pong, timed in the same run) and the ratio.
#
#   bash bench/run.sh           the full run: 1, 9 and 100 MP images, a real 13 MP
#                               photograph, 200 MB transfers (about 5 minutes)
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

export BENCH_BARE_PORT=${BENCH_BARE_PORT:-$((BENCH_PORT + 60))}
export BENCH_BARE_PROG=${BENCH_BARE_PROG:-$((BENCH_PROG + 1))}

# PHOTO: a real photograph from the corpus (rows 8, 9 and 13).  FLIGHT_RUNS:
# runs at 1 and at 4 in flight; CLI_RUNS: runs of each command line; NULL_CALLS:
# calls per run in row 10; IDLE: seconds of row 11; SCALE: calls and runs of row 13.
if [ "${1:-}" = "--tiny" ]; then
    SIZES="S=200x150 M=600x400 L=1200x1000"; RUNS=1; RATE_CALLS=4; NULLS=2000
    TRANSFER_MB=8; MIXED=(10 100); IMG="$TOP/$BUILD/bench/img-tiny"
    PHOTO_NAME=jpeg-orient-1.jpg; FLIGHT_RUNS=(1 1); CLI_RUNS=1; NULL_CALLS=1000
    IDLE=0.5; SCALE=(8 1)
else
    SIZES="S=1000x1000 M=3000x3000 L=10000x10000"; RUNS=5; RATE_CALLS=48; NULLS=50000
    TRANSFER_MB=200; MIXED=(100 1000); IMG="$TOP/$BUILD/bench/img"
    PHOTO_NAME=jpeg-13mp-photo.jpg; FLIGHT_RUNS=(5 3); CLI_RUNS=3; NULL_CALLS=10000
    IDLE=5; SCALE=(16 2)
fi
[ -x "$BENCH" ] && [ -x "$IMGPROCD" ] || { echo "bench: build first (make bench)" >&2; exit 2; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/imgproc-bench.XXXXXX")
SERVER_PID=
WEB_PID=
BARE_PID=
cleanup() {
    [ -n "$BARE_PID" ] && kill -TERM "$BARE_PID" 2>/dev/null && wait "$BARE_PID" 2>/dev/null
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

# ---- a real photograph: the project's corpus (fetched once by tests/corpus/fetch.sh).
# It holds no real 9 MP photograph (jpeg-9mp-art.jpg is rendered artwork, the
# 21 MP one was upscaled by the corpus script): the full run takes the largest
# JPEG straight from a camera, jpeg-13mp-photo.jpg (3120x4208, a phone's, 4:2:0).
CORPUS=$(bash "$TOP/tests/corpus/fetch.sh" --quiet) ||
    fail "the real-image corpus is needed for rows 8, 9 and 13: make corpus"
PHOTO="$CORPUS/$PHOTO_NAME"
[ -s "$PHOTO" ] || fail "$PHOTO is missing: make corpus"
PHOTO_MP=$(vipsheader -f width "$PHOTO" 2>/dev/null |
    awk -v h="$(vipsheader -f height "$PHOTO" 2>/dev/null)" '{ printf "%.2g MP", $1 * h / 1e6 }')

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
peak_kb() { awk '/^VmHWM/ { print $2 }' "/proc/$SERVER_PID/status"; }
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$SERVER_PID/status"; }

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
    printf '%-72s %11s %11s %-5s %6sx %-7s %-15s %6s\n' "$1" "$2" "$3" "$4" "$ratio" \
        "$([ "$6" = - ] && echo - || echo "$([ "$5" = le ] && echo '<=' || echo '>=')$6")" "$verdict" "$7"
}

ncores=$(nproc)
echo "imgproc benchmarks: $ncores cores, $(vips --version), median of $RUNS runs after a warm-up"
echo "(fewer where a run is long: row 8 at 4 in flight ${FLIGHT_RUNS[1]}, row 9 $CLI_RUNS, row 13 ${SCALE[1]} runs of ${SCALE[0]} calls)"
echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg) (figures from a busy machine vary)"
echo "reference: the server's own image code (ops_process) in this process, same bytes, same run;"
echo "rows 8-13: libvips used directly the fastest way it knows, vipsthumbnail and the vips CLI,"
echo "a bare rpcgen server, a raw TCP ping-pong; real photo: $PHOTO_NAME ($PHOTO_MP)"
echo
printf '%-72s %11s %11s %-5s %7s %-7s %-15s %6s\n' "" measured reference unit ratio target verdict "peak MB"

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
row "5. server memory after ${MIXED[1]} vs ${MIXED[0]} requests" "$after_many" "$after_few" MB le 1.10 "$(peak_mb)"

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
# The gateway keeps connections to the server: it must be gone (waited for
# before row 11) when the server is measured idle.  It takes a while to stop.
kill -TERM "$WEB_PID"

# 8. each single call on the real photograph against libvips used directly, the
# fastest way it knows (bench.c, run_best): a resize into a box is
# vips_thumbnail_buffer (shrink-on-load); the others are the same operations
# with the loader options they allow.  1 in flight: call against call,
# alternated; 4 in flight: 4 client threads (4 connections) against 4
# in-process threads, batches alternated.  Seconds per image.
for op in grayscale resize=800x800 blur=5 rotate=127 autorot,resize=800x800,grayscale; do
    case "$op" in *resize*) what=thumbnail ;; *) what=libvips ;; esac
    for n in 1 4; do
        peak_reset
        read -r m r < <("$BENCH" flight call best "$PHOTO" "$op" "$n" "$n" \
            "${FLIGHT_RUNS[$((n > 1))]}") || fail "flight $op $n"
        row "8. $op, real $PHOTO_MP, $n in flight vs $what" "$m" "$r" s le 1.10 "$(peak_mb)"
    done
done

# 9. the same photograph the way users would do it without imgproc: a
# program run per file (vipsthumbnail, the vips CLI) against the imgproc
# client run per file, at the same JPEG quality (85, the server's default).
IMGPROC="$TOP/$BUILD/imgproc -p $BENCH_PORT --program $BENCH_PROG"
O="$TMP/cli"
mkdir -p "$O"
cli_row() {     # OPERATION IMGPROC_ARGS THEIR_COMMAND THEIR_NAME
    local a b
    peak_reset
    read -r a b < <("$BENCH" shell "$CLI_RUNS" "$IMGPROC $2 -o $O/a.jpg $PHOTO" "$3") ||
        fail "command lines for $1"
    row "9. $1, real $PHOTO_MP, run per file: imgproc vs $4" "$a" "$b" s le - "$(peak_mb)"
}
cli_row resize=800x800 "resize --width 800 --height 800" \
    "vipsthumbnail $PHOTO --size '800x800>' -o '$O/b.jpg[Q=85]'" vipsthumbnail
cli_row grayscale grayscale "vips colourspace $PHOTO '$O/b.jpg[Q=85]' b-w" "vips colourspace"
cli_row blur=5 "blur --sigma 5" "vips gaussblur $PHOTO '$O/b.jpg[Q=85]' 5" "vips gaussblur"
cli_row rotate=127 "rotate --angle 127" "vips rotate $PHOTO '$O/b.jpg[Q=85]' 127" "vips rotate"

# 10. NULL calls on one connection (AUTH_NONE: 44 bytes out, 28 back) to
# imgprocd, to a bare rpcgen server of a NULL-only program (bench/bare: rpcgen
# -m's dispatch and svc_run, built here, on a fixed port: no rpcbind), and a
# raw blocking TCP ping-pong of the same bytes: what imgprocd's short spin
# (polling before it sleeps) buys.  Runs alternated.
mkdir "$TMP/bare"
cp "$TOP/bench/bare/bare.x" "$TOP/bench/bare/main.c" "$TMP/bare/"
(cd "$TMP/bare" && rpcgen -DBARE_PROGRAM="$BENCH_BARE_PROG" -C -h -o bare.h bare.x &&
    rpcgen -DBARE_PROGRAM="$BENCH_BARE_PROG" -C -m -o bare_svc.c bare.x &&
    cc -O2 -o bare bare_svc.c main.c $(pkg-config --cflags --libs libtirpc)) >"$TMP/bare.log" 2>&1 ||
    { cat "$TMP/bare.log" >&2; fail "cannot build the bare rpcgen server"; }
mkfifo "$TMP/bare.ready"
"$TMP/bare/bare" "$BENCH_BARE_PORT" >"$TMP/bare.ready" 2>"$TMP/bare.err" &
BARE_PID=$!
read -r line <"$TMP/bare.ready" || true
case "$line" in "bare: ready"*) ;; *) cat "$TMP/bare.err" >&2; fail "the bare rpcgen server did not start" ;; esac
peak_reset
read -r ours bare raw < <("$BENCH" nulls "$NULL_CALLS" "$RUNS" "$BENCH_BARE_PORT" "$BENCH_BARE_PROG") ||
    fail "nulls"
kill -TERM "$BARE_PID" && wait "$BARE_PID" 2>/dev/null
BARE_PID=
row "10. NULL calls/s: imgprocd vs a bare rpcgen server" "$ours" "$bare" 1/s ge 2.00 "$(peak_mb)"
row "10. NULL calls/s: imgprocd vs raw blocking TCP ping-pong" "$ours" "$raw" 1/s ge - "-"
row "10. NULL calls/s: bare rpcgen vs raw blocking TCP ping-pong" "$bare" "$raw" 1/s ge - "-"

# 11. what the spin costs an idle server: its CPU (every thread, /proc/PID/stat)
# over IDLE seconds with no client at all (it must not spin), then with one
# client connected that made a call and waits.  Percent of one core; the
# second row's reference is a whole core (what a server spinning on would take).
wait "$WEB_PID" 2>/dev/null
WEB_PID=
alone=$("$BENCH" idle "$SERVER_PID" "$IDLE" alone) || fail "idle"
row "11. server CPU, idle, no client (% of a core)" "$alone" 1 %core le 1.00 "-"
conn=$("$BENCH" idle "$SERVER_PID" "$IDLE" connected) || fail "idle"
row "11. server CPU, idle, one client connected (% of a core)" "$conn" 100 %core le - "-"

# 12. streaming: the transfer file in and out of a task with the real client
# (task create --upload, task upload, task wait, task result -o FILE).  The
# server's peak (VmHWM) above its resident size just before; each client's
# peak (ru_maxrss, from wait4) above that of the same client making one small
# call (task status).
peak_reset
idle_kb=$(rss_kb)
id=$($IMGPROC task create --steps flip --upload "$XFER") || fail "task create --upload"
"$BENCH" maxrss $IMGPROC task status "$id" >"$TMP/status.out" || fail "task status"
client_idle=$(tail -1 "$TMP/status.out")
"$BENCH" maxrss $IMGPROC --quiet task upload "$id" "$XFER" >"$TMP/upload.out" || fail "task upload"
client_up=$(tail -1 "$TMP/upload.out")
$IMGPROC task wait "$id" >/dev/null || fail "task wait"
"$BENCH" maxrss $IMGPROC --quiet task result "$id" -o "$TMP/result.tif" >"$TMP/result.out" ||
    fail "task result"
client_down=$(tail -1 "$TMP/result.out")
server_kb=$(peak_kb)
[ "$(stat -c %s "$TMP/result.tif")" -gt $((TRANSFER_MB * 900000)) ] || fail "the task's result is short"
rm -f "$TMP/result.tif"
$IMGPROC task delete "$id" >/dev/null || fail "task delete"
mb() { awk -v k="$1" 'BEGIN { printf "%.0f", (k > 0 ? k : 0) / 1024 }'; }
row "12. server peak above idle, $TRANSFER_MB MB in and out of a task" "$(mb $((server_kb - idle_kb)))" \
    150 MB le 1.00 "$(mb "$server_kb")"
row "12. client peak above idle, task upload of $TRANSFER_MB MB" "$(mb $((client_up - client_idle)))" \
    150 MB le 1.00 "-"
row "12. client peak above idle, task result of $TRANSFER_MB MB" "$(mb $((client_down - client_idle)))" \
    150 MB le 1.00 "-"

# 13. throughput as calls in flight grow (each a connection), on the
# photograph: a resize (mostly decoding, one core per call) and a blur
# (libvips spreads one call over every core).  The reference is 1 in flight.
for op in resize=800x800 blur=5; do
    peak_reset
    one=$("$BENCH" rate "$PHOTO" "$op" 1 "${SCALE[0]}" "${SCALE[1]}") || fail "rate $op 1"
    for n in 2 4 8; do
        more=$("$BENCH" rate "$PHOTO" "$op" "$n" "${SCALE[0]}" "${SCALE[1]}") || fail "rate $op $n"
        row "13. $op, real $PHOTO_MP, $n in flight vs 1" "$more" "$one" img/s ge - "$(peak_mb)"
    done
done

echo
echo "$ROWS rows, $MISSED missed"

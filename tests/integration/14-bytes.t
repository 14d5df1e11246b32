#!/bin/bash
# Bytes on the wire cannot exhaust memory.  A call's image size is checked
# as it is decoded, before its bytes are read (20 calls of 60 MB against
# --max-request-bytes 1M peaked at 1.1 GB when the check came after
# decoding), and the image bytes of all calls in flight share one budget,
# --max-inflight-bytes: beyond it a call waits, then is refused as busy.
PORT=47114
PROG=1061000014
. "$(dirname "$0")/../lib.sh"

peak_kb() {     # the server's peak resident memory so far, in KiB
    awk '/^VmHWM:/ { print $2 }' "/proc/$SERVER_PID/status"
}

peak_within() {  # peak_within BASE-KIB MAX-GROWTH-KIB DESCRIPTION
    local peak
    peak=$(peak_kb)
    echo "# server peak $((peak / 1024)) MiB, before $(($1 / 1024)) MiB: grew $(( (peak - $1) / 1024 )) MiB"
    if [ -n "$IMGPROCD_WRAPPER" ] || ldd "$IMGPROCD" | grep -q libasan; then
        echo "ok $((NTEST += 1)) # SKIP $3: valgrind's or ASan's memory is not the server's"
        return
    fi
    [ $((peak - $1)) -lt "$2" ]
    ok $? "$3"
}

ensure_rpcbind

# 1. Over --max-request-bytes: refused at the length, before the bytes are read.
start_server --max-request-bytes 1M --max-connections-per-address 0
base=$(peak_kb)
"$HOSTILE" $PORT $PROG junk-calls 20 60000000 >"$TMP/junk"
is "$(grep -c '^too-large: the call carries 60000000 bytes; this server accepts at most 1048576 (--max-request-bytes)$' "$TMP/junk")" \
   20 "20 calls of 60 MB at once are refused as too-large, each naming the limit"
peak_within "$base" 51200 "... and the server's peak memory grew by less than 50 MiB (1.1 GB before the fix)"
like "$(cli ping)" "ok:*" "the server answers afterwards"
stop_server

# 2. The budget: 4 calls of 30 MB at once against a 64 MB budget (of which
#    one address may hold 48 MB: a quarter, but at least one call of the
#    largest size) take their turns; all are answered (the zeros are no
#    image), none refused.
start_server --max-request-bytes 48M --max-inflight-bytes 64M --min-receive-rate 0
base=$(peak_kb)
"$HOSTILE" $PORT $PROG junk-calls 4 30000000 >"$TMP/junk"
is "$(grep -c '^unsupported-format:' "$TMP/junk")" 4 "4 calls of 30 MB against a 64 MB budget: all answered (not an image)"
peak_within "$base" 102400 "... and the server's peak grew by less than 100 MiB (with a 1 GB budget: 130)"

# 3. A sender that stalls holding 30 MB of the budget: a 40 MB call waits
#    for room, then is refused as busy, naming the flag; once the stalled
#    connection goes, the budget is free again.  (--min-receive-rate 0: the
#    stalled sender is not closed for its slowness here.)
mkfifo "$TMP/stalled"
exec 7> >("$HOSTILE" $PORT $PROG stall-bytes 30000000 1000000 >"$TMP/stalled")
read -r line <"$TMP/stalled"
is "$line" "sent" "a call declaring 30 MB sent 1 MB and stalled"
inflight() {
    cli info --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["guard"]["inflight_bytes"])'
}
# Until the server holds the stalled call's share (polling, not sleeping).
for i in $(seq 1000); do [ "$(inflight)" -ge 30000000 ] && break; done
is "$(inflight)" 30000000 "... and holds 30 MB of the budget (info says so)"
like "$("$HOSTILE" $PORT $PROG junk-calls 1 40000000)" "busy: *--max-inflight-bytes 67108864*" \
   "a 40 MB call beside it waits, then is refused as busy, naming the flag"
exec 7>&-
like "$("$HOSTILE" $PORT $PROG junk-calls 1 40000000)" "unsupported-format:*" \
     "with the stalled sender gone, it is answered"
stop_server

# 4. --max-request-bytes bounds images, not a task's upload chunks (1 MiB,
#    bounded by imgproc.x): a 2 MB upload still works with a 512K limit.
start_server --max-request-bytes 512K
make_photo "$TMP/big.jpg" 1600 1200
size=$(stat -c %s "$TMP/big.jpg")
id=$(cli task create --steps flip "$TMP/big.jpg")
ok $? "a task of a $size-byte image is created in chunks with --max-request-bytes 512K"
cli task wait "$id" >/dev/null
cli task result "$id" -o "$TMP/flipped.jpg"
is "$?-$(hdr width "$TMP/flipped.jpg")x$(hdr height "$TMP/flipped.jpg")" "0-1600x1200" "... and its result comes back"
stop_server
is "$STOP_STATUS" 0 "the server stops cleanly"
done_testing

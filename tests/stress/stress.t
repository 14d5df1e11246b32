#!/bin/bash
# make check-stress: the hostile-caller attacks at full size, with the figures
# they are judged by printed (seconds a legitimate client waited, peak memory,
# CPU spent after a cancel).  Outcomes are checked; times are only printed,
# never asserted (they depend on the machine).
PORT=47120
PROG=1061000020
. "$(dirname "$0")/../lib.sh"

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
peak_mib() { awk '/^VmHWM:/ { printf "%d", $2 / 1024 }' "/proc/$SERVER_PID/status"; }
cpu_s() {   # the server's CPU seconds so far (user + system)
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$SERVER_PID/stat"
}
in_progress() {
    cli info --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["load"]["calls_in_progress"])'
}
figure() { echo "# figure: $*"; echo "$*" >>"$TMP/figures"; }

ensure_rpcbind
make_photo "$TMP/photo.jpg" 1024 768
vips black "$TMP/flat.v" 12000 12000 && vips pngsave "$TMP/flat.v" "$TMP/bomb.png" ||
    bail "cannot make the test image"
rm -f "$TMP/flat.v"

# 1. Connection floods: 300 idle, stalled or trickling connections, from the
#    client's own address (no per-address cap) and from another (the cap).
for where in same other; do
    if [ $where = same ]; then
        start_server --max-connections-per-address 0; src=
    else
        start_server; src=127.0.0.2
    fi
    for mode in idle stalled trickle; do
        rm -f "$TMP/held"; mkfifo "$TMP/held"
        exec 7> >(HOSTILE_SOURCE=$src "$HOSTILE" $PORT $PROG "hold-$mode" >"$TMP/held")
        read -r line <"$TMP/held"
        t0=$(now)
        out=$(cli ping)
        t_ping=$(since "$t0")
        t0=$(now)
        cli grayscale "$TMP/photo.jpg" -o "$TMP/g.jpg"
        rc=$?
        t_gray=$(since "$t0")
        like "$out" "ok:*" "$line $mode connections ($where address): a new client is served"
        is "$rc-$(hdr bands "$TMP/g.jpg")" "0-1" "... a grayscale too"
        figure "300 $mode connections from the $where address: ping waited ${t_ping} s, 1024x768 grayscale ${t_gray} s"
        exec 7>&-
        rm -f "$TMP/g.jpg"
    done
    stop_server
done

# 2. The CPU bomb: blur sigma 1000 on a 12000x12000 single-colour PNG.
start_server
t0=$(now)
cli blur --sigma 1000 "$TMP/bomb.png" -o "$TMP/x.png" 2>"$TMP/err"
is "$?" 1 "the bomb is refused by the blur work limit"
figure "blur sigma 1000 on 144 MP refused in $(since "$t0") s: $(cat "$TMP/err")"
stop_server
start_server --max-blur-work 100000000
cpu0=$(cpu_s)
cli --timeout 2 blur --sigma 1000 "$TMP/bomb.png" -o "$TMP/x.png" 2>/dev/null
is "$?" 3 "without the work limit, a client that gives up after 2 s exits 3"
cpu1=$(cpu_s)
t0=$(now)
for i in $(seq 2000); do [ "$(in_progress)" = 1 ] && break; done
is "$(in_progress)" 1 "... and its blur is stopped"
cpu2=$(cpu_s)
figure "bomb without the work limit, client gone after 2 s: server CPU $(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN{print b-a}') s until then, $(awk -v a="$cpu1" -v b="$cpu2" 'BEGIN{print b-a}') s after the cancel, stopped within $(since "$t0") s"

# 3. UDP while the bomb runs over TCP: image calls refused, retransmissions
#    answered once, NULL answered at once.
cli --timeout 30 blur --sigma 1000 "$TMP/bomb.png" -o "$TMP/x.png" 2>/dev/null &
bomb=$!
for i in $(seq 1000); do [ "$(in_progress)" = 2 ] && break; done
is "$(in_progress)" 2 "a blur bomb runs over TCP (info counts itself too)"
vips black "$TMP/tiny.v" 8 8 && vips pngsave "$TMP/tiny.v" "$TMP/tiny.png"
like "$("$HOSTILE" $PORT $PROG udp-image "$TMP/tiny.png")" "invalid-argument:*use TCP*" \
     "an image call over UDP is refused at once, naming TCP"
is "$("$HOSTILE" $PORT $PROG udp-retransmit "$TMP/tiny.png")" "ok ok" \
   "a call retransmitted over UDP is answered twice, run once"
t0=$(now)
like "$(cli -T udp ping)" "ok:*udp*" "a UDP ping is answered while a bomb runs over TCP"
figure "UDP ping while a blur bomb runs over TCP: $(since "$t0") s"
kill "$bomb" 2>/dev/null; wait "$bomb" 2>/dev/null
stop_server

# 4. Junk payloads: 60 calls of 60 MB at once.
start_server --max-request-bytes 1M --max-connections-per-address 0 --max-connections 100
base=$(peak_mib)
"$HOSTILE" $PORT $PROG junk-calls 60 60000000 >"$TMP/junk"
is "$(grep -c '^too-large:' "$TMP/junk")" 60 "60 calls of 60 MB against --max-request-bytes 1M: all too-large"
figure "60 x 60 MB junk calls, --max-request-bytes 1M: server peak $(peak_mib) MiB (idle $base MiB)"
stop_server
start_server --max-connections-per-address 0 --max-connections 100
base=$(peak_mib)
"$HOSTILE" $PORT $PROG junk-calls 60 60000000 >"$TMP/junk"
is "$(grep -vc '^too-large:\|^busy:\|^unsupported-format:' "$TMP/junk")" 0 "60 calls of 60 MB with the defaults: each answered, not an image or busy"
figure "60 x 60 MB junk calls, defaults (512 MiB budget): server peak $(peak_mib) MiB (idle $base MiB); $(grep -c '^busy:' "$TMP/junk") busy, $(grep -c '^unsupported-format:' "$TMP/junk") answered"
stop_server
is "$STOP_STATUS" 0 "the server stops cleanly"

echo "# ---- figures"
sed 's/^/#   /' "$TMP/figures"
done_testing

#!/bin/bash
# Many clients at once: a light call on another connection is answered during a long blur.
PORT=47104
PROG=1061000004
. "$(dirname "$0")/../lib.sh"

ensure_rpcbind
# The long call is one that cannot end by itself while the test runs: sigma
# 1000 on 144 megapixels is hours of work, allowed here, and stopped when its
# caller hangs up (11-budget.t shows that).  So "still running" below does not
# depend on how fast the machine is.
start_server --max-blur-work 1000000 --max-request-seconds 86400 --max-pixels 150000000
vips black "$TMP/flat.v" 12000 12000 && vips pngsave "$TMP/flat.v" "$TMP/big.png" ||
    bail "cannot make the 12000x12000 image"

("$IMGPROC" --program "$PROG" --timeout 86400 blur --sigma 1000 "$TMP/big.png" \
    -o "$TMP/blurred.png" 2>/dev/null; exit 0) &
BLUR=$!
# Wait until the server is working on it: SERVER_INFO counts calls in progress
# (the info call itself is one).  Bounded: the blur client may also fail fast.
busy=0
for _ in $(seq 1 2000); do
    if cli info --json | grep -q '"calls_in_progress": 2'; then busy=1; break; fi
    kill -0 $BLUR 2>/dev/null || break
done
is "$busy" 1 "the server reports the long blur in progress"

like "$(cli ping)" "ok:*" "ping answered during the blur"
make_photo "$TMP/photo.png" 3000 2000
like "$(cli identify "$TMP/photo.png")" "*: png 3000x2000*" "IMAGE_INFO answered during the blur"
cli grayscale "$TMP/photo.png" -o "$TMP/g.png"
is "$?-$(hdr bands "$TMP/g.png")" "0-1" "a grayscale done during the blur"
like "$(cli info --json | grep -o '"calls_in_progress": [0-9]*')" '"calls_in_progress": 2' \
     "the blur is still being worked on when those came back"
pkill -KILL -P $BLUR -x imgproc; wait $BLUR 2>/dev/null
wait_log "BLUR .* wrong-state"
ok $? "the blur stops once its caller has gone (logged as stopped)"

# Several clients at once all get correct answers.
make_photo "$TMP/small.png" 400 300
pids=
for i in 1 2 3 4 5 6; do
    cli resize --width 100 --height 100 "$TMP/small.png" -o "$TMP/r$i.png" & pids="$pids $!"
done
fails=0
for p in $pids; do wait $p || fails=$((fails + 1)); done
is "$fails" 0 "six concurrent clients all succeed"
is "$(for i in 1 2 3 4 5 6; do hdr width "$TMP/r$i.png"; done | sort -u)" "100" "and all results are right"

stop_server
is "$STOP_STATUS" 0 "server stopped cleanly"
done_testing

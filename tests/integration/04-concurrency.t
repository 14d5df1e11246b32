#!/bin/bash
# Many clients at once: a light call on another connection is answered during a long blur.
PORT=47104
PROG=1061000004
. "$(dirname "$0")/../lib.sh"

ensure_rpcbind
start_server
make_photo "$TMP/big.png" 3000 3000

# A blur that takes seconds, on its own connection.
# A generous timeout: under valgrind this blur takes minutes.
cli --timeout 1200 blur --sigma 60 "$TMP/big.png" -o "$TMP/blurred.png" &
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
like "$(cli identify "$TMP/big.png")" "*: png 3000x3000*" "IMAGE_INFO answered during the blur"
cli grayscale "$TMP/big.png" -o "$TMP/g.jpg"; ok $? "a grayscale done during the blur"
kill -0 $BLUR 2>/dev/null; ok $? "the blur was still running when those came back"
wait $BLUR; ok $? "the blur finished"
is "$(hdr width "$TMP/blurred.png")x$(hdr height "$TMP/blurred.png")" "3000x3000" "with the right size"

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

#!/bin/bash
# Connection exhaustion: 300 idle connections, or 300 that stopped in the
# middle of a call, against a table of 64, must not lock a legitimate client
# out.  When the table is full the server closes the quietest connection that
# is not working on a call.
PORT=47113
PROG=1061000013
. "$(dirname "$0")/../lib.sh"

ensure_rpcbind
make_photo "$TMP/photo.jpg" 320 240
start_server --max-connections 64

for mode in idle stalled; do
    mkfifo "$TMP/held-$mode"
    # The holder keeps its connections until its stdin (a pipe from here) closes.
    exec 7> >("$HOSTILE" $PORT $PROG "hold-$mode" >"$TMP/held-$mode")
    read -r line <"$TMP/held-$mode"
    like "$line" "held *" "300 $mode connections opened against a table of 64"
    like "$(cli ping)" "ok:*over tcp*" "a legitimate client is served while they are open ($mode)"
    cli grayscale "$TMP/photo.jpg" -o "$TMP/gray-$mode.jpg"
    is "$?-$(hdr bands "$TMP/gray-$mode.jpg")" "0-1" "... an image call too ($mode)"
    exec 7>&-
done
grep -q "connections is the limit: closed the quietest" "$TMP/server.log"
ok $? "the server says it closed the quietest connections"
stop_server
is "$STOP_STATUS" 0 "the server stops cleanly"
done_testing

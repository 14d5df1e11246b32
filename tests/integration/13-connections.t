#!/bin/bash
# Connection exhaustion: 300 idle connections, 300 that stopped in the middle
# of a call, or 300 that send a byte a second, against a table of 64, must
# not lock a legitimate client out.  Three rules (docs/ARCHITECTURE.md):
# one address holds at most --max-connections-per-address; a full table or
# address closes its quietest connection that is not in a call or bringing
# one at --min-receive-rate; and a call arriving slower than that is closed.
PORT=47113
PROG=1061000013
. "$(dirname "$0")/../lib.sh"

# hold_start MODE [SOURCE]: 300 connections of MODE held from SOURCE until hold_end.
hold_start() {
    rm -f "$TMP/held"
    mkfifo "$TMP/held"
    exec 7> >(HOSTILE_SOURCE="$2" "$HOSTILE" $PORT $PROG "hold-$1" >"$TMP/held")
    read -r line <"$TMP/held"
    like "$line" "held *" "300 $1 connections opened against a table of 64${2:+ from $2}"
}
hold_end() { exec 7>&-; }

served() {  # served WHAT: a ping and an image call get through
    like "$(cli -T tcp ping)" "ok:*over tcp*" "a legitimate client is served while they are open ($1)"
    like "$(cli ping)" "ok:*over local*" "... and one on the local socket ($1)"
    cli -T tcp grayscale "$TMP/photo.jpg" -o "$TMP/gray.jpg"
    is "$?-$(hdr bands "$TMP/gray.jpg")" "0-1" "... an image call too ($1)"
    rm -f "$TMP/gray.jpg"
}

ensure_rpcbind
make_photo "$TMP/photo.jpg" 320 240

# 1. One table for everyone (no per-address cap): the quietest goes.
start_server --max-connections 64 --max-connections-per-address 0
for mode in idle stalled trickle; do
    hold_start $mode
    served "$mode, one table"
    hold_end
done
grep -q "64 connections is the limit: closed the quietest" "$TMP/server.log"
ok $? "the server says it closed the quietest connections"
stop_server

# 2. The per-address cap (default 16): a flood from 127.0.0.2 closes its own
#    connections, never the 10 a client at 127.0.0.1 keeps open between calls.
start_server --max-connections 64
mkfifo "$TMP/ask" "$TMP/alive"
"$HOSTILE" $PORT $PROG hold-null 10 <"$TMP/ask" >"$TMP/alive" &
exec 8>"$TMP/ask" 9<"$TMP/alive"
read -r line <&9
is "$line" "held 10" "a client at 127.0.0.1 opens 10 connections and calls on each"
for mode in idle stalled trickle; do
    hold_start $mode 127.0.0.2
    served "$mode, from another address"
    hold_end
done
echo go >&8
read -r line <&9
is "$line" "alive 10" "... its 10 connections all still answer after 900 from 127.0.0.2"
exec 8>&- 9<&-
grep -q "16 connections from one address is the limit: closed its quietest" "$TMP/server.log"
ok $? "the server says it closed that address's quietest"

# 3. A call sent a byte a second, with the table far from full, is closed
#    within two measuring windows (libtirpc alone would wait 35 s per byte).
like "$("$HOSTILE" $PORT $PROG trickle)" "closed after * bytes" "a call trickling a byte a second is closed"
grep -q "closed 1 connection sending a call at [0-9]* bytes/s or less (--min-receive-rate 16384)" "$TMP/server.log"
ok $? "... and the log says why"
stop_server
is "$STOP_STATUS" 0 "the server stops cleanly"
done_testing

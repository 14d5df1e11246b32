#!/bin/bash
# Lab 1: discovery.  Where is the service?  rpcbind knows: ask it, then call
# procedure 0 (NULL) over TCP and over UDP, first with rpcinfo, then with the client.
. "$(dirname "$0")/common.sh"

say "1. rpcbind's table (portmapper version 2 shows IPv4 entries)"
run rpcinfo -p "$HOST" | tee "$WORK/p.txt"
check "the program is registered over tcp" grep -qE "^ *$PROG +1 +tcp " "$WORK/p.txt"
check "and over udp" grep -qE "^ *$PROG +1 +udp " "$WORK/p.txt"

say "2. the full table, IPv6 included (rpcbind versions 3 and 4)"
run rpcinfo -s "$HOST" | tee "$WORK/s.txt"
check "tcp6 is listed too" grep -q tcp6 "$WORK/s.txt"

say "3. call NULL with rpcinfo: TCP (-t) and UDP (-u)"
check "rpcinfo -t answers" run rpcinfo -t "$HOST" "$PROG" 1
check "rpcinfo -u answers" run rpcinfo -u "$HOST" "$PROG" 1

say "4. the same with our client, and what the server offers"
check "imgproc ping over tcp" run ip ping
check "imgproc ping over udp" run ip -T udp ping
run ip info | tee "$WORK/info.txt"
check "info lists the blur operation" grep -q "blur=SIGMA" "$WORK/info.txt"
finish

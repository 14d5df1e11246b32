#!/bin/bash
# Bounded work: one small request cannot burn the CPU for hours.  A blur of
# sigma 1000 on a 12000x12000 single-colour PNG (a few hundred KB, under the
# pixel limit) would run for tens of CPU-minutes.  The server refuses it at
# once (--max-blur-work: sigma x megapixels), and with that limit lifted,
# stops it at its time budget, when its caller hangs up, and at shutdown.
PORT=47111
PROG=1061000011
. "$(dirname "$0")/../lib.sh"

calls_in_progress() {
    cli info --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["load"]["calls_in_progress"])'
}

ensure_rpcbind
vips black "$TMP/flat.v" 12000 12000 && vips pngsave "$TMP/flat.v" "$TMP/bomb.png" ||
    bail "cannot make the test image"
rm -f "$TMP/flat.v"
# 0. The work limit: refused at once, saying how large a sigma this image allows.
start_server
cli blur --sigma 1000 "$TMP/bomb.png" -o "$TMP/x.png" 2>"$TMP/err"
is "$?" 1 "a blur of sigma 1000 on 144 MP fails"
like "$(cat "$TMP/err")" "*too-large: blur: sigma 1000 on a 12000x12000 image is more work than this server does (sigma x megapixels at most 2000: here sigma 13.9 at most)*" \
     "... as too-large at once, saying the limit and the largest sigma for this image"
guard() {   # the limits on one caller, as info reports them
    cli --json info | python3 -c 'import json,sys; g=json.load(sys.stdin)["guard"]; print(g["max_blur_work"], g["max_request_seconds"], g["max_task_seconds"], g["max_connections_per_address"], g["min_receive_rate"], g["max_inflight_bytes"])'
}
like "$(guard)" "2000 * * 16 16384 536870912" "info reports the limits on one caller (the defaults)"
stop_server
start_server --max-blur-work 3000 --max-request-seconds 77 --max-task-seconds 888 \
             --max-connections-per-address 5 --min-receive-rate 1000 --max-inflight-bytes 100M
is "$(guard)" "3000 77 888 5 1000 104857600" "... and the flags' values when given"
stop_server

# The rest lifts the work limit: the bomb then meets the time budgets.
start_server --max-request-seconds 2 --max-task-seconds 2 --workers 1 --max-blur-work 100000000

# 1. A synchronous call over its budget: too-large, with the reason.
cli blur --sigma 1000 "$TMP/bomb.png" -o "$TMP/x.png" 2>"$TMP/err"
is "$?" 1 "a blur over the call budget fails"
like "$(cat "$TMP/err")" "*too-large: stopped after 2 s*--max-request-seconds 2*" \
     "... as too-large, naming the budget"
like "$(cli ping)" "ok:*" "the server answers afterwards"

# 2. A caller that gives up: its work is stopped, not finished for nobody.
#    The client waits 1 s and hangs up; the server logs the call as stopped.
cli --timeout 1 blur --sigma 1000 "$TMP/bomb.png" -o "$TMP/x.png" 2>/dev/null
is "$?" 3 "a client that gives up after 1 s exits 3"
wait_log "BLUR .* wrong-state"
ok $? "the server stopped the abandoned blur (logged as stopped, not done)"
is "$(calls_in_progress)" 1 "... and nothing else runs (the 1 is this info call)"

# 3. A task over its budget fails for good, with the reason.
id=$(cli task create --steps blur=1000 "$TMP/bomb.png")
ok $? "a task with the same blur is accepted"
cli task wait "$id" >/dev/null
cli --json task status "$id" >"$TMP/st.json"
is "$(field state <"$TMP/st.json")" "failed" "it fails at its budget"
is "$(field error_status <"$TMP/st.json")" "too-large" "... as too-large"
like "$(field error <"$TMP/st.json")" "*--max-task-seconds 2*" "... naming the budget"
stop_server
is "$STOP_STATUS" 0 "the server stops cleanly"

# 4. SIGTERM with a long call running: the call is stopped, the server exits.
start_server --max-request-seconds 3600 --max-blur-work 100000000
cli blur --sigma 1000 "$TMP/bomb.png" -o "$TMP/x.png" 2>"$TMP/err" &
client=$!
# Wait until the call is being worked on (info counts itself too).
for i in $(seq 1000); do [ "$(calls_in_progress)" = 2 ] && break; done
pid=$SERVER_PID
# A watchdog, not a synchronisation: a server that never stops is killed.
( exec >/dev/null 2>&1; sleep 120; kill -KILL "$pid" ) &
watchdog=$!
stop_server
is "$STOP_STATUS" 0 "SIGTERM during an hour-long blur: the server stops, exit 0"
pkill -P "$watchdog"; kill "$watchdog" 2>/dev/null
wait "$client"
is "$?" 1 "the call in progress gets a reply"
like "$(cat "$TMP/err")" "*busy: stopped: the server is shutting down*" "... saying the server is shutting down"

# 5. SIGTERM with a connection stalled inside a call's record (libtirpc would
#    wait 35 s per read): its socket is shut down, its thread leaves, and only
#    then is anything freed (an ASan build sees any use after free).
start_server
"$HOSTILE" $PORT $PROG stalled-call >"$TMP/stalled" &
stalled=$!
connections() {
    cli info --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["load"]["connections"])'
}
for i in $(seq 1000); do [ "$(connections)" = 2 ] && break; done
stop_server
is "$STOP_STATUS" 0 "SIGTERM with a call stalled mid-record: the server stops, exit 0"
grep -q "stopping: shut 1 connection down" "$TMP/server.log"
ok $? "... after shutting the stalled connection down"
wait "$stalled"
is "$(tr '\n' ' ' <"$TMP/stalled")" "sent closed " "... which the stalled client sees closed"

# 6. SIGTERM under load: 4 clients creating tasks, image calls, 60 MB
#    uploads and a stalled call, all at once.  The server stops cleanly
#    (ASan sees any use after free), and every task it acknowledged is there
#    after a restart.
make_photo "$TMP/photo.jpg" 640 480
start_server --workers 1
for c in 1 2 3 4; do
    ( for i in $(seq 200); do cli task create --steps blur=3 "$TMP/photo.jpg" 2>/dev/null || break; done >"$TMP/ids.$c" ) &
done
for c in 1 2; do
    ( for i in $(seq 200); do cli resize --width 300 "$TMP/photo.jpg" -o "$TMP/r$c.jpg" 2>/dev/null || break; done ) &
done
"$HOSTILE" $PORT $PROG junk-calls 4 60000000 >/dev/null 2>&1 &
"$HOSTILE" $PORT $PROG stalled-call >/dev/null 2>&1 &
# Until 20 tasks are acknowledged (polling a file, not sleeping).
for i in $(seq 100000); do [ "$(cat "$TMP"/ids.* | wc -l)" -ge 20 ] && break; done
ok "$([ "$(cat "$TMP"/ids.* | wc -l)" -ge 20 ]; echo $?)" "20 tasks were acknowledged before the SIGTERM"
stop_server
is "$STOP_STATUS" 0 "SIGTERM under load: the server stops, exit 0"
wait
cat "$TMP"/ids.* >"$TMP/acked"
start_server --workers 1
missing=0
while read -r id; do cli task status "$id" >/dev/null 2>&1 || missing=$((missing + 1)); done <"$TMP/acked"
is "$missing" 0 "... and all $(wc -l <"$TMP/acked") tasks it acknowledged are there after a restart"
stop_server
done_testing

#!/bin/bash
# Tasks under load: a full queue says busy, cancelling a running task stops
# it; submit creates, waits and fetches; the TTL sweeper removes what expired.
PORT=47118
PROG=1061000018
. "$(dirname "$0")/../lib.sh"

ensure_rpcbind
# One worker and a queue of two make "busy" reachable.
start_server --workers 1 --queue-size 2
make_photo "$TMP/photo.png" 640 480
vips copy "$TMP/photo.png" "$TMP/photo.jpg[Q=90]"
head -c 3000 "$TMP/photo.jpg" >"$TMP/trunc.jpg"

info() {    # info SECTION FIELD: one figure of SERVER_INFO
    cli info --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]][sys.argv[2]])' "$1" "$2"
}
# ---- one server per state folder: a second one would run the same tasks
timeout 60 "$IMGPROCD" --no-rpcbind --port $((PORT + 50)) --state-dir "$TMP/state" \
    >/dev/null 2>"$TMP/err"
is "$?" 1 "a second imgprocd on the same --state-dir exits 1"
like "$(cat "$TMP/err")" "*state folder '$TMP/state' is in use by another imgprocd (pid $SERVER_PID)*" \
     "... naming the folder and the server that holds it"

# A task finished before the restart below, to show it keeps its expiry.
id=$(cli task create --steps grayscale "$TMP/photo.jpg")
cli task wait "$id" >/dev/null; ok $? "a task done under the first server's TTL"

# ---- a full queue says busy; cancelling a running task stops it
make_photo "$TMP/slow.png" 3000 3000
long=$(cli task create --steps 'blur=80' "$TMP/slow.png")
cli task wait "$long" --while queued >/dev/null     # returns when a worker has it
is "$(cli --json task status "$long" | field state)" "running" "the long task is running"
q1=$(cli task create --steps grayscale "$TMP/photo.jpg")
q2=$(cli task create --steps grayscale "$TMP/photo.jpg")
is "$(info load tasks_running) $(info load tasks_queued)" "1 2" "SERVER_INFO counts one running and two queued"
cli task create --steps grayscale "$TMP/photo.jpg" 2>"$TMP/err"; is "$?" 1 "a third queued task is refused"
like "$(cat "$TMP/err")" "*busy: the queue is full (2 tasks waiting)*" "busy, with the queue's size"
cli task cancel "$long"; ok $? "cancel a running task"
cli task wait "$q2" >/dev/null; ok $? "the queued tasks run after it"
is "$(cli --json task status "$long" | field state)" "cancelled" "the running task ended cancelled"
is "$(cli --json task status "$q1" | field state)" "done" "the first queued task is done"
cli task create --steps grayscale "$TMP/photo.jpg" >/dev/null; ok $? "with room in the queue, create works again"

# ---- submit: create, wait and fetch in one go
mkdir -p "$TMP/in"; cp "$TMP/photo.jpg" "$TMP/in/a.jpg"; cp "$TMP/photo.png" "$TMP/in/b.png"
cli submit --steps 'resize=100x100' -o "$TMP/subout" "$TMP/in/a.jpg" "$TMP/in/b.png" "$TMP/trunc.jpg" \
    >"$TMP/sub.txt" 2>"$TMP/err"
is "$?" 1 "submit with one broken file exits 1"
is "$(ls "$TMP/subout" | tr '\n' ' ')" "a.jpg b.png " "the good results are written, named after their inputs"
is "$(hdr width "$TMP/subout/a.jpg")x$(hdr height "$TMP/subout/a.jpg")" "100x75" "a submitted result is right"
like "$(cat "$TMP/err")" "*trunc.jpg*failed: corrupt-image*" "the broken one is named with its reason"
cli submit --steps flip -o "$TMP/nothing-out" "$TMP/in/"nothing*.png 2>"$TMP/err"
is "$?-$([ -e "$TMP/nothing-out" ]; echo $?)" "1-1" "a pattern that matched nothing fails and leaves no empty folder"
stop_server
is "$STOP_STATUS" 0 "server stopped cleanly"

# ---- the TTL sweeper removes finished tasks (no sleeping: TASK_WAIT sees the change)
start_server --result-ttl 1
e=$(cli task create --steps grayscale "$TMP/photo.jpg")
cli task wait "$e" >/dev/null; ok $? "a task to expire is done"
cli task wait "$e" --while done --for 50 2>"$TMP/err" >/dev/null
like "$(cat "$TMP/err")" "*not-found: no task $e*" "the sweeper removed it after its TTL"
[ ! -e "$TMP/state/out/$e" ] && [ ! -e "$TMP/state/in/$e" ]; ok $? "and its files"
is "$(cli --json task status "$id" | field state)" "done" "a task finished under the old TTL keeps its expiry"
stop_server
is "$STOP_STATUS" 0 "server stopped cleanly"

# ---- over UDP a list longer than a datagram comes in pages that each fit one
# (a server of the default TTL: under --result-ttl 1 tasks may expire between lists)
start_server
steps='grayscale,blur=1,resize=100x100,rotate=90,flip'
# Over TCP and UDP alike the claim is an anonymous token: the same owner.
for i in $(seq 80); do cli -T tcp task create --hold --steps "$steps" "$TMP/photo.jpg" >/dev/null; done
cli -T tcp task list --state created >"$TMP/tcp.list"
cli -T udp task list --state created >"$TMP/udp.list" 2>"$TMP/err"
rc=$?
n=$(($(wc -l <"$TMP/tcp.list") - 1))
is "$rc" 0 "-T udp task list of $n tasks works (more than one datagram holds)"
is "$n" 80 "... every held task is listed over TCP"
is "$(wc -l <"$TMP/udp.list")" "$((n + 1))" "... and over UDP: the header and every task"
is "$(cut -c1-30 "$TMP/udp.list" | md5sum)" "$(cut -c1-30 "$TMP/tcp.list" | md5sum)" \
   "... the same ids and states as over TCP"
is "$(cli -T udp --json task list --state created | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" \
   "$n" "... and as JSON"
stop_server
is "$STOP_STATUS" 0 "server stopped cleanly"
cli task list >"$TMP/none.list" 2>"$TMP/err"
is "$?:$(wc -c <"$TMP/none.list")" "3:0" "with no server, task list fails and prints no header"
done_testing

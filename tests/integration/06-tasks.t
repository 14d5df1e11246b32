#!/bin/bash
# Tasks: the whole life, every refused move, chunked upload and download,
# owners, tokens, a full queue, and the TTL sweeper.
PORT=47106
PROG=1061000006
. "$(dirname "$0")/../lib.sh"

ensure_rpcbind
# One worker and a queue of two make "busy" reachable; a small request limit
# makes the 5 MB image too large for one message, so it must go in chunks.
start_server --workers 1 --queue-size 2 --max-request-bytes 2M
make_photo "$TMP/photo.png" 640 480
vips copy "$TMP/photo.png" "$TMP/photo.jpg[Q=90]"

info() {    # info SECTION FIELD: one figure of SERVER_INFO
    cli info --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]][sys.argv[2]])' "$1" "$2"
}
is "$(info limits workers) $(info limits max_queued)" "1 2" "SERVER_INFO reports the worker and queue limits"

# ---- the classic life: create (held), start, status, wait, result
id=$(cli task create --hold --steps 'grayscale,resize=320x320' "$TMP/photo.jpg")
like "$id" "[0-9]*" "task create prints the id alone"
is "$(cli --json task status "$id" | field state)" "created" "a held task stays created"
is "$(cli --json task status "$id" | field sha256)" "$(sha256sum <"$TMP/photo.jpg" | cut -d' ' -f1)" \
   "the server's SHA-256 of the image is the file's"
cli task result "$id" -o "$TMP/x.jpg" 2>"$TMP/err"
is "$?" 1 "no result before it runs"
like "$(cat "$TMP/err")" "*wrong-state: task $id is created; a result exists once it is done*" \
     "the refusal names the state"
cli task start "$id"; ok $? "task start"
cli task wait "$id" >"$TMP/wait.txt"; ok $? "task wait returns once it is done"
like "$(head -1 "$TMP/wait.txt")" "task $id: done" "wait prints the final state"
cli --json task status "$id" >"$TMP/st.json"
python3 - "$TMP/st.json" <<'EOF'; ok $? "status: done, 100%, times in order, result facts"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["state"] == "done" and d["progress"] == 100, d
assert 0 < d["created"] <= d["started"] <= d["finished"], d
assert (d["width"], d["height"], d["bands"]) == (320, 240, 1), d
assert d["result_format"] == "jpeg" and d["result_size"] > 0, d
assert d["steps"] == "grayscale,resize=320x320:inside", d
EOF
cli task result "$id" -o "$TMP/r.jpg"; ok $? "task result"
is "$(hdr width "$TMP/r.jpg")x$(hdr height "$TMP/r.jpg") $(hdr bands "$TMP/r.jpg")" "320x240 1" \
   "the result is the pipeline's output"

# ---- refused moves, each with its own status and the state named
cli task start "$id" 2>"$TMP/err"; is "$?" 1 "start a done task: refused"
like "$(cat "$TMP/err")" "*wrong-state: task $id is done; only a created task can be started" \
     "start a done task: wrong-state, state named"
cli task cancel "$id" 2>"$TMP/err"; is "$?" 1 "cancel a done task: refused"
like "$(cat "$TMP/err")" "*wrong-state: task $id is done;*" "cancel a done task: wrong-state"
cli task upload "$id" "$TMP/photo.jpg" 2>"$TMP/err"; is "$?" 1 "upload to an inline task: refused"
like "$(cat "$TMP/err")" "*wrong-state: task $id came with its image*" "upload to an inline task: wrong-state"
c=$(cli task create --hold --steps grayscale "$TMP/photo.jpg")
cli task cancel "$c"; ok $? "cancel a created task"
is "$(cli --json task status "$c" | field state)" "cancelled" "it is cancelled"
cli task start "$c" 2>"$TMP/err"; is "$?" 1 "start a cancelled task: refused"
like "$(cat "$TMP/err")" "*wrong-state: task $c is cancelled;*" "start a cancelled task: wrong-state"
cli task cancel "$c" 2>"$TMP/err"; like "$(cat "$TMP/err")" "*wrong-state: task $c is cancelled;*" \
    "cancel twice: wrong-state"
cli task delete "$c"; ok $? "delete a cancelled task"
cli task status "$c" 2>"$TMP/err"; is "$?" 1 "a deleted task is gone"
like "$(cat "$TMP/err")" "*not-found: no task $c*" "status of a deleted task: not-found"
cli task status 999999 2>"$TMP/err"; like "$(cat "$TMP/err")" "*not-found*" "an unknown id: not-found"
cli task wait 0 2>/dev/null; is "$?" 2 "task id 0 is a usage error"
echo "not an image" >"$TMP/bad.jpg"
cli task create --steps grayscale "$TMP/bad.jpg" 2>"$TMP/err"; is "$?" 1 "a non-image is refused at create"
like "$(cat "$TMP/err")" "*unsupported-format*" "with its reason"
cli task create --steps 'blur=0' "$TMP/photo.jpg" 2>"$TMP/err"; is "$?" 1 "a bad pipeline is refused at create"
like "$(cat "$TMP/err")" "*invalid-argument: step 1:*" "with the step named"

# ---- a task that fails while running keeps its reason
head -c 3000 "$TMP/photo.jpg" >"$TMP/trunc.jpg"
f=$(cli task create --steps 'blur=1' "$TMP/trunc.jpg")
cli task wait "$f" >/dev/null; is "$?" 1 "wait on a task that fails exits 1"
is "$(cli --json task status "$f" | field state)" "failed" "a truncated JPEG fails"
is "$(cli --json task status "$f" | field error_status)" "corrupt-image" "the failure keeps its status"
cli task result "$f" -o "$TMP/none" 2>"$TMP/err"
like "$(cat "$TMP/err")" "*wrong-state: task $f failed (corrupt-image: *); it has no result" \
     "result of a failed task: wrong-state with its error"

# ---- tokens: a retried create is not done twice
t1=$(cli task create --token photo-1 --steps grayscale "$TMP/photo.jpg")
t2=$(cli task create --token photo-1 --steps grayscale "$TMP/photo.jpg")
is "$t2" "$t1" "the same token returns the same task"
cli task create --token photo-1 --steps flip "$TMP/photo.jpg" 2>"$TMP/err"
like "$(cat "$TMP/err")" "*invalid-argument: token 'photo-1' already names task $t1*" \
     "the same token with another pipeline is refused"

# ---- chunked upload and download, larger than one message may be
make_photo "$TMP/big.png" 2200 1600
size=$(stat -c %s "$TMP/big.png")
[ "$size" -gt $((4 * 1024 * 1024)) ]; ok $? "the big image is larger than 4 chunks ($size bytes)"
cli grayscale "$TMP/big.png" -o "$TMP/nope.png" 2>"$TMP/err"
like "$(cat "$TMP/err")" "*too-large*" "it is too large for one call"
u=$(cli task create --hold --steps flip "$TMP/big.png")
cli --json task status "$u" | field received >"$TMP/recv"
is "$(cat "$TMP/recv")" "$size" "a file over the request limit goes up in chunks, all $size bytes"
cmp -s "$TMP/big.png" "$TMP/state/in/$u"; ok $? "the uploaded bytes are identical on the server"
# An explicit upload: create with the size only, then 'task upload' sends the chunks.
u2=$(cli task create --hold --upload --steps flip "$TMP/big.png")
is "$(cli --json task status "$u2" | field received)" "0" "create --upload declares the size only"
cli task upload "$u2" "$TMP/big.png"; ok $? "task upload"
is "$(cli --json task status "$u2" | field received)" "$size" "task upload sent it all"
cli task upload "$u2" "$TMP/big.png"; ok $? "uploading again (a retry) is harmless"
cli task start "$u2" && cli task wait "$u2" >/dev/null; ok $? "the uploaded task runs"
cli task result "$u2" -o "$TMP/big-out.png"; ok $? "its result comes back in chunks"
rs=$(stat -c %s "$TMP/big-out.png")
[ "$rs" -gt $((2 * 1024 * 1024)) ]; ok $? "the result is larger than two chunks ($rs bytes)"
cmp -s "$TMP/big-out.png" "$TMP/state/out/$u2"; ok $? "the downloaded bytes are identical to the server's"
vips flip "$TMP/big.png" "$TMP/big-ref.png" vertical
vips subtract "$TMP/big-out.png" "$TMP/big-ref.png" "$TMP/bd.v" && vips abs "$TMP/bd.v" "$TMP/ba.v"
is "$(vips max "$TMP/ba.v")" "0.000000" "and it is the flipped image, pixel for pixel"
p=$(cli task create --hold --upload --steps flip "$TMP/photo.png")
cli task start "$p" 2>"$TMP/err"; is "$?" 1 "start before the upload completes: refused"
like "$(cat "$TMP/err")" "*wrong-state: task $p has 0 of its * bytes; upload the rest*" "it says how much is missing"

# ---- owners: another uid sees nothing of ours
cli --auth 4242 task status "$id" 2>"$TMP/err"; is "$?" 1 "another uid cannot see a task"
like "$(cat "$TMP/err")" "*denied: task $id belongs to another caller*" "status: denied"
cli --auth 4242 task result "$id" -o "$TMP/stolen.jpg" 2>/dev/null; is "$?" 1 "nor fetch it"
cli --auth 4242 task cancel "$p" 2>/dev/null; is "$?" 1 "nor cancel it"
cli --auth 4242 task delete "$id" 2>/dev/null; is "$?" 1 "nor delete it"
is "$(cli --auth 4242 --json task list)" "[]" "nor list it"
is "$(cli --json task status "$id" | field state)" "done" "the owner's task is untouched"
o=$(cli --auth none task create --steps grayscale "$TMP/photo.jpg")
is "$(cli --auth none --json task status "$o" | field owner)" "anonymous" "AUTH_NONE tasks are anonymous"
cli task status "$o" 2>/dev/null; is "$?" 1 "an AUTH_SYS caller cannot see an anonymous task"

# ---- list: filtered by state, paged through
cli --json task list --state done,failed >"$TMP/list.json"
python3 - "$TMP/list.json" "$id" "$f" <<'EOF'; ok $? "list --state done,failed"
import json, sys
d = json.load(open(sys.argv[1]))
states = {x["state"] for x in d}
ids = [x["id"] for x in d]
assert states <= {"done", "failed"}, states
assert int(sys.argv[2]) in ids and int(sys.argv[3]) in ids, ids
assert ids == sorted(ids), ids
EOF

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
done_testing

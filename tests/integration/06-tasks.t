#!/bin/bash
# Tasks: the whole life, every refused move, a task that fails, tokens,
# owners and lists.  (Transfers in chunks: 17-task-transfers.t; a full queue,
# submit and the TTL sweeper: 18-task-queue.t.  Each file runs alone.)
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
cli task create --steps 'blur=0' "$TMP/photo.jpg" 2>"$TMP/err"; is "$?" 2 "a pipeline out of range is refused before sending"
like "$(cat "$TMP/err")" "*invalid --steps: blur: sigma must be > 0*" "with the range"
xb=$(cli task create --steps 'grayscale,extract_band=1' "$TMP/photo.jpg")
cli task wait "$xb" >"$TMP/err" 2>&1; is "$?" 1 "a step that cannot run on this image fails the task"
like "$(cat "$TMP/err")" "*invalid-argument: step 2 of 2: extract_band: no band 1 in a 1-band image (its bands are 0..0)*" \
     "... naming the step"

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

# ---- owners: another uid sees nothing of ours.  On the local socket (the
# default here) a claimed uid that is not the kernel's is refused outright;
# over TCP the claim makes an anonymous caller, who owns nothing of ours.
cli --auth 4242 task status "$id" 2>"$TMP/err"; is "$?" 1 "a forged uid on the local socket is refused"
like "$(cat "$TMP/err")" "*denied: refused by the local-socket rule: your AUTH_SYS credentials claim uid 4242 gid 4242, but the kernel says this connection is uid $(id -u) gid $(id -g)*" \
     "... naming the rule, the claim and the kernel's word"
cli -T tcp --auth 4242 task status "$id" 2>"$TMP/err"; is "$?" 1 "another uid over TCP cannot see a task"
like "$(cat "$TMP/err")" "*denied: task $id belongs to another caller*" "status: denied"
cli -T tcp --auth 4242 task result "$id" -o "$TMP/stolen.jpg" 2>/dev/null; is "$?" 1 "nor fetch it"
p=$(cli task create --hold --steps flip "$TMP/photo.jpg")
cli -T tcp --auth 4242 task cancel "$p" 2>/dev/null; is "$?" 1 "nor cancel it"
cli -T tcp --auth 4242 task delete "$id" 2>/dev/null; is "$?" 1 "nor delete it"
is "$(cli -T tcp --auth 4242 --json task list)" "[]" "nor list it"
is "$(cli -T tcp --json task list)" "[]" "our own uid claimed over TCP is anonymous too: nothing listed"
is "$(cli --json task status "$id" | field state)" "done" "the owner's task is untouched"
is "$(cli --json task status "$id" | field owner)" "$(id -u)@$(hostname)" "... and owned by the kernel's uid"
o=$(cli -T tcp --auth none task create --steps grayscale "$TMP/photo.jpg")
is "$(cli -T tcp --auth none --json task status "$o" | field owner)" "anonymous" "AUTH_NONE tasks over TCP are anonymous"
cli -T tcp task status "$o" 2>/dev/null; is "$?" 1 "an AUTH_SYS caller cannot see an anonymous task"
is "$(cli --auth none --json task status "$p" | field owner)" "$(id -u)@$(hostname)" \
   "AUTH_NONE on the local socket is the kernel's uid (an admin, root, sees this one)"

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

stop_server
is "$STOP_STATUS" 0 "server stopped cleanly"
done_testing

#!/bin/bash
# Crash safety: every acknowledged task survives kill -9 and completes, right, after a restart.
PORT=47107
PROG=1061000007
. "$(dirname "$0")/../lib.sh"

N=12
ensure_rpcbind
start_server --workers 1
make_photo "$TMP/photo.png" 2400 1600
steps='blur=4,grayscale,resize=600x600'

# The expected output, from a synchronous PROCESS call on the same server.
cli process --steps "$steps" "$TMP/photo.png" -o "$TMP/expected.png"; ok $? "reference result"

# Submit N tasks; each printed id is an acknowledged task.
for i in $(seq 1 $N); do
    cli task create --steps "$steps" --token "crash-$i" "$TMP/photo.png" >>"$TMP/ids" || break
done
is "$(wc -l <"$TMP/ids" | tr -d ' ')" "$N" "$N tasks acknowledged"
first=$(head -1 "$TMP/ids"); third=$(sed -n 3p "$TMP/ids")
# Kill while work is under way: once the third task has left the queue.
cli task wait "$third" --while queued >/dev/null
state=$(cli --json task status "$(tail -1 "$TMP/ids")" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
is "$state" "queued" "the last task is still queued when the server is killed"
kill_server
grep -q "task $first done" "$TMP/server.log"; ok $? "some tasks finished before the crash"

start_server --workers 2
like "$(grep recovered "$TMP/server.log")" "*interrupted task* queued again*" "the restart requeues what was running"
# A retried create (same token) after the crash returns the same task, not a new one.
is "$(cli task create --steps "$steps" --token crash-5 "$TMP/photo.png")" "$(sed -n 5p "$TMP/ids")" \
   "a retried create after the crash finds its task"
bad=0
while read -r id; do
    if ! cli task wait "$id" >/dev/null ||
       ! cli task result "$id" -o "$TMP/out-$id.png" ||
       ! cmp -s "$TMP/out-$id.png" "$TMP/expected.png"; then
        echo "# task $id: not done or not the expected output"
        bad=$((bad + 1))
    fi
done <"$TMP/ids"
is "$bad" 0 "all $N tasks completed with the right output"
is "$(cli --json task list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" "$N" \
   "no task lost and none doubled"
is "$(ls "$TMP/state/tmp" | wc -l | tr -d ' ')" 0 "no half-written file is left behind"

# The database is consistent after the crash.
is "$(sqlite3 "$TMP/state/tasks.db" 'PRAGMA integrity_check')" "ok" "the database passes its integrity check"
stop_server
is "$STOP_STATUS" 0 "server stopped cleanly"
done_testing

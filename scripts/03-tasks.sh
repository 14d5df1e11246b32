#!/bin/bash
# Lab 3: a task the classic way.  The client creates an image task, moves it
# along, checks its status and fetches the processed image later:
#   TASK_CREATE (held) -> TASK_START -> TASK_STATUS -> TASK_WAIT -> TASK_RESULT
# The server keeps the task on disk, so "later" may be after a restart.
. "$(dirname "$0")/common.sh"
img=$(sample) || { echo "cannot make a sample image"; exit 1; }
w=$(vipsheader -f width "$img")
state() { ip --json task status "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])'; }

say "1. TASK_CREATE: the image and a pipeline go to the server; an id comes back"
printf '$ id=$(imgproc task create --hold --steps "blur=2,grayscale,resize=%dx%d" IMAGE)\n' $((w / 2)) $((w / 2))
id=$(ip task create --hold --steps "blur=2,grayscale,resize=$((w / 2))x$((w / 2))" "$img")
echo "task id: $id"
check "an id came back" [ -n "$id" ]

say "2. TASK_STATUS: held, it waits in CREATED"
run ip task status "$id"
check "created" [ "$(state "$id")" = created ]

say "3. TASK_RESULT too early is refused, and says why"
run ip task result "$id" -o "$WORK/early.jpg"
check "refused while created" [ ! -e "$WORK/early.jpg" ]

say "4. TASK_START: CREATED -> QUEUED; a worker picks it up"
run ip task start "$id"
check "queued, running or already done" [ "$(state "$id")" != created ]

say "5. TASK_WAIT: block until it is done (no polling loop needed)"
run ip task wait "$id"
check "done" [ "$(state "$id")" = done ]

say "6. TASK_RESULT: fetch the processed image, in chunks"
run ip task result "$id" -o "$WORK/result.jpg"
run vipsheader "$WORK/result.jpg"
check "one band, half as wide" [ "$(vipsheader -f bands "$WORK/result.jpg") $(vipsheader -f width "$WORK/result.jpg")" = "1 $((w / 2))" ]

say "7. a move the life cycle does not have: start a DONE task"
run ip task start "$id"
check "refused: the task stays done" [ "$(state "$id")" = done ]

say "8. TASK_LIST, then TASK_DELETE"
run ip task list --state done
run ip task delete "$id"
check "gone" sh -c "! '$IMGPROC' -H '$HOST' --program '$PROG' task status '$id' 2>/dev/null"
finish

#!/bin/bash
# Lab 4: tasks live in an SQLite database.  Open it with the sqlite3 shell
# (read-only, while the server runs: WAL mode lets readers in) and ask it
# which tasks failed and which finished after a given time.
# The server says where its state lives ('imgproc info', to a caller on its
# own machine); IMGPROC_STATE, the server's --state-dir, overrides it.
. "$(dirname "$0")/common.sh"
if [ -n "$IMGPROC_STATE" ]; then STATE=$IMGPROC_STATE
else
    say "0. where does the server keep its tasks? its info says (on its own machine)"
    run ip info >"$WORK/info.txt" || { echo "FAIL: no answer from the server"; exit 1; }
    head -1 "$WORK/info.txt"        # the command, as run
    grep '^state:' "$WORK/info.txt"
    STATE=$(sed -n 's|^state: \(.*\) (tasks.db, in/, out/)$|\1|p' "$WORK/info.txt")
    [ -n "$STATE" ] || { echo "FAIL: the server did not say where its state lives" \
                               "(it tells only callers on its own machine; set IMGPROC_STATE)"; exit 1; }
fi
DB=$STATE/tasks.db
img=$(sample) || { echo "cannot make a sample image"; exit 1; }
head -c 2000 "$img" >"$WORK/broken.jpg"     # a truncated JPEG: its task will fail
q() { printf 'sqlite> %s\n' "$1"; sqlite3 -readonly -header -column "$DB" "$1"; }

say "1. three tasks: two good images and a broken one"
a=$(ip task create --steps grayscale "$img")
b=$(ip task create --steps 'blur=1' "$WORK/broken.jpg")
ip task wait "$a" >/dev/null; ip task wait "$b" >/dev/null
t=$(date +%s.%N)
echo "--- time mark: $t"
c=$(ip task create --steps 'rotate=90' "$img")
ip task wait "$c" >/dev/null
echo "tasks $a, $b, $c"

say "2. the table: one row per task"
check "the database is at $DB" [ -r "$DB" ]
q "SELECT id, state, steps, size, datetime(created_at, 'unixepoch') AS created FROM tasks WHERE id IN ($a, $b, $c)"

say "3. which tasks failed, and why?"
q "SELECT id, error_status, error FROM tasks WHERE state = 'failed' AND id IN ($a, $b, $c)"
failed=$(sqlite3 -readonly "$DB" "SELECT group_concat(id) FROM tasks WHERE state = 'failed' AND id IN ($a, $b, $c)")
check "only task $b failed" [ "$failed" = "$b" ]

say "4. which finished after the time mark?"
q "SELECT id, state, datetime(finished_at, 'unixepoch') AS finished, round(finished_at - started_at, 3) AS seconds FROM tasks WHERE finished_at > $t"
late=$(sqlite3 -readonly "$DB" "SELECT group_concat(id) FROM tasks WHERE finished_at > $t AND id IN ($a, $b, $c)")
check "only task $c finished after it" [ "$late" = "$c" ]

say "5. how many tasks are in each state?"
q "SELECT state, count(*) AS tasks FROM tasks GROUP BY state"
ip task delete "$a" >/dev/null; ip task delete "$b" >/dev/null; ip task delete "$c" >/dev/null
finish

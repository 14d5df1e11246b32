#!/bin/bash
# Lab 8: three hosts, one queue, a host killed, the work finishing.  Three
# imgprocd share one task queue in PostgreSQL (--store postgres://...): a
# task made through one host is run by whichever host is free, and is waited
# on and fetched through any of them.  One host is killed (kill -9) while it
# runs a task; once its lease lapses, the others run that task again, and
# every task ends done.  psql shows the queue at each step.
# The lab starts all of it itself, on this machine: a throwaway PostgreSQL 15
# (as root, run as nobody: PostgreSQL refuses root) and three servers on
# 127.0.0.1, .2 and .3 (ports 47260-47289); it stops and removes them when it
# ends.  IMGPROC_HOST is not used.  IMGPROCD (the server), PG_BIN
# (PostgreSQL's programs) and IMGPROC_CORPUS (the photos) may be set.
. "$(dirname "$0")/common.sh"
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
if [ -z "$IMGPROCD" ]; then
    IMGPROCD=$(dirname "$IMGPROC")/imgprocd
    [ -x "$IMGPROCD" ] || IMGPROCD=$(command -v imgprocd || echo "$here/../build/imgprocd")
fi
if [ ! -x "$PG_BIN/initdb" ] || [ ! -x "$PG_BIN/psql" ]; then
    echo "this lab needs PostgreSQL 15 in $PG_BIN (Debian: apt-get install postgresql-15)"
    exit 1
fi
"$IMGPROCD" --help 2>/dev/null | grep -q -- '--store URL' ||
    { echo "$IMGPROCD has no --store: this lab needs an imgprocd that shares a queue"; exit 1; }
N=12                    # tasks
LEASE=3                 # seconds: short, so that the lab does not wait long
STEPS='resize=2000x2000:inside:enlarge,blur=25'    # about a second of work

# ---- ports and clean-up.  A slot of ports, held with flock(1) while the lab
# runs, so that two runs at once do not collide: PostgreSQL on BASE, the three
# servers on BASE+1, each on its own address.
for BASE in 47260 47270 47280; do
    LOCK=/tmp/imgproc-lab-one-queue-$BASE.lock
    if { exec {LOCK_FD}>"$LOCK"; } 2>/dev/null; then    # (not when another user's)
        flock -n "$LOCK_FD" && break
        exec {LOCK_FD}>&-
    fi
    LOCK=
done
[ -n "$LOCK" ] || { echo "three runs of this lab already hold ports 47260-47289"; exit 1; }
PGPORT=$BASE
PORT=$((BASE + 1))
PGDIR=
HOST_PID=()
# shellcheck disable=SC2317  # (called by the trap)
cleanup() {
    local p
    for p in "${HOST_PID[@]}"; do [ -n "$p" ] && kill -TERM "$p" 2>/dev/null; done
    for p in "${HOST_PID[@]}"; do [ -n "$p" ] && wait "$p" 2>/dev/null; done
    if [ -n "$PGDIR" ]; then
        [ -f "$PGDIR/data/postmaster.pid" ] && pg_as pg_ctl -D "$PGDIR/data" -m fast -w stop >/dev/null 2>&1
        cp "$PGDIR/server.log" "$WORK/postgresql.log" 2>/dev/null
        rm -rf "$PGDIR"
    fi
    rm -rf "$WORK"/host? "$WORK"/ready?
    rm -f "$LOCK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# pg_as PROGRAM ARGS...: one of PostgreSQL's programs; as nobody when we are
# root (initdb and postgres refuse to run as root), from the database's folder.
pg_as() {
    local prog=$PG_BIN/$1
    shift
    if [ "$(id -u)" -eq 0 ]; then (cd "$PGDIR" && runuser -u nobody -- "$prog" "$@")
    else "$prog" "$@"; fi
}
# q SQL: shows the query, runs it with psql (a table); v SQL: one value.
psql_() { "$PG_BIN/psql" -X -h "$PGDIR/sock" -p "$PGPORT" -U imgproc -d imgproc -v ON_ERROR_STOP=1 "$@"; }
q() { printf 'imgproc=> %s\n' "$1"; psql_ -P footer=off -c "$1"; }
v() { psql_ -Atq -c "$1"; }
QUEUE="SELECT id, state, attempts, host, round(extract(epoch FROM leased_until - now())::numeric, 1) AS lease_left FROM tasks LEFT JOIN lab_hosts USING (worker) ORDER BY id"
# on N ARGS...: the client, aimed at host N; show N ARGS: that, as you would type it.
on() { "$IMGPROC" -H "127.0.0.$1" -p "$PORT" --program "$PROG" "${@:2}"; }
show() { printf '$ imgproc -H 127.0.0.%s -p %s %s\n' "$1" "$PORT" "${*:2}"; }
# shellcheck disable=SC2317  # (called by check)
pings() { on 1 ping && on 2 ping && on 3 ping; } >/dev/null

# A real photograph when there is one: yours, the corpus (make corpus), a
# desktop background; else the generated sample.  The pipeline makes every
# photo the same amount of work: fit into 2000x2000, then a heavy blur.
CORPUS=${IMGPROC_CORPUS:-${XDG_CACHE_HOME:-$HOME/.cache}/imgproc/corpus}
img=$IMGPROC_IMAGE
for f in "$CORPUS/jpeg-photo-ladybird.jpg" "$CORPUS/jpeg-13mp-photo.jpg" \
         /usr/share/backgrounds/*/*/*.jpg /usr/share/backgrounds/*.jpg; do
    [ -z "$img" ] && [ -f "$f" ] && img=$f
done
[ -n "$img" ] || img=$(sample) || { echo "cannot make a sample image"; exit 1; }

say "1. a throwaway PostgreSQL 15: a new cluster in a temporary folder, port $PGPORT"
PGDIR=$(mktemp -d /tmp/imgproc-lab-pg.XXXXXX) || exit 1
mkdir "$PGDIR/sock"
[ "$(id -u)" -eq 0 ] && { chown nobody "$PGDIR" "$PGDIR/sock"; chmod 700 "$PGDIR"; }
echo "\$ initdb -D $PGDIR/data -U imgproc --auth=trust"
pg_as initdb -D "$PGDIR/data" -U imgproc --auth=trust -E UTF8 --no-locale -N >"$PGDIR/initdb.log" 2>&1 ||
    { cat "$PGDIR/initdb.log"; echo "FAIL: initdb"; exit 1; }
cat >>"$PGDIR/data/postgresql.conf" <<CONF
port = $PGPORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PGDIR/sock'
CONF
echo "\$ pg_ctl -D $PGDIR/data -w start    # port $PGPORT, on 127.0.0.1"
pg_as pg_ctl -D "$PGDIR/data" -l "$PGDIR/server.log" -w -t 60 start >/dev/null ||
    { cat "$PGDIR/server.log"; echo "FAIL: PostgreSQL did not start"; exit 1; }
"$PG_BIN/createdb" -h "$PGDIR/sock" -p "$PGPORT" -U imgproc imgproc ||
    { echo "FAIL: createdb"; exit 1; }
URL=postgres://imgproc@127.0.0.1:$PGPORT/imgproc
echo "the queue's address, for every host: $URL"
if [ "$(id -u)" -eq 0 ]; then
    echo "(as root, PostgreSQL's programs ran as nobody: it refuses to run as root)"
fi
echo "Each query below is: psql -h $PGDIR/sock -p $PGPORT -U imgproc imgproc -c QUERY"

say "2. three imgprocd hosts, each on its own address, all on that one database"
for n in 1 2 3; do
    mkfifo "$WORK/ready$n"
    args=(--program "$PROG" --no-rpcbind --local-socket none --listen "127.0.0.$n" --port "$PORT"
          --state-dir "$WORK/host$n" --store "$URL" --lease "$LEASE" --workers 1 -v)
    printf '$ imgprocd'; printf ' %q' "${args[@]}"; printf ' &\n'
    "$IMGPROCD" "${args[@]}" >"$WORK/ready$n" 2>"$WORK/host$n.log" &
    HOST_PID[n]=$!
    read -r line <"$WORK/ready$n"
    rm -f "$WORK/ready$n"
    case $line in
    "imgprocd: ready"*) echo "  host $n: $line" ;;
    *) sed 's/^/  host '"$n"': /' "$WORK/host$n.log"; echo "FAIL: host $n did not start"; exit 1 ;;
    esac
done
check "three hosts answer: 127.0.0.1, 127.0.0.2 and 127.0.0.3, port $PORT" pings
echo "None of them keeps the queue: the tasks, and their images, are rows in PostgreSQL"
echo "(the first host to start made the tables).  A --state-dir holds temporary files only."
q '\dt'
# In tasks.worker a host is 'machine/pid'; a table of the lab's own names them.
me=$(hostname)
v "CREATE TABLE lab_hosts (worker text PRIMARY KEY, host text);
   INSERT INTO lab_hosts VALUES ('$me/${HOST_PID[1]}', 'host 1'), ('$me/${HOST_PID[2]}', 'host 2'),
                                ('$me/${HOST_PID[3]}', 'host 3')" >/dev/null
echo "A task's worker column names the host running it, as machine/pid; the lab"
echo "adds a table of its own, lab_hosts, that turns those into 'host 1' to 'host 3'."

say "3. $N tasks, all created through host 1; any free host runs them"
echo "the photo: $img ($(vipsheader "$img" | sed 's/^[^:]*: //'))"
show 1 "task create --steps '$STEPS' $(printf %q "$img")      # $N times"
ids=()
for _ in $(seq "$N"); do
    id=$(on 1 task create --steps "$STEPS" "$img") && ids+=("$id")
done
echo "tasks ${ids[0]} to ${ids[$((${#ids[@]} - 1))]}"
check "$N tasks created through host 1" [ "${#ids[@]}" -eq "$N" ]
# Host 1 runs one of them (its one worker): caught just after it took it
# (in the last 0.3 s), so that it is still running it a moment later.
lost=
for _ in $(seq 300); do
    lost=$(v "SELECT id FROM tasks WHERE state = 'running' AND worker = '$me/${HOST_PID[1]}'
              AND started_at > extract(epoch FROM clock_timestamp()) - 0.3")
    [ -n "$lost" ] && break
    sleep 0.1
done
q "$QUEUE"
check "host 1 is running a task" [ -n "$lost" ]
[ -n "$lost" ] || finish
cat <<'EOF'
Each host has one worker (--workers 1), and each idle worker takes the oldest
queued task with one statement:
    UPDATE tasks SET state = 'running', attempts = attempts + 1, worker = <me>,
                     leased_until = now() + <lease>
     WHERE id = (SELECT id FROM tasks WHERE state = 'queued'
                  ORDER BY queued_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
FOR UPDATE locks the row a worker picks; SKIP LOCKED makes the other workers,
asking at the same moment, pass over that row instead of waiting for it: each
takes a different task, and no task is taken twice.
The claim is a lease: the task is the host's until leased_until (the database's
clock), --lease 3 seconds here (30 by default).  Each host renews its claims
every third of a lease; lease_left above counts down, and jumps back up at each
renewal.
EOF

say "4. kill -9 host 1 while it runs task $lost: no goodbye, no clean-up"
killed_pid=${HOST_PID[1]}
echo "\$ kill -9 $killed_pid      # host 1"
{ kill -KILL "$killed_pid" && wait "$killed_pid"; } 2>/dev/null
HOST_PID[1]=
killed=$(date +%s.%N)
q "SELECT id, state, attempts, host, round(extract(epoch FROM leased_until - now())::numeric, 1) AS lease_left FROM tasks LEFT JOIN lab_hosts USING (worker) WHERE id = $lost"
check "task $lost was still host 1's when host 1 died" \
    [ "$(v "SELECT state || ' ' || attempts FROM tasks WHERE id = $lost")" = "running 1" ]
echo "The row still says running, on host 1: a claim is not tied to a connection,"
echo "and from the database a dead host looks just like one cut off from the network,"
echo "which may still be working.  Only the lease decides: nobody renews it now."
echo "waiting for host 2 or 3 to find the lapsed lease..."
back=
for _ in $(seq 600); do
    [ "$(v "SELECT state = 'queued' OR attempts > 1 FROM tasks WHERE id = $lost")" = t ] &&
        { back=1; break; }
    sleep 0.1
done
secs=$(awk -v a="$killed" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
check "task $lost went back to the queue, $secs s after the kill (lease: $LEASE s)" [ -n "$back" ]
for n in 2 3; do
    grep -m1 "whose server stopped renewing" "$WORK/host$n.log" | sed "s/^/host $n's log: /"
done
q "$QUEUE"
echo "A host that renews its own claims also looks for lapsed ones: it put task $lost"
echo "back in the queue (no host, no lease), where the next free worker claims it"
echo "again as attempt 2, and runs it from the start."

say "5. wait for all $N, through host 2: it made none of them, and need not run them"
show 2 "task wait ID      # for each of the $N"
notdone=0
for id in "${ids[@]}"; do
    on 2 task wait --for 300 "$id" >/dev/null 2>&1 || notdone=$((notdone + 1))
done
check "all $N tasks done" [ "$notdone" -eq 0 ]
echo "A wait does not poll: a trigger sends NOTIFY imgproc_task at each change of"
echo "state, and every host LISTENs, so host 2 wakes when host 3 finishes a task."

say "6. fetch task $lost's result through host 3"
show 3 "task result $lost -o $WORK/task$lost.jpg"
on 3 task result "$lost" -o "$WORK/task$lost.jpg"
size=$(vipsheader "$WORK/task$lost.jpg" 2>/dev/null | sed 's/^[^:]*: //')
echo "$size"
check "a JPEG that fits in 2000x2000" \
    sh -c "[ \$(vipsheader -f width '$WORK/task$lost.jpg') -le 2000 ] && [ \$(vipsheader -f height '$WORK/task$lost.jpg') -le 2000 ]"
other=$(v "SELECT min(id) FROM tasks WHERE state = 'done' AND attempts = 1")
on 3 task result "$other" -o "$WORK/task$other.jpg" 2>/dev/null
check "the same bytes as task $other's, which ran once" cmp -s "$WORK/task$lost.jpg" "$WORK/task$other.jpg"
echo "Running a task again is safe because it is idempotent: the same photo and steps"
echo "give the same image, whichever host runs it, however many times."

say "7. the queue at the end: who ran what, and how many times"
q "SELECT id, state, attempts, host FROM tasks LEFT JOIN lab_hosts USING (worker) ORDER BY id"
check "task $lost was claimed twice: attempts = 2" [ "$(v "SELECT attempts FROM tasks WHERE id = $lost")" = 2 ]
q "SELECT host, count(*) AS finished FROM tasks LEFT JOIN lab_hosts USING (worker) GROUP BY host ORDER BY host"
early=$(v "SELECT count(*) FROM tasks WHERE worker = '$me/$killed_pid' AND state = 'done'")
by=$(v "SELECT host FROM tasks JOIN lab_hosts USING (worker) WHERE id = $lost")
[ "$early" = 1 ] && tasks=task || tasks=tasks
echo "Host 1 finished $early $tasks before it died; the one it was running then,"
echo "task $lost, was run again from the start, and finished, by $by."
cat <<EOF
attempts is also the fencing token.  A worker records a task's outcome with
    UPDATE tasks SET state = 'done', ...
     WHERE id = $lost AND attempts = <its attempt> AND state = 'running'
Had host 1 been only frozen, or cut off, and come back with attempt 1's
result, its UPDATE would match no row: its late result is refused (its log says
so), and attempt 2's stands.  A task whose lease lapses three times fails.
EOF

echo
echo "Questions: why must a task be safe to run twice?  What would a lease of 30 s"
echo "change in this lab, and one of 1 s on a busy machine?  Try kill -STOP instead of"
echo "kill -9, wait past the lease, then kill -CONT: what does the stopped host's log say?"
finish

#!/bin/bash
# A cluster: three imgprocd hosts, each in a network namespace of its own
# with its own rpcbind, sharing one task queue in a throwaway PostgreSQL on
# the bridge between them; clients in the root namespace reach each host by
# its address.  Real parts throughout: a task made on one host is waited on
# from a second and fetched from a third; a host killed (kill -9) or cut off
# (its link down) while it runs tasks loses them to the others, and its late
# result is refused; PostgreSQL restarted (fast, then immediate) under a
# stream of creates loses no acknowledged task.  Results are checked pixel
# for pixel against libvips' own command line on real photographs.
#
# An imgprocd without --store runs each host on its own SQLite queue: then
# the harness and the per-host checks run, and the shared-queue ones are
# skipped (CLUSTER_STORE=sqlite asks for that run).  CLUSTER_SCENARIOS
# picks some of e a m c o b d (all by default), as in
# CLUSTER_SCENARIOS=c prove -v tests/cluster/cluster.t.
PORT=47200
PROG=1061000090
# Before lib.sh, whose slot locks may be root's files.
[ "$(id -u)" -eq 0 ] || { echo "1..0 # SKIP needs root (network namespaces, a bridge)"; exit 0; }
. "$(dirname "$0")/../lib.sh"

cluster_skip_unless_able
# The names (namespaces, bridge) and ports are fixed: one run at a time.
[ "$slot" -eq 0 ] || bail "another run of $(basename "$0") holds the cluster's names and ports"
trap 'cluster_cleanup; cleanup' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

CORPUS=${IMGPROC_CORPUS:-${XDG_CACHE_HOME:-$HOME/.cache}/imgproc/corpus}
[ -f "$CORPUS/MANIFEST.txt" ] || bail "the real-photo corpus is missing: run 'make corpus'"
P=$TMP/photos
R=$TMP/ref
mkdir -p "$P" "$R" "$TMP/out"
for f in jpeg-photo-ladybird.jpg jpeg-photo-storm.jpg png-rgb-art.png jpeg-small-photo.jpg \
         jpeg-13mp-photo.jpg; do
    cp "$CORPUS/$f" "$P/" || bail "corpus file $f is missing"
done
BIG=$P/jpeg-13mp-photo.jpg
# The long pipeline: seconds of work per task on the 13-megapixel photo
# (blur, then a PNG of 40 MB of pixels), so a host is caught running it.
LONG=blur=25

# Some corpus photos carry EXIF that libvips warns about on every read.
vips() { VIPS_WARNING=0 command vips "$@"; }
vipsheader() { VIPS_WARNING=0 command vipsheader "$@"; }

SCENARIOS=${CLUSTER_SCENARIOS:-eamcobd}
want() { case "$SCENARIOS" in *"$1"*) return 0 ;; esac; return 1; }

SHARED=
"$IMGPROCD" --help 2>&1 | grep -q -- '--store' && SHARED=1
[ "${CLUSTER_STORE:-}" = sqlite ] && SHARED=     # the SQLite hosts' run, by choice
LEASE=3

# ---- references, from libvips' command line alone
printf '3 1\n0.299 0.587 0.114\n' >"$R/luma.mat"
vips recomb "$P/jpeg-photo-ladybird.jpg" "$R/g.v" "$R/luma.mat" &&
    vips round "$R/g.v" "$R/gr.v" rint && vips cast "$R/gr.v" "$R/gray.v" uchar &&
    vips flip "$P/png-rgb-art.png" "$R/flip.v" vertical &&
    vips gaussblur "$P/jpeg-photo-storm.jpg" "$R/blur4.v" 4 --precision integer &&
    vips flip "$P/jpeg-small-photo.jpg" "$R/small-flip.v" vertical || bail "vips cannot make the references"
rm -f "$R/g.v" "$R/gr.v"
if [ -n "$SHARED" ] && { want b || want c || want d; }; then
    vips gaussblur "$BIG" "$R/long.v" 25 --precision integer &&
        vips flip "$R/long.v" "$R/long-flip.v" vertical &&
        vips flip "$R/long.v" "$R/long-flop.v" horizontal &&
        vips rot "$R/long.v" "$R/long-r180.v" d180 &&
        vips rot "$R/long.v" "$R/long-r90.v" d90 || bail "vips cannot make the references"
fi

# maxdiff A B: the largest difference between two images' pixels (0 = the
# same), or "size" when their sizes or bands differ.
maxdiff() {
    local a=$1 b=$2
    [ "$(hdr width "$a")x$(hdr height "$a")x$(hdr bands "$a")" = \
      "$(hdr width "$b")x$(hdr height "$b")x$(hdr bands "$b")" ] || { echo size; return; }
    vips subtract "$a" "$b" "$TMP/d.v" && vips abs "$TMP/d.v" "$TMP/a.v" &&
        vips max "$TMP/a.v" | cut -d. -f1
    rm -f "$TMP/d.v" "$TMP/a.v"
}
# status N ID FIELD: one field of task ID's status, asked of host N.
status() {
    cluster_cli "$1" --json task status "$2" | field "$3" 2>/dev/null || echo "?"
}
# attempts ID: how many times a worker took task ID: TASK_STATUS's when it
# says, else the shared database's own column.
attempts() {
    local a
    a=$(cluster_cli 2 --json task status "$1" 2>/dev/null |
        python3 -c 'import json,sys; print(json.load(sys.stdin).get("attempts", ""))' 2>/dev/null)
    [ -n "$a" ] || a=$(pg_sql "SELECT attempts FROM tasks WHERE id = $1" 2>/dev/null)
    echo "${a:-?}"
}
# worker ID: the host that ran task ID last, as the database records it
# ("machine/pid": the namespace's hostname and imgprocd's pid).
worker() {
    pg_sql "SELECT worker FROM tasks WHERE id = $1" 2>/dev/null
}
# story ID: why task ID is not done, as diagnostics: its status (asked of
# the first host that answers) and what every host logged about it.
story() {
    local n st
    for n in 1 2 3; do
        st=$(cluster_cli "$n" --timeout 10 --json task status "$1" 2>/dev/null) && break
    done
    echo "$st" | python3 -c 'import json,sys
d = json.load(sys.stdin)
print("#   task %s: %s %s %s" % (d["id"], d["state"], d.get("error_status", ""), d.get("error", "")))' 2>/dev/null ||
        echo "#   task $1: no host answers its status"
    echo "#   attempts $(attempts "$1"), last worker $(worker "$1")"
    for n in 1 2 3; do
        grep -E "task $1( |:|$)" "$(cluster_log $n)" 2>/dev/null | tail -5 | sed "s/^/#   h$n: /"
    done
}
# fetch N ID FILE: task ID's result from host N.
fetch() {
    cluster_cli "$1" task result "$2" -o "$3"
}

# ---- the cluster: database, namespaces, hosts
netns_up 3
pg_start
is "$(for n in 1 2 3; do ip netns exec "$CL_NS$n" psql "host=$PG_HOST port=$PG_PORT user=imgproc dbname=imgproc" \
        -XAtc 'SELECT inet_client_addr()'; done | tr '\n' ' ')" "$CL_NET.11 $CL_NET.12 $CL_NET.13 " \
   "the database answers each namespace over the bridge, seeing its address"
HOSTFLAGS=(--workers 2)
[ -n "$SHARED" ] && HOSTFLAGS+=(--store "$(pg_url)" --lease "$LEASE")
for n in 1 2 3; do cluster_host_start "$n" "${HOSTFLAGS[@]}"; done
if [ -n "$SHARED" ]; then
    n=0
    for h in 1 2 3; do grep -q 'store: PostgreSQL' "$(cluster_log $h)" && n=$((n + 1)); done
    is "$n" 3 "each host says it uses the PostgreSQL store"
else
    echo "# imgprocd takes no --store yet: each host runs its own SQLite queue"
fi

# ---- (e) each host answers SERVER_INFO, and is registered with its own rpcbind
scenario_e() {
    local n
    for n in 1 2 3; do
        like "$(rpcinfo -p "$CL_NET.1$n" | grep "^ *$PROG ")" "*$PROG*1*tcp*$CL_PORT*" \
             "e: rpcinfo -p $CL_NET.1$n: the program, on the port of host $n, in its namespace's rpcbind"
        cluster_cli "$n" info --json >"$TMP/info$n.json"
        is "$(j "$TMP/info$n.json" 'd["limits"]["workers"]')" 2 "e: imgproc -H $CL_NET.1$n info: host $n answers with its limits"
        if [ -n "$SHARED" ]; then
            like "$(j "$TMP/info$n.json" 'd.get("store")')" "PostgreSQL*shared*" "e: ... and says its queue is PostgreSQL's, shared"
        fi
        like "$(cluster_cli "$n" ping)" "ok:*on $CL_NET.1$n over tcp*" "e: ... and ping, over TCP"
    done
    rpcinfo -p 127.0.0.1 2>/dev/null | grep -q "^ *$PROG "
    is "$?" 1 "e: the root namespace's rpcbind knows nothing of the hosts"
}

# ---- (a) made on h1, waited on from h2, fetched from h3 (all on h1 when
# each host has its own queue)
scenario_a() {
    local C=1 W=2 F=3 spec id
    [ -n "$SHARED" ] || W=1 F=1
    local c0 r0
    c0=$(grep -c 'TASK_CREATE from' "$(cluster_log 2)"); r0=$(grep -c 'TASK_RESULT from' "$(cluster_log 1)")
    for spec in "gray grayscale jpeg-photo-ladybird.jpg" "flip flip png-rgb-art.png" \
                "blur4 blur=4 jpeg-photo-storm.jpg"; do
        set -- $spec
        id=$(cluster_cli $C task create -f png --steps "$2" "$P/$3")
        like "$id" "[1-9]*" "a: task create '$2' on h$C prints an id ($id)"
        like "$(cluster_cli $W task wait "$id" --for 120)" "task $id: done*" "a: task wait $id on h$W: done"
        cluster_cli $F --json task status "$id" >"$TMP/st.json"
        is "$(j "$TMP/st.json" 'd["state"], d["width"], d["height"], d["bands"]')" \
           "('done', $(hdr width "$R/$1.v"), $(hdr height "$R/$1.v"), $(hdr bands "$R/$1.v"))" \
           "a: its status on h$F: done, the size and bands of libvips' own result"
        fetch $F "$id" "$TMP/out/a-$1.png"; ok $? "a: task result $id from h$F"
        is "$(maxdiff "$TMP/out/a-$1.png" "$R/$1.v")" 0 "a: '$2' of $3: pixel for pixel what the vips command gives"
    done
    [ -n "$SHARED" ] || return 0
    is "$(grep -c 'TASK_CREATE from' "$(cluster_log 2)")" "$c0" "a: h2 served no create"
    is "$(grep -c 'TASK_RESULT from' "$(cluster_log 1)")" "$r0" "a: h1 served no result"
    # The same create with one token, sent to the three hosts at once: one task.
    local pids=()
    for n in 1 2 3; do
        cluster_cli $n task create --hold --token "tok-$$" --steps flip "$P/jpeg-small-photo.jpg" \
            >"$TMP/tok$n" 2>&1 &
        pids+=($!)
    done
    wait "${pids[@]}"
    is "$(cat "$TMP/tok1")-$(cat "$TMP/tok2")-$(cat "$TMP/tok3")" \
       "$(cat "$TMP/tok1")-$(cat "$TMP/tok1")-$(cat "$TMP/tok1")" \
       "a: one token sent to h1, h2 and h3 at once names one task on all three ($(cat "$TMP/tok1"))"
    is "$(pg_sql "SELECT count(*) FROM tasks WHERE token = 'tok-$$'")" 1 "a: ... one row in the database"
}

# ---- (c) PostgreSQL restarted, fast then immediate, while two long tasks
# run and a client creates short ones in a loop over the three hosts: the
# long ones end done, and so does every create that printed an id
# (acknowledged).
scenario_c() {
    local ACK=$TMP/acked LOOP nack nref bad id n first last L1 L2
    L1=$(cluster_cli 1 task create -f png --steps "$LONG,flip" "$BIG")
    L2=$(cluster_cli 2 task create -f png --steps "$LONG,flop" "$BIG")
    cluster_cli 3 task wait "$L1" --while queued --for 60 >/dev/null &&
        cluster_cli 3 task wait "$L2" --while queued --for 60 >/dev/null
    ok $? "c: two long tasks running ($L1, $L2)"
    : >"$ACK"
    rm -f "$TMP/stop" "$TMP/refused"
    (
        i=0
        while [ ! -e "$TMP/stop" ] && kill -0 $$ 2>/dev/null; do   # $$: the test
            n=$((i % 3 + 1))
            if id=$(cluster_cli $n --timeout 30 task create -f png --steps flip "$P/jpeg-small-photo.jpg" \
                    2>"$TMP/create.err"); then
                echo "$id $n" >>"$ACK"
            else
                echo "exit $?: $(head -1 "$TMP/create.err")" >>"$TMP/refused"
            fi
            i=$((i + 1))
        done
    ) &
    LOOP=$!
    acked_more() {     # acked_more K: until K more creates are acknowledged
        local k
        for k in $(seq "$1"); do    # one line at a time: tail -f prints whatever comes
            wait_file "$ACK" . 120 $(($(wc -l <"$ACK") + 1)) || return 1
        done
    }
    acked_more 6; ok $? "c: a client creates tasks in a loop on the three hosts"
    pg_restart fast; ok $? "c: pg_ctl restart -m fast"
    acked_more 6; ok $? "c: creates are acknowledged again after it"
    pg_restart immediate; ok $? "c: pg_ctl restart -m immediate (crash recovery)"
    acked_more 6; ok $? "c: creates are acknowledged again after it"
    touch "$TMP/stop"
    wait "$LOOP"
    nack=$(wc -l <"$ACK")
    nref=$(wc -l <"$TMP/refused" 2>/dev/null || echo 0)
    echo "# c: $nack creates acknowledged, $nref refused during the restarts:"
    sed "s|$P/||" "$TMP/refused" 2>/dev/null | sort | uniq -c | sort -rn | head -6 | sed 's/^/#   /'
    bad=0
    while read -r id n; do
        cluster_cli $((n % 3 + 1)) task wait "$id" --for 120 >/dev/null 2>>"$TMP/c.err" || {
            bad=$((bad + 1)); echo "#   task $id was made on h$n"; story "$id"; }
    done <"$ACK"
    is "$bad" 0 "c: every one of the $nack acknowledged tasks ends done (each waited on from another host)"
    # A create whose commit's answer was lost may have made a task all the
    # same, unacknowledged: allowed (the client was told it failed); said.
    n=$(pg_sql "SELECT count(*) FROM tasks WHERE steps LIKE 'flip%'" 2>/dev/null)
    echo "# c: the database holds $n such tasks for the $nack acknowledged"
    for id in $(pg_sql "SELECT id FROM tasks WHERE steps LIKE 'flip%' ORDER BY id" 2>/dev/null); do
        grep -q "^$id " "$ACK" || { echo "#   unacknowledged:"; story "$id"; }
    done
    cluster_cli 2 --json task list >"$TMP/list.json"
    is "$(python3 - "$TMP/list.json" "$ACK" <<'PY'
import json, sys
tasks = {t["id"]: t for t in json.load(open(sys.argv[1]))}
ids = [int(l.split()[0]) for l in open(sys.argv[2])]
missing = [i for i in ids if i not in tasks]
notdone = [i for i in ids if i in tasks and tasks[i]["state"] != "done"]
sizes = {tasks[i]["result_size"] for i in ids if i in tasks and tasks[i]["state"] == "done"}
print("missing %s, not done %s, result sizes %d" % (missing, notdone, len(sizes)))
PY
)" "missing [], not done [], result sizes 1" "c: task list on h2 has them all, done, with results of one size"
    # The first and the last of them that are done.
    set -- $(python3 -c 'import json,sys
done = {t["id"] for t in json.load(open(sys.argv[1])) if t["state"] == "done"}
ids = [int(l.split()[0]) for l in open(sys.argv[2]) if int(l.split()[0]) in done]
print(ids[0], ids[-1]) if ids else print("none none")' "$TMP/list.json" "$ACK")
    first=$1 last=$2
    fetch 3 "$first" "$TMP/out/c-first.png" && fetch 1 "$last" "$TMP/out/c-last.png"
    is "$(maxdiff "$TMP/out/c-first.png" "$R/small-flip.v") $(maxdiff "$TMP/out/c-last.png" "$R/small-flip.v")" "0 0" \
       "c: tasks $first and $last (the first and last done) are the flipped photo, pixel for pixel"
    bad=0
    for n in 1 2 3; do
        id=$(cluster_cli $n task create -f png --steps flip "$P/jpeg-small-photo.jpg") &&
            cluster_cli $((n % 3 + 1)) task wait "$id" --for 60 >/dev/null || bad=$((bad + 1))
    done
    is "$bad" 0 "c: after both restarts each host creates a task another host sees done"
    bad=0
    for id in "$L1" "$L2"; do
        cluster_cli 3 task wait "$id" --for 180 >/dev/null || { bad=$((bad + 1)); story "$id"; }
    done
    is "$bad" 0 "c: the two long tasks running across the restarts end done"
    fetch 1 "$L1" "$TMP/out/c-l1.png"; fetch 2 "$L2" "$TMP/out/c-l2.png"
    is "$(maxdiff "$TMP/out/c-l1.png" "$R/long-flip.v") $(maxdiff "$TMP/out/c-l2.png" "$R/long-flop.v")" "0 0" \
       "c: ... with libvips' pixels (attempts $(attempts "$L1") and $(attempts "$L2"))"
}

# ---- (b) kill -9 of a host running tasks.  h1 alone takes the first two
# (its two workers), the others start and take the rest, and h1 dies while
# it runs its two: they are queued again once their lease lapses, and done
# by h2 and h3.
scenario_b() {
    local L=() steps n bad id i ref from2 from3
    for n in 2 3; do [ -n "${CL_PIDS[$n]}" ] && cluster_host_stop "$n"; done
    [ -n "${CL_PIDS[1]}" ] || cluster_host_start 1 "${HOSTFLAGS[@]}"
    for steps in "$LONG" "$LONG,flip" "$LONG,flop" "$LONG,rotate=180"; do
        L+=("$(cluster_cli 1 task create -f png --steps "$steps" "$BIG")")
    done
    like "${L[*]}" "[1-9]* [1-9]* [1-9]* [1-9]*" "b: four long tasks created on h1 (${L[*]})"
    cluster_cli 1 task wait "${L[0]}" --while queued --for 60 >/dev/null &&
        cluster_cli 1 task wait "${L[1]}" --while queued --for 60 >/dev/null
    ok $? "b: h1, alone, takes the first two"
    for n in 2 3; do cluster_host_start "$n" "${HOSTFLAGS[@]}"; done
    is "$(status 1 "${L[0]}" state) $(status 1 "${L[1]}" state)" "running running" \
       "b: with h2 and h3 up again, h1 still runs them"
    is "$(worker "${L[0]}") $(worker "${L[1]}")" "${CL_NS}1/${CL_PIDS[1]} ${CL_NS}1/${CL_PIDS[1]}" \
       "b: ... the database names h1 (its hostname/pid) as their worker"
    from2=$(($(cluster_log_lines 2) + 1)); from3=$(($(cluster_log_lines 3) + 1))
    cluster_host_kill 1
    bad=0
    for id in "${L[@]}"; do
        cluster_cli 2 task wait "$id" --for 180 >/dev/null || { bad=$((bad + 1)); story "$id"; }
    done
    is "$bad" 0 "b: after kill -9 of h1, all four end done (waited on from h2)"
    is "$(attempts "${L[0]}") $(attempts "${L[1]}") $(attempts "${L[2]}") $(attempts "${L[3]}")" "2 2 1 1" \
       "b: attempts: 2 for the two h1 was running, 1 for the others"
    like "$(worker "${L[0]}") $(worker "${L[1]}")" "${CL_NS}[23]/* ${CL_NS}[23]/*" "b: ... and h2 or h3 ran them the second time"
    { tail -n +"$from2" "$(cluster_log 2)"; tail -n +"$from3" "$(cluster_log 3)"; } >"$TMP/b.log"
    grep -qE 'stopped renewing|queued again' "$TMP/b.log"; ok $? "b: a survivor says it queued h1's tasks again"
    i=0
    for ref in long long-flip long-flop long-r180; do
        fetch 3 "${L[$i]}" "$TMP/out/b-$i.png"
        is "$(maxdiff "$TMP/out/b-$i.png" "$R/$ref.v")" 0 "b: task ${L[$i]} fetched from h3: pixel for pixel libvips' $ref"
        i=$((i + 1))
    done
}

# ---- (d) a host cut off (its link down) while it runs a task, past its
# lease: another host does the task; once the link is back, the cut host's
# late result is refused.
scenario_d() {
    local n X from3 f0
    for n in 1 2; do [ -n "${CL_PIDS[$n]}" ] && cluster_host_stop "$n"; done
    [ -n "${CL_PIDS[3]}" ] || cluster_host_start 3 "${HOSTFLAGS[@]}"
    X=$(cluster_cli 3 task create -f png --steps "$LONG,rotate=90" "$BIG")
    cluster_cli 3 task wait "$X" --while queued --for 60 >/dev/null
    is "$(status 3 "$X" state)" running "d: h3, alone, runs task $X"
    from3=$(($(cluster_log_lines 3) + 1))
    cut_link 3
    cluster_host_start 2 "${HOSTFLAGS[@]}"
    f0=$NFAIL
    like "$(cluster_cli 2 task wait "$X" --for 180)" "task $X: done*" "d: with h3 cut off, task $X ends done, waited on from h2"
    [ "$NFAIL" -eq "$f0" ] || story "$X"
    is "$(attempts "$X")" 2 "d: in its second attempt"
    is "$(worker "$X")" "${CL_NS}2/${CL_PIDS[2]}" "d: ... run by h2"
    fetch 2 "$X" "$TMP/out/d-h2.png"
    is "$(maxdiff "$TMP/out/d-h2.png" "$R/long-r90.v")" 0 "d: its result, fetched from h2: pixel for pixel libvips' own"
    restore_link 3
    cluster_wait_log 3 "task $X: .*refused" 120 "$from3" ||
        { echo "# d: no such line in h3's log within 120 s"; story "$X"; false; }
    ok $? "d: link restored, h3 logs that its late result for task $X is refused"
    grep -E "task $X: .*refused" "$(cluster_log 3)" | head -2 | sed 's/^/#   h3: /'
    fetch 3 "$X" "$TMP/out/d-h3.png"; ok $? "d: h3 serves the task's result again"
    cmp -s "$TMP/out/d-h2.png" "$TMP/out/d-h3.png"; ok $? "d: ... the same bytes as h2's (h2's result, not h3's)"
    is "$(status 3 "$X" state) $(attempts "$X")" "done 2" "d: still done, attempts 2"
}

# ---- (o) PostgreSQL down longer than a lease while h1 runs a task: no
# server is at fault, so the task runs on where it was, attempt 1 (a lease
# that ran out while the database was down gets one lease from its restart).
scenario_o() {
    local X from1
    for n in 2 3; do [ -n "${CL_PIDS[$n]}" ] && cluster_host_stop "$n"; done
    [ -n "${CL_PIDS[1]}" ] || cluster_host_start 1 "${HOSTFLAGS[@]}"
    X=$(cluster_cli 1 task create -f png --steps "$LONG,rotate=270" "$BIG")
    cluster_cli 1 task wait "$X" --while queued --for 60 >/dev/null
    is "$(status 1 "$X" state)" "running" "o: h1 runs a long task ($X)"
    for n in 2 3; do cluster_host_start "$n" "${HOSTFLAGS[@]}"; done
    from1=$(($(cluster_log_lines 1) + 1))
    pg_as pg_ctl -D "$PG_DIR/data" -m fast -w stop >/dev/null
    # h1's renewal tries for 5 s before it says it failed: past the 3 s lease.
    cluster_wait_log 1 "cannot renew the claims" 60 "$from1"
    ok $? "o: PostgreSQL stopped; h1 says it cannot renew its claim (the lease runs out)"
    pg_as pg_ctl -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 start >/dev/null
    ok $? "o: PostgreSQL started again"
    like "$(cluster_cli 2 task wait "$X" --for 180)" "task $X: done*" "o: the task ends done (waited on from h2)"
    is "$(attempts "$X") $(worker "$X")" "1 ${CL_NS}1/${CL_PIDS[1]}" \
       "o: ... in its first attempt, by h1: the outage was not h1's fault"
}

# ---- (m) the schema: three servers started at once on an empty database
# make it once between them (an advisory lock; without it, two of three
# failed in the research); a database newer than the program is refused.
scenario_m() {
    local db=imgproc_m n rc pids=() url
    mpsql() { psql -h "$PG_DIR/sock" -p "$PG_PORT" -U imgproc -d "$1" -XAtq -v ON_ERROR_STOP=1 -c "$2"; }
    mpsql imgproc "DROP DATABASE IF EXISTS $db" >/dev/null && mpsql imgproc "CREATE DATABASE $db" >/dev/null ||
        bail "cannot make the database $db"
    url="postgres://imgproc@$PG_HOST:$PG_PORT/$db"
    for n in 1 2 3; do
        cluster_nolocks "$IMGPROCD" --program "$PROG" --no-rpcbind --local-socket none \
            --listen 127.0.0.1 --port $((PORT + 40 + n)) --state-dir "$TMP/m$n" --store "$url" \
            >"$TMP/m$n.log" 2>&1 &
        pids+=($!)
    done
    rc=0
    for n in 1 2 3; do
        wait_file "$TMP/m$n.log" "ready:|refused|cannot|failed" 60 && grep -q "ready:" "$TMP/m$n.log" ||
            { rc=1; sed 's/^/#   /' "$TMP/m$n.log"; }
    done
    ok $rc "m: three servers started at once on an empty database all serve"
    is "$(mpsql $db "SELECT count(*), max(version) FROM imgproc_schema")" "1|1" \
       "m: ... the schema made once (version 1, one row)"
    is "$(cat "$TMP"/m?.log | grep -c "schema brought to version 1")" 1 "m: ... by one of them"
    kill -TERM "${pids[@]}"; wait "${pids[@]}"
    mpsql $db "INSERT INTO imgproc_schema (version, applied_by) VALUES (99, 'a newer imgprocd')" >/dev/null
    "$IMGPROCD" --program "$PROG" --no-rpcbind --local-socket none --listen 127.0.0.1 \
        --port $((PORT + 41)) --state-dir "$TMP/m1" --store "$url" >"$TMP/m-old.log" 2>&1
    is "$?" 1 "m: a database newer than the program: imgprocd exits 1"
    like "$(cat "$TMP/m-old.log")" "*schema is version 99, newer than this imgprocd's 1: upgrade imgprocd*" \
         "m: ... saying so"
    mpsql imgproc "DROP DATABASE $db" >/dev/null
}

for s in e a m c o b d; do
    want "$s" || continue
    case "$s" in
    [mcobd]) [ -n "$SHARED" ] || { skip "scenario $s needs the shared store (imgprocd --store)"; continue; } ;;
    esac
    "scenario_$s"
done
for n in 1 2 3; do
    [ -n "${CL_PIDS[$n]}" ] || continue
    cluster_host_stop "$n"
    is "$STOP_STATUS" 0 "h$n stops cleanly (SIGTERM)"
done
done_testing

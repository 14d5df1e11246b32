#!/bin/bash
# bench/cluster.sh - the shared task queue (imgprocd --store postgres://...): one
# table of measured figures beside references timed in the same run, and the ratio.
#
#   bash bench/cluster.sh           the full run (a minute on 2 quiet cores, 4 on busy ones)
#   bash bench/cluster.sh --tiny    a short run at tiny sizes: proves the harness works
#
# Q rows: the queue alone, no image work (bench/queue.c): tasks claimed per
# second, and claimed then finished per second, by 1 to 4 claimers, each with a
# store of its own (one database connection and one LISTENer each, as that many
# servers would have), on a throwaway PostgreSQL 15 over TCP, synchronous_commit
# on.  References: the SQLite store (one store, one thread, as imgprocd uses
# it), timed alternately in the same run; and graphile-worker's published
# figures, cited, not measured here: 15,607 jobs/s unbatched and ~184,000
# batched ("perfTest results", https://worker.graphile.org/docs/performance,
# website/docs/performance.md in github.com/graphile/worker: an i9-14900K, 4
# processes of 24 concurrent jobs, the database on the same machine).
#
# C rows: real imgprocd hosts (127.0.0.1, .2, .3, one port, no rpcbind) sharing
# the PostgreSQL queue, on real photographs from the corpus.  Tasks are created
# through host 1 (imgproc submit: one client, each image uploaded with its
# TASK_CREATE) and waited for through host 2 (imgproc task wait; through host 1
# when it is alone).  Per configuration: the create-to-done latency of a lone
# task on an idle queue (median of LONE), that of each task of a burst of
# CTASKS (median and p90; mostly time spent queued), the burst's images per
# second (first created to last finished, the servers' clocks), and CPU-seconds
# per image over the burst: every imgprocd's utime+stime (/proc/PID/stat), plus
# the whole PostgreSQL cluster's (the postmaster's own and its reaped
# children's, and each live backend's).  Reference: the same work on one host
# with the default store (SQLite in its state folder), same run.
# The last rows divide the database's capacity, measured both ways (claims per
# second; its CPU per image), by what one host of one worker asks of it.
#
# Nothing here asserts a time.  Needs root (PostgreSQL runs as nobody through
# runuser: tests/lib.sh's pg_start) and PostgreSQL 15; without them it says so
# and exits 0.  Ports: 47230 (PostgreSQL), 47240 (the hosts).
# No set -u: tests/lib.sh is not written for it.
BUILD=${BUILD:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
QUEUE="$ROOT/$BUILD/bench/queue"
CORPUS=${IMGPROC_CORPUS:-${XDG_CACHE_HOME:-$HOME/.cache}/imgproc/corpus}

# QTASKS: tasks drained per Q run; QRUNS: runs after a warm-up of QTASKS/5
# (none when tiny); CLAIMERS: the Q rows' claimers; CTASKS: tasks in a burst;
# LONE: lone tasks (after one more that warms up); WORKERS: each host's --workers.
if [ "${1:-}" = "--tiny" ]; then
    QTASKS=40; QRUNS=1; WARM=0; CLAIMERS="1 2"; CTASKS=4; LONE=1
else
    QTASKS=1000; QRUNS=3; WARM=1; CLAIMERS="1 2 3 4"; CTASKS=96; LONE=8
fi
WORKERS=1
STEPS=resize=1280x1280,grayscale
PHOTOS="jpeg-photo-ladybird.jpg jpeg-photo-storm.jpg jpeg-gray-photo.jpg jpeg-camera-orient-6.jpg"
GRAPHILE=15607
GRAPHILE_BATCHED=184000

unable() { echo "cluster bench: skipped: $*"; exit 0; }
[ "$(id -u)" -eq 0 ] || unable "needs root (PostgreSQL is run as nobody through runuser)"
[ -x /usr/lib/postgresql/15/bin/initdb ] || unable "PostgreSQL 15 is missing (apt-get install postgresql-15)"
if [ ! -x "$QUEUE" ] || [ ! -x "$ROOT/$BUILD/imgprocd" ] || [ ! -x "$ROOT/$BUILD/imgproc" ]; then
    echo "cluster bench: build first (make bench)" >&2
    exit 2
fi
"$ROOT/$BUILD/imgprocd" --help 2>&1 | grep -q -- '--store' || unable "this imgprocd has no --store"
[ -f "$CORPUS/MANIFEST.txt" ] || { echo "cluster bench: the real-image corpus is missing: make corpus" >&2; exit 2; }

# tests/lib.sh: pg_start, pg_url, pg_sql, pg_stop, host_start, bail.  It finds
# the tree from $0 as a test two folders deep would: set right after.
# shellcheck disable=SC2034 # these are lib.sh's
PORT=47240 PROG=1061000097 PG_PORT=47230 PG_HOST=127.0.0.1
# shellcheck source=tests/lib.sh
. "$ROOT/tests/lib.sh"
# shellcheck disable=SC2034
TOP=$ROOT
IMGPROCD="$ROOT/$BUILD/imgprocd"
IMGPROC="$ROOT/$BUILD/imgproc"
[ "$slot" -eq 0 ] || bail "another bench/cluster.sh holds ports $PG_PORT and $PORT"

stop_hosts() {
    local n
    for n in "${!PIDS[@]}"; do
        [ -n "${PIDS[$n]}" ] || continue
        kill -TERM "${PIDS[$n]}" 2>/dev/null
        wait "${PIDS[$n]}" 2>/dev/null
        PIDS[n]=
        rm -f "$TMP/ready$n"
    done
}
bench_cleanup() {
    stop_hosts
    pg_stop
    cleanup
}
trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# row NAME MEASURED REFERENCE UNIT: as bench/run.sh prints them, without a target.
ROWS=0
row() {
    local ratio
    ratio=$(awk -v m="$2" -v r="$3" 'BEGIN { printf "%.2f", (r > 0) ? m / r : 0 }')
    ROWS=$((ROWS + 1))
    printf '%-74s %10s %10s %-6s %7sx\n' "$1" "$2" "$3" "$4" "$ratio"
}
header() { printf '%-74s %10s %10s %-6s %8s\n' "" measured reference unit ratio; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "imgproc shared-queue benchmarks: $(nproc) cores, $(/usr/lib/postgresql/15/bin/postgres --version)"
echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg) (figures from a busy machine vary)"
echo "Q rows: the queue alone (no images), $QTASKS tasks drained per run, median of $QRUNS run(s)$([ $WARM = 1 ] && echo " after a warm-up");"
echo "reference: the SQLite store, one thread, runs alternated; graphile-worker's published perfTest"
echo "figures ($GRAPHILE jobs/s unbatched, $GRAPHILE_BATCHED batched: cited, not run here)"
echo

pg_start
URL=$(pg_url)
export QUEUE_PG_PID
QUEUE_PG_PID=$(head -1 "$PG_DIR/data/postmaster.pid")

# ---- Q: the queue alone.  Runs alternate between the configurations, so
# that each sees the same machine; round 0 is the warm-up.
declare -A Q
for run in $(seq $((1 - WARM)) "$QRUNS"); do
    n=$([ "$run" -eq 0 ] && echo $((QTASKS / 5)) || echo "$QTASKS")
    for mode in claim finish; do
        rm -rf "$TMP/q"
        r=$("$QUEUE" sqlite "$TMP/q" "$n" "$mode" 2>"$TMP/queue.err") ||
            { cat "$TMP/queue.err" >&2; bail "queue sqlite $mode failed"; }
        read -r rate add cpu db <<<"$r"
        [ "$run" -gt 0 ] && Q[sqlite.$mode]+="$rate " && Q[sqlite.$mode.cpu]+="$cpu "
        for k in $CLAIMERS; do
            rm -rf "$TMP/q"
            r=$("$QUEUE" pg "$URL" "$TMP/q" "$k" "$n" "$mode" 2>"$TMP/queue.err") ||
                { cat "$TMP/queue.err" >&2; bail "queue pg $k $mode failed"; }
            pg_sql "TRUNCATE tasks, chunks" || bail "cannot empty the tasks table"
            read -r rate add cpu db <<<"$r"
            [ "$run" -gt 0 ] && Q[pg$k.$mode]+="$rate " && Q[pg$k.add]+="$add " &&
                Q[pg$k.$mode.cpu]+="$((cpu + db)) " && Q[pg$k.$mode.db]+="$db "
        done
    done
done
rm -rf "$TMP/q"
qm() { echo "${Q[$1]}" | tr ' ' '\n' | grep . | median | awk '{ printf "%.0f\n", $1 }'; }

header
sq_claim=$(qm sqlite.claim)
sq_finish=$(qm sqlite.finish)
row "Q. SQLite: claims/s, 1 thread (the reference)" "$sq_claim" "$sq_claim" 1/s
row "Q. SQLite: claim+finish/s, 1 thread (the reference)" "$sq_finish" "$sq_finish" 1/s
s() { [ "$1" -gt 1 ] && echo s; }
for k in $CLAIMERS; do
    row "Q. PostgreSQL: claims/s, $k claimer$(s "$k") vs SQLite" "$(qm "pg$k.claim")" "$sq_claim" 1/s
done
BEST=0
for k in $CLAIMERS; do
    f=$(qm "pg$k.finish")
    awk -v f="$f" -v b="$BEST" 'BEGIN { exit !(f > b) }' && BEST=$f && BESTK=$k
    row "Q. PostgreSQL: claim+finish/s, $k claimer$(s "$k") vs SQLite" "$f" "$sq_finish" 1/s
done
row "Q. PostgreSQL: claim+finish/s, best ($BESTK) vs graphile-worker unbatched" "$BEST" "$GRAPHILE" 1/s
row "Q. PostgreSQL: claim+finish/s, best ($BESTK) vs graphile-worker batched" "$BEST" "$GRAPHILE_BATCHED" 1/s
row "Q. PostgreSQL: tasks added/s in one transaction vs claim+finish/s ($BESTK)" \
    "$(qm "pg$BESTK.add")" "$BEST" 1/s
sq_cpu=$(qm sqlite.finish.cpu)
row "Q. SQLite: CPU-us per claim+finish, in-process (the reference)" "$sq_cpu" "$sq_cpu" us
for k in $CLAIMERS; do
    row "Q. PostgreSQL: CPU-us per claim+finish, database + $k claimer$(s "$k") vs SQLite" \
        "$(qm "pg$k.finish.cpu")" "$sq_cpu" us
done
DB_US=$(qm "pg$BESTK.finish.db")
row "Q. PostgreSQL: ... the database's alone ($BESTK claimers) vs SQLite's whole" "$DB_US" "$sq_cpu" us
Q_SECONDS=$SECONDS

# ---- C: real hosts on real photographs.
mkdir -p "$TMP/photos"
read -r -a photo <<<"$PHOTOS"
for i in $(seq 1 "$CTASKS"); do
    f=${photo[$(( (i - 1) % ${#photo[@]} ))]}
    [ -s "$CORPUS/$f" ] || bail "corpus file $f is missing: make corpus"
    ln -s "$CORPUS/$f" "$TMP/photos/$(printf %03d "$i")-$f"
done
LONE_PHOTO=$CORPUS/${photo[0]}
TICK=$(getconf CLK_TCK)

# CPU ticks of every host; of the PostgreSQL cluster (its postmaster, the
# children it reaped, its live children).
host_ticks() {
    local n t=0
    for n in "${!PIDS[@]}"; do
        [ -n "${PIDS[$n]}" ] && t=$((t + $(awk '{ print $14 + $15 }' "/proc/${PIDS[$n]}/stat")))
    done
    echo "$t"
}
pg_ticks() {
    local pm c t
    pm=$(head -1 "$PG_DIR/data/postmaster.pid")
    t=$(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pm/stat")
    for c in $(ps --ppid "$pm" -o pid=); do
        t=$((t + $(awk '{ print $14 + $15 }' "/proc/$c/stat" 2>/dev/null || echo 0)))
    done
    echo "$t"
}

hc() { local n=$1; shift; "$IMGPROC" --program "$PROG" -H "127.0.0.$n" -p "$PORT" --quiet "$@"; }

# run_config NAME HOSTS STORE: hosts 1..HOSTS on STORE ("sqlite:" or the URL),
# the lone tasks, then the burst; sets LONE_MS MED_MS P90_MS IPS (images/s)
# CPU_HOSTS CPU_PG (seconds per image) WALL (s, the client's clock).
run_config() {
    local name=$1 hosts=$2 store=$3 n w id ids h0 p0 t0 h1 p1 t1
    # shellcheck disable=SC2034 # host_start's
    IMGPROCD_FLAGS="--workers $WORKERS --store $store --lease 10"
    for n in $(seq 1 "$hosts"); do
        rm -rf "$TMP/state$n" "$TMP/ready$n"
        host_start "$n"
    done
    w=$([ "$hosts" -gt 1 ] && echo 2 || echo 1)
    # Lone tasks, one at a time (the first warms up): the queue's own latency.
    : >"$TMP/lone.json"
    for i in $(seq 0 "$LONE"); do
        id=$(hc 1 task create --steps "$STEPS" "$LONE_PHOTO") || bail "$name: task create"
        hc "$w" task wait "$id" >/dev/null || bail "$name: task wait $id through host $w"
        [ "$i" -gt 0 ] && { hc 1 --json task status "$id"; echo; } >>"$TMP/lone.json"
        hc 1 task delete "$id" >/dev/null
    done
    # The burst: one client creates them all, one waits for each.
    h0=$(host_ticks); p0=$(pg_ticks); t0=$(date +%s.%N)
    hc 1 submit --steps "$STEPS" "$TMP"/photos/* >"$TMP/ids" || bail "$name: submit"
    mapfile -t ids <"$TMP/ids"
    [ "${#ids[@]}" -eq "$CTASKS" ] || bail "$name: submit printed ${#ids[@]} ids, not $CTASKS"
    for id in "${ids[@]}"; do
        hc "$w" task wait "$id" >/dev/null || bail "$name: task wait $id through host $w"
    done
    t1=$(date +%s.%N); h1=$(host_ticks); p1=$(pg_ticks)
    : >"$TMP/burst.json"
    for id in "${ids[@]}"; do
        { hc 1 --json task status "$id" && echo; } >>"$TMP/burst.json" || bail "$name: task status $id"
    done
    read -r LONE_MS MED_MS P90_MS IPS < <(python3 - "$TMP/lone.json" "$TMP/burst.json" <<'EOF'
import json, statistics, sys
def tasks(path):
    return [json.loads(l) for l in open(path) if l.strip()]
lone, burst = tasks(sys.argv[1]), tasks(sys.argv[2])
bad = [t["id"] for t in lone + burst if t["state"] != "done"]
if bad:
    sys.exit("tasks not done: %s" % bad)
lat = sorted(t["finished"] - t["created"] for t in burst)
span = max(t["finished"] for t in burst) - min(t["created"] for t in burst)
print("%.0f %.0f %d %.2f" % (statistics.median(t["finished"] - t["created"] for t in lone),
      statistics.median(lat), lat[max(0, -(-90 * len(lat) // 100) - 1)], len(burst) * 1000 / span))
EOF
    ) && [ -n "$IPS" ] || bail "$name: the tasks' times"
    CPU_HOSTS=$(awk -v t=$((h1 - h0)) -v k="$TICK" -v n="$CTASKS" 'BEGIN { printf "%.3f", t / k / n }')
    CPU_PG=$(awk -v t=$((p1 - p0)) -v k="$TICK" -v n="$CTASKS" 'BEGIN { printf "%.3f", t / k / n }')
    WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    stop_hosts
    [ "$store" = sqlite: ] || pg_sql "TRUNCATE tasks, chunks"
}

echo
echo "C rows: $CTASKS tasks of --steps $STEPS on real photographs ($PHOTOS),"
echo "created through host 1, waited for through host 2; hosts of --workers $WORKERS; $LONE lone tasks first"
header
run_config sqlite 1 sqlite:
R_LONE=$LONE_MS; R_MED=$MED_MS; R_P90=$P90_MS; R_IPS=$IPS; R_CPU=$CPU_HOSTS
row "C. SQLite, 1 host: images/s (the reference; the burst took ${WALL} s)" "$R_IPS" "$R_IPS" img/s
row "C. SQLite, 1 host: CPU-seconds per image (the reference)" "$R_CPU" "$R_CPU" s
row "C. SQLite, 1 host: lone task, create to done (the reference)" "$R_LONE" "$R_LONE" ms
row "C. SQLite, 1 host: burst, create to done, median (the reference)" "$R_MED" "$R_MED" ms
row "C. SQLite, 1 host: burst, create to done, p90 (the reference)" "$R_P90" "$R_P90" ms
for hosts in 1 2 3; do
    run_config "$hosts hosts" "$hosts" "$URL"
    hs="$hosts host$(s "$hosts")"
    row "C. PostgreSQL, $hs: images/s vs SQLite (the burst took ${WALL} s)" "$IPS" "$R_IPS" img/s
    row "C. PostgreSQL, $hs: CPU-seconds per image, hosts + database, vs SQLite" \
        "$(awk -v a="$CPU_HOSTS" -v b="$CPU_PG" 'BEGIN { printf "%.3f", a + b }')" "$R_CPU" s
    row "C. PostgreSQL, $hs: ... the database's alone, vs SQLite's whole" "$CPU_PG" "$R_CPU" s
    row "C. PostgreSQL, $hs: lone task, create to done, vs SQLite" "$LONE_MS" "$R_LONE" ms
    row "C. PostgreSQL, $hs: burst, create to done, median vs SQLite" "$MED_MS" "$R_MED" ms
    row "C. PostgreSQL, $hs: burst, create to done, p90 vs SQLite" "$P90_MS" "$R_P90" ms
    if [ "$hosts" -eq 1 ]; then ONE_IPS=$IPS; ONE_PG=$CPU_PG; fi
done

# What one host asks of the database against what the database gives; the
# ratio is how many such hosts one PostgreSQL serves.  Each image is one
# claim+finish (the first two rows), but also its create, its bytes in and out
# of the database (1 MiB rows), and the status and wait calls: the last row
# counts them all, as the database's CPU per image in the burst on one host.
echo
echo "How many hosts one PostgreSQL serves, each as the 1-host row above ($ONE_IPS images/s, --workers $WORKERS):"
header
row "H. claim+finish/s ($BESTK claimers) vs one host's images/s" "$BEST" "$ONE_IPS" img/s
row "H. claim+finish/s one database core gives (1 / its CPU per one) vs one host's" \
    "$(awk -v c="$DB_US" 'BEGIN { printf "%.0f", (c > 0) ? 1e6 / c : 0 }')" "$ONE_IPS" img/s
row "H. images/s one database core gives (1 / its CPU-s per image) vs one host's" \
    "$(awk -v c="$ONE_PG" 'BEGIN { printf "%.0f", (c > 0) ? 1 / c : 0 }')" "$ONE_IPS" img/s

echo
echo "$ROWS rows; $Q_SECONDS s to the Q rows (the database started), $((SECONDS - Q_SECONDS)) s to the rest"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

#!/bin/bash
# The lab scripts run against a real server and check their own results.
PORT=47105
PROG=1061000005
. "$(dirname "$0")/../lib.sh"

ensure_rpcbind
start_server
# The program number as imgprocd prints it (hex), through the client's variable:
# rpcinfo takes decimal only, so the scripts must convert it.
# Lab 8 starts servers of its own (imgprocd, and PostgreSQL 15 for their
# shared queue, on ports 47260-47289) and uses a photograph of the corpus
# when there is one: it needs PostgreSQL's programs, not this server.
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
for s in "$TOP"/scripts/0*.sh; do
    case $s in *08-one-queue.sh)
        if [ ! -x "$PG_BIN/initdb" ]; then
            echo "ok $((NTEST += 1)) # SKIP 08-one-queue.sh: PostgreSQL 15 is missing ($PG_BIN/initdb; apt-get install postgresql-15)"
            continue
        fi ;;
    esac
    IMGPROC="$IMGPROC" IMGPROCD="$IMGPROCD" PG_BIN="$PG_BIN" IMGPROC_PROGRAM=$(printf 0x%X $PROG) \
        bash "$s" >"$TMP/out" 2>&1
    rc=$?
    ok $rc "$(basename "$s") passes its own checks"
    [ $rc -eq 0 ] || sed 's/^/# /' "$TMP/out"
    grep -q "^FAIL" "$TMP/out"; is "$?" 1 "$(basename "$s") printed no FAIL"
    case $s in *04-task-database.sh)
        grep -q "the database is at $TMP/state/tasks.db" "$TMP/out"
        ok $? "04-task-database.sh found the server's own database, asking the server" ;;
    esac
done

# What a lab shows is what it runs: each "$ imgproc ..." line of lab 2 runs
# as pasted; its results stay in the folder it names, until --clean.
export IMGPROC_LAB_DIR="$TMP/labs"
IMGPROC="$IMGPROC" PROG=$PROG bash "$TOP/scripts/02-classic-calls.sh" >"$TMP/out" 2>&1
ok $? "02-classic-calls.sh passes with its results kept"
grep "^\$ $IMGPROC " "$TMP/out" | sed 's/^\$ //' >"$TMP/shown"
is "$(wc -l <"$TMP/shown")" 5 "it shows the 5 client commands it runs, in full"
bad=0
while read -r line; do (cd "$TMP" && bash -c "$line" >/dev/null 2>&1) || bad=$((bad + 1)); done <"$TMP/shown"
is "$bad" 0 "... and each runs as pasted"
like "$(tail -3 "$TMP/out")" "*results: $TMP/labs/02-classic-calls (remove them with: bash */02-classic-calls.sh --clean)*" \
     "it ends by saying where its results are"
is "$(ls "$TMP/labs/02-classic-calls" | tr '\n' ' ')" "blur.jpg gray.jpg rot.jpg sample.jpg small.jpg " \
   "... and they are there after it ended: the sample and the four results"
bash "$TOP/scripts/02-classic-calls.sh" --clean >/dev/null
[ ! -e "$TMP/labs/02-classic-calls" ]; ok $? "--clean removes them"
unset IMGPROC_LAB_DIR

# The same labs on real photographs from the corpus (tests/corpus/fetch.sh):
# a colour photograph for the single-image labs, a folder of real JPEGs
# (photographs and artwork, 0.1 to 9 megapixels, gray and colour) for lab 5.
CORPUS=${IMGPROC_CORPUS:-${XDG_CACHE_HOME:-$HOME/.cache}/imgproc/corpus}
if [ -f "$CORPUS/MANIFEST.txt" ]; then
    mkdir -p "$TMP/photos"
    for f in jpeg-photo-storm jpeg-photo-ladybird jpeg-gray-photo jpeg-9mp-art \
             jpeg-progressive-photo jpeg-camera-orient-6 jpeg-small-photo; do
        ln -s "$CORPUS/$f.jpg" "$TMP/photos/$f.jpg"
    done
    for s in "$TOP"/scripts/0*.sh; do
        case $s in *08-one-queue.sh) continue ;; esac   # it took a corpus photograph above
        IMGPROC="$IMGPROC" PROG=$PROG LAB_IMAGES=14 \
            IMGPROC_IMAGE="$CORPUS/jpeg-photo-ladybird.jpg" IMGPROC_PHOTOS="$TMP/photos" \
            bash "$s" >"$TMP/out" 2>&1
        rc=$?
        ok $rc "$(basename "$s") passes its own checks on real photographs"
        [ $rc -eq 0 ] || sed 's/^/# /' "$TMP/out"
    done
else
    ok 1 "the real-photo corpus is missing: run 'make corpus' (needs network once)"
fi
stop_server
# A script must fail when the service is not there.
IMGPROC="$IMGPROC" PROG=$PROG bash "$TOP/scripts/01-discovery.sh" >/dev/null 2>&1
is "$?" 1 "01-discovery.sh fails when the server is gone"
done_testing

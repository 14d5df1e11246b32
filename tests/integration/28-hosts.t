#!/bin/bash
# Several servers behind one -H a,b,c: synchronous calls go to the least
# loaded (parallel connections to different hosts), a host that does not
# answer is passed over, and task commands keep to the first that answers.
# Three servers on 127.0.0.1, .2 and .3, on one port, without rpcbind.
PORT=47170
PROG=1061000070
. "$(dirname "$0")/../lib.sh"

CORPUS=${IMGPROC_CORPUS:-${XDG_CACHE_HOME:-$HOME/.cache}/imgproc/corpus}
[ -f "$CORPUS/MANIFEST.txt" ] || bail "the real-photo corpus is missing: run 'make corpus'"
mkdir -p "$TMP/photos"
for f in jpeg-photo-ladybird.jpg jpeg-photo-storm.jpg jpeg-small-photo.jpg jpeg-orient-1.jpg \
         jpeg-progressive-photo.jpg png-rgb-art.png; do
    cp "$CORPUS/$f" "$TMP/photos/" || bail "corpus file $f is missing"
done
HOSTS=127.0.0.1,127.0.0.2,127.0.0.3


for n in 1 2 3; do host_start $n; done
mh() { "$IMGPROC" --program "$PROG" -H "$HOSTS" -p "$PORT" "$@"; }

# ---- parallel synchronous calls spread over the three
mh --quiet batch --sync -j 3 --steps grayscale -o "$TMP/out" "$TMP/photos" >/dev/null
ok $? "batch --sync -j 3 over three hosts: every photo done"
bad=0
for f in "$TMP"/photos/*; do
    b=$(basename "$f"); b=${b%.*}
    o=$(ls "$TMP/out/$b".* 2>/dev/null | head -1)
    [ -n "$o" ] && [ "$(hdr bands "$o")" = 1 ] && [ "$(hdr width "$o")" = "$(hdr width "$f")" ] || bad=$((bad + 1))
done
is "$bad" 0 "... each result one band, the photo's width"
# The three connections start at three different hosts; which worker takes
# which photo is the queue's business, so two hosts at least is what is sure.
used=0; calls=""
for n in 1 2 3; do
    c=$(host_calls $n PROCESS); calls="$calls $c"
    [ "$c" -gt 0 ] && used=$((used + 1))
done
[ "$used" -ge 2 ]; ok $? "the PROCESS calls went to $used of the 3 servers (calls:$calls)"

# ---- a host that does not answer is passed over
kill -KILL "${PIDS[2]}"; wait "${PIDS[2]}" 2>/dev/null
bad=0
for i in 1 2 3 4 5 6; do
    mh grayscale "$TMP/photos/jpeg-small-photo.jpg" -o "$TMP/g$i.jpg" 2>>"$TMP/err" &&
        [ "$(hdr bands "$TMP/g$i.jpg")" = 1 ] || bad=$((bad + 1))
done
is "$bad" 0 "with 127.0.0.2 killed, six grayscale calls are all answered by the others"
rm -rf "$TMP/out2"
mh --quiet batch --sync -j 3 --steps grayscale -o "$TMP/out2" "$TMP/photos" >/dev/null
ok $? "... and a batch --sync of every photo too"
is "$(ls "$TMP/out2" | wc -l)" 6 "... six results"

# ---- task commands keep to the first host that answers
id=$(mh task create --steps flip "$TMP/photos/jpeg-small-photo.jpg")
mh task wait "$id" >/dev/null
is "$(mh --json task status "$id" | field state)" "done" "a task made through the list is found through it again"
is "$(host_calls 1 TASK_CREATE)" 1 "... it lives on the first host that answers (127.0.0.1)"

# ---- a list with no host in it: said, not a crash
"$IMGPROC" --program "$PROG" -H , -p "$PORT" grayscale "$TMP/photos/jpeg-small-photo.jpg" -o "$TMP/x.jpg" 2>"$TMP/err"
is "$?" 3 "-H , : exit 3"
like "$(cat "$TMP/err")" "*-H ',' names no host*" "... saying so"

# ---- none answering: said
kill -KILL "${PIDS[1]}" "${PIDS[3]}"; wait "${PIDS[1]}" "${PIDS[3]}" 2>/dev/null
mh grayscale "$TMP/photos/jpeg-small-photo.jpg" -o "$TMP/none.jpg" 2>"$TMP/err"
is "$?" 3 "no host answering: exit 3"
like "$(cat "$TMP/err")" "*none of $HOSTS answered; the last: cannot reach 127.0.0.? port $PORT*" \
     "... naming the hosts and the last reason"
done_testing

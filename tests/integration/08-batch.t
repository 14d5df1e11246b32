#!/bin/bash
# imgproc batch: a folder with broken files, batched vs --sync vs --no-batch
# (identical bytes, round trips), a batch larger than the queue, a large
# image uploaded in chunks, the progress bar, and Ctrl-C.
PORT=47108
PROG=1061000008
. "$(dirname "$0")/../lib.sh"

ensure_rpcbind
# One worker and a queue of three: a folder of 14 images must meet "busy".
# A 2 MB request limit sends the big image through TASK_UPLOAD instead.
start_server --workers 1 --queue-size 3 --max-request-bytes 2M

jget() {    # jget EXPR < json: a Python expression over the parsed object d
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"
}

# ---- the folder: photos of several sizes and formats, and broken files
IN="$TMP/in"
mkdir -p "$IN"
i=0
for size in 320x240 200x300 257x129 640x480 100x100 333x222; do
    i=$((i + 1))
    make_photo "$IN/p$i.png" "${size%x*}" "${size#*x}"
    vips copy "$IN/p$i.png" "$IN/j$i.jpg[Q=85]"
done
make_photo "$IN/big.png" 1400 1100          # over 2 MB: uploaded in chunks
head -c 700 "$IN/j4.jpg" >"$IN/truncated.jpg"
echo "not an image" >"$IN/notes.txt"
: >"$IN/empty.png"
{ printf '\x89PNG\r\n\x1a\n'; yes 'not a PNG chunk' | head -c 400; } >"$IN/garbage.png"
mkdir "$IN/subfolder" && cp "$IN/p1.png" "$IN/subfolder/"   # not descended into
cp "$IN/p1.png" "$IN/.hidden.png"                            # skipped
GOOD=13
BAD=4
[ "$(stat -c %s "$IN/big.png")" -gt 2097152 ] || bail "big.png should be over 2 MB"

STEPS='grayscale,resize=120x120'
cli --json batch --steps "$STEPS" -o "$TMP/out-batched" "$IN" >"$TMP/b.json" 2>"$TMP/b.err"
is "$?" 1 "batch exits 1 when some inputs failed"
is "$(jget '(d["total"], d["written"], d["failed"], d["not_done"])' <"$TMP/b.json")" \
   "($((GOOD + BAD)), $GOOD, $BAD, 0)" "every input is accounted for: 13 written, 4 failed"
is "$(jget 'd["mode"]' <"$TMP/b.json")" "batched" "the default mode is batched tasks"
busy=$(jget 'd["busy"]' <"$TMP/b.json")
like "$busy" "[1-9]*" "a folder larger than the queue met busy ($busy refusals) and sent them again"
is "$(ls "$TMP/out-batched" | wc -l)" "$GOOD" "one result per good image, no temporary files"
is "$(jget '" ".join(sorted(i["file"].split("/")[-1] + "=" + i["status"] for i in d["items"] if not i["ok"]))' <"$TMP/b.json")" \
   "empty.png=invalid-argument garbage.png=corrupt-image notes.txt=unsupported-format truncated.jpg=corrupt-image" \
   "each failure has its own status"
like "$(jget '[i["error"] for i in d["items"] if i["file"].endswith("truncated.jpg")][0]' <"$TMP/b.json")" \
     "*Premature end*" "the reason comes from the decoder"

# Every result: the pipeline's size, one band, and the source's brightness
# (BT.601 luma, as the server defines gray).
printf '3 1\n0.299 0.587 0.114\n' >"$TMP/luma.mat"
bad=0
for src in "$IN"/p*.png "$IN"/j*.jpg "$IN/big.png"; do
    base=$(basename "$src")
    out="$TMP/out-batched/$base"
    w=$(hdr width "$src"); h=$(hdr height "$src")
    # resize=120x120:inside keeps the aspect ratio and never enlarges.
    ew=$(awk -v w="$w" -v h="$h" 'BEGIN { m = (w > h) ? w : h; s = (m > 120) ? 120 / m : 1; printf "%d", int(w * s + 0.5) }')
    eh=$(awk -v w="$w" -v h="$h" 'BEGIN { m = (w > h) ? w : h; s = (m > 120) ? 120 / m : 1; printf "%d", int(h * s + 0.5) }')
    got="$(hdr width "$out")x$(hdr height "$out") $(hdr bands "$out")"
    vips recomb "$src" "$TMP/gray.v" "$TMP/luma.mat"
    mean_src=$(vips avg "$TMP/gray.v")
    mean_out=$(vips avg "$out")
    if [ "$got" != "${ew}x${eh} 1" ] ||
       ! awk -v a="$mean_src" -v b="$mean_out" 'BEGIN { exit !((a - b) < 3 && (b - a) < 3) }'; then
        echo "# $base: got $got (want ${ew}x${eh} 1), mean $mean_out (source $mean_src)"
        bad=$((bad + 1))
    fi
done
is "$bad" 0 "all 13 results have the right size, one band and the source's mean luma"

# ---- the same folder with --sync (parallel PROCESS): the same bytes
cli batch --sync -j 3 --steps "$STEPS" -o "$TMP/out-sync" "$IN" >"$TMP/s.out" 2>"$TMP/s.err"
is "$?" 1 "--sync exits 1 too"
# big.png is over the 2 MB request limit: PROCESS cannot take it, tasks can.
like "$(cat "$TMP/s.out")" "*failed: $IN/big.png: too-large:*" "--sync reports the image over the request limit"
rm "$TMP/out-batched/big.png"
diff -r "$TMP/out-batched" "$TMP/out-sync" >"$TMP/diff" 2>&1
ok $? "batched tasks and synchronous PROCESS calls give identical bytes"
like "$(grep -c '^\[' "$TMP/s.out")" "12" "one plain progress line per written image when not a terminal"

# ---- round trips: one batch against one call per image
stop_server
start_server
rm -rf "$TMP/in/big.png" "$TMP/out-1" "$TMP/out-n"
cli --json batch --steps grayscale -o "$TMP/out-1" "$IN" >"$TMP/r1.json"
cli --json batch --steps grayscale --no-batch -o "$TMP/out-n" "$IN" >"$TMP/rn.json"
is "$(jget 'd["round_trips"], d["busy"]' <"$TMP/r1.json")" "(1, 0)" \
   "16 images (12 good, 4 broken) are created in one round trip when batched"
is "$(jget 'd["round_trips"]' <"$TMP/rn.json")" "16" "... and in 16 without batching"
diff -r "$TMP/out-1" "$TMP/out-n" >/dev/null; ok $? "both give the same results"
cli --json batch --steps grayscale --batch-size 5 -o "$TMP/out-5" "$IN" >"$TMP/r5.json"
is "$(jget 'd["round_trips"], d["written"]' <"$TMP/r5.json")" "(4, 12)" "--batch-size 5: four batches"
is "$(cli task list | wc -l)" "1" "fetched tasks are deleted from the server (only the header is listed)"
cli --json batch --steps grayscale --keep -o "$TMP/out-k" "$IN/p1.png" "$IN/p2.png" >/dev/null
is "$(cli task list --state done | tail -n +2 | wc -l)" "2" "--keep leaves them"
for id in $(cli task list | tail -n +2 | cut -d' ' -f1); do cli task delete "$id" >/dev/null; done

# ---- usage errors and name clashes stop before anything is sent
cli batch --steps grayscale "$IN" 2>"$TMP/err"; is "$?" 2 "-o is required"
cli batch --steps grayscale -j 0 -o "$TMP/x" "$IN" 2>/dev/null; is "$?" 2 "-j 0 is refused"
cli batch --steps bogus -o "$TMP/x" "$IN" 2>/dev/null; is "$?" 2 "a bad pipeline is refused"
cp "$IN/j1.jpg" "$TMP/p1.jpg"
cli batch --steps grayscale -f png -o "$TMP/clash" "$IN/p1.png" "$TMP/p1.jpg" 2>"$TMP/err"
is "$?" 2 "two inputs that would write the same file are refused"
like "$(cat "$TMP/err")" "*would both be written to*p1.png*" "... naming the clash"
[ ! -e "$TMP/clash" ]; ok $? "... before anything is written"

# ---- the progress bar on a terminal
make_photo "$TMP/slow.png" 1200 900
mkdir -p "$TMP/slow"
for k in 1 2 3 4 5 6 7 8 9 10 11 12; do cp "$TMP/slow.png" "$TMP/slow/s$k.png"; done
script -qec "$IMGPROC --program $PROG batch -j 2 --steps blur=4 -o $TMP/out-tty $TMP/slow" \
    /dev/null </dev/null >"$TMP/tty.log"
is "$?" 0 "batch under a terminal"
tr '\r' '\n' <"$TMP/tty.log" >"$TMP/tty.txt"
grep -q '^\[#*\.*\] [0-9]*/12 .* img/s  ETA [0-9]*:[0-9][0-9]' "$TMP/tty.txt"
ok $? "the bar shows done/total, images per second and time left"
grep -q '^\[#\{30\}\] 12/12' "$TMP/tty.txt"; ok $? "the bar ends full"

# ---- Ctrl-C: calls in progress finish, the rest is cancelled, the summary says so
stop_server
start_server --workers 1
mkfifo "$TMP/progress"
# A non-interactive shell starts background jobs with SIGINT ignored; job
# control (set -m) gives the client SIGINT as a terminal's Ctrl-C would.
set -m
"$IMGPROC" --program "$PROG" batch -j 1 --steps blur=25 -o "$TMP/out-int" "$TMP/slow" \
    >"$TMP/progress" 2>"$TMP/int.err" &
pid=$!
set +m
{
    read -r first             # blocks until the first image is written
    kill -INT "$pid"
    cat >"$TMP/int.out"
} <"$TMP/progress"
wait "$pid"
is "$?" 130 "Ctrl-C exits 130"
like "$first" "\[1/12\]*" "it was interrupted after the first image"
written=$(ls "$TMP/out-int" | wc -l)
like "$(cat "$TMP/int.out")" "*batch: $written of 12 images written*not done*interrupted; the tasks not yet fetched were cancelled*" \
     "the summary says what was done ($written written)"
[ "$written" -ge 1 ] && [ "$written" -lt 12 ]; ok $? "some but not all were written"
is "$(ls -a "$TMP/out-int" | grep -c tmp)" "0" "no half-written file is left"
is "$(cli task list | tail -n +2 | wc -l)" "0" "no task is left on the server"
is "$(cli --json info | jget 'd["load"]["tasks_queued"] + d["load"]["tasks_running"]')" "0" \
   "the server is not working for nobody"

stop_server
is "$STOP_STATUS" 0 "the server exits cleanly"
done_testing

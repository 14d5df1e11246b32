#!/bin/bash
# The client's memory does not grow with the image: a task's upload is read
# from its file a chunk at a time (the SHA-256 computed as it is read), and
# its result is written to a temporary file as it arrives, then renamed.
# (Before, the client read the whole file and held the whole result: a 200 MB
# image in and out of a task peaked at 204 MB; now at 9 MB, 4 of them idle.)
# A failed or interrupted download leaves nothing behind, under the final
# name or the temporary one.
PORT=47126
PROG=1061000026
. "$(dirname "$0")/../lib.sh"

# Under valgrind the server would spend minutes on each of these images (deflate
# on random pixels), and the client, whose memory this is about, is not under it.
[ -n "$IMGPROCD_WRAPPER" ] && { echo "1..0 # SKIP the server under a wrapper: too slow for 55 MB images"; exit 0; }

LIMIT_MIB=16                # the most a transfer may add to the client's idle peak

# peak OUT ARGS...: runs the client with ARGS, its stdout into OUT; prints
# "KIB STATUS": its peak resident memory (VmHWM, read from /proc while it
# runs: a child's rusage would count the size of the python that forked it)
# and its exit status.
peak() {
    local out=$1
    shift
    python3 -c 'import subprocess, sys, time
p = subprocess.Popen(sys.argv[2:], stdout=open(sys.argv[1], "wb"))
hwm = 0
while p.poll() is None:
    try:
        for line in open("/proc/%d/status" % p.pid):
            if line.startswith("VmHWM:"):
                hwm = max(hwm, int(line.split()[1]))
    except OSError:
        pass
    time.sleep(0.002)
print(hwm, p.returncode)' "$out" "$IMGPROC" --program "$PROG" "$@"
}

# small KIB DESCRIPTION: the client's peak grew by less than LIMIT_MIB over its idle peak.
small() {
    echo "# client peak $(($1 / 1024)) MiB, idle $((IDLE / 1024)) MiB, the image $((SIZE / 1048576)) MiB"
    if ldd "$IMGPROC" | grep -q libasan; then
        echo "ok $((NTEST += 1)) # SKIP $2: ASan's memory is not the client's"
        return
    fi
    [ $(($1 - IDLE)) -lt $((LIMIT_MIB * 1024)) ]
    ok $? "$2"
}

# pixels_flipped FILE: FILE's pixels are the input's, flipped (max difference 0).
pixels_flipped() {
    vips subtract "$1" "$TMP/ref.v" "$TMP/d.v" && vips abs "$TMP/d.v" "$TMP/a.v" && vips max "$TMP/a.v"
}

ensure_rpcbind
start_server

# An image that no encoder shrinks (random bytes as pixels), three times the
# limit: its TIFF result is as large as it is.
W=4400
head -c $((W * W * 3)) /dev/urandom >"$TMP/r.raw"
vips rawload "$TMP/r.raw" "$TMP/r.v" $W $W 3 && vips copy "$TMP/r.v" "$TMP/big.tif" ||
    bail "cannot make the big image"
rm -f "$TMP/r.raw" "$TMP/r.v"
vips flip "$TMP/big.tif" "$TMP/ref.v" vertical
SIZE=$(stat -c %s "$TMP/big.tif")
SHA=$(sha256sum <"$TMP/big.tif" | cut -d' ' -f1)
[ "$SIZE" -gt $((3 * LIMIT_MIB * 1048576)) ]; ok $? "the image ($SIZE bytes) is over three times the limit"
# Idle: connected, waiting a second for a held task to change state.
make_photo "$TMP/small.png" 64 48
h=$(cli task create --hold --steps flip "$TMP/small.png")
read -r IDLE rc < <(peak /dev/null task wait "$h" --while created --for 1 2>/dev/null)
is "$rc" 1 "the client's idle peak: one second of task wait ($((IDLE / 1024)) MiB)"

# ---- submit: create, upload in chunks, wait, fetch in chunks
read -r kb rc < <(peak "$TMP/submit.json" --json submit --steps flip -f tiff -o "$TMP/s" "$TMP/big.tif")
is "$rc" 0 "submit of the big image"
small "$kb" "submit: the client's memory stayed under $LIMIT_MIB MiB above idle"
is "$(j "$TMP/submit.json" 'd[0]["size"], d[0]["width"], d[0]["height"], d[0]["bands"]')" \
   "($(stat -c %s "$TMP/s/big.tif"), $W, $W, 3)" "the file written has the size and dimensions the server reported"
is "$(hdr width "$TMP/s/big.tif")x$(hdr height "$TMP/s/big.tif")" "${W}x$W" "the result's dimensions, as libvips reads them"
is "$(pixels_flipped "$TMP/s/big.tif")" "0.000000" "and its pixels are the input's, flipped"
id=$(j "$TMP/submit.json" 'd[0]["id"]')
is "$(cli --json task status "$id" | field sha256)" "$SHA" "the server's SHA-256 of the upload is the file's"
is "$(ls "$TMP/s")" "big.tif" "no temporary file is left beside it"

# ---- create --upload (declares the size, reads nothing), then task upload
read -r kb rc < <(peak "$TMP/id" task create --hold --upload --steps flip -f tiff "$TMP/big.tif")
is "$rc" 0 "task create --upload"
small "$kb" "create --upload reads nothing of the file"
u=$(cat "$TMP/id")
read -r kb rc < <(peak /dev/null task upload "$u" "$TMP/big.tif")
is "$rc" 0 "task upload"
small "$kb" "task upload: under $LIMIT_MIB MiB above idle"
is "$(cli --json task status "$u" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["received"], d["sha256"])')" \
   "$SIZE $SHA" "every byte arrived, with the file's SHA-256"

# ---- task result, written as it arrives
cli task start "$u" && cli task wait "$u" >/dev/null; ok $? "the task runs"
read -r kb rc < <(peak /dev/null task result "$u" -o "$TMP/r.tif")
is "$rc" 0 "task result"
small "$kb" "task result: under $LIMIT_MIB MiB above idle"
cmp -s "$TMP/r.tif" "$TMP/s/big.tif"; ok $? "the same bytes as submit's result"
is "$(stat -c %s "$TMP/r.tif")" "$(cli --json task status "$u" | field result_size)" "the size the server reports"

# ---- batch (tasks, fetched by other connections)
mkdir "$TMP/in" && cp "$TMP/big.tif" "$TMP/in/"
read -r kb rc < <(peak /dev/null --quiet batch --steps flip -f tiff -o "$TMP/b" "$TMP/in")
is "$rc" 0 "batch of the big image"
small "$kb" "batch: under $LIMIT_MIB MiB above idle"
cmp -s "$TMP/b/big.tif" "$TMP/s/big.tif"; ok $? "the same bytes as submit's result"
rm -rf "$TMP/in"

# ---- a pipe on standard input: kept in a temporary file, not in memory
read -r kb rc < <(cat "$TMP/big.tif" | TMPDIR=$TMP peak "$TMP/piped.tif" submit --steps flip -f tiff -o - -)
is "$rc" 0 "submit - from a pipe, result to standard output"
small "$kb" "a piped upload and a result on standard output: under $LIMIT_MIB MiB above idle"
cmp -s "$TMP/piped.tif" "$TMP/s/big.tif"; ok $? "the same bytes as submit's result"
is "$(find "$TMP" -maxdepth 1 -name 'imgproc-stdin*' | wc -l)" 0 "no copy of standard input is left in TMPDIR"

# ---- a download that fails half way: a file size limit (ulimit -f) stops the writes
mkdir "$TMP/cut"
(trap '' XFSZ; ulimit -f $((SIZE / 1024 / 4)); cli task result "$u" -o "$TMP/cut/r.tif") 2>"$TMP/err"
is "$?" 1 "a result that cannot be written whole fails"
like "$(cat "$TMP/err")" "imgproc: cannot write '$TMP/cut/r.tif': File too large*" "it says why"
is "$(ls -A "$TMP/cut" | wc -l)" 0 "nothing is left: neither the final name nor the temporary file"

# ---- a download ended by a signal, half way: its temporary file is removed.
# The client is stopped once its temporary file appears, signalled, and let go.
interrupted() {     # interrupted SIGNAL [--json]: the exit status; the folder's files in LEFT
    local pid n=0
    rm -rf "$TMP/sig" && mkdir "$TMP/sig"
    # The client itself, not a subshell running cli: its pid is the one signalled.
    "$IMGPROC" --program "$PROG" $2 task result "$u" -o "$TMP/sig/r.tif" >"$TMP/sig.out" 2>/dev/null &
    pid=$!
    until compgen -G "$TMP/sig/r.tif.tmp.*" >/dev/null || [ $((n += 1)) -gt 200000 ]; do :; done
    kill -STOP "$pid" && kill -"$1" "$pid" && kill -CONT "$pid"
    wait "$pid"
    STATUS=$?
    LEFT=$(ls -A "$TMP/sig")
}
interrupted TERM
if [ "$LEFT" = "r.tif" ] && [ "$STATUS" -eq 0 ]; then
    echo "ok $((NTEST += 1)) # SKIP the download ended before the signal came"
    echo "ok $((NTEST += 1)) # SKIP the download ended before the signal came"
else
    is "$STATUS" 143 "SIGTERM during a download ends the client as SIGTERM does"
    is "$LEFT" "" "and removes its temporary file (no final name either)"
fi
interrupted TERM --json
if [ "$LEFT" = "r.tif" ] && [ "$STATUS" -eq 0 ]; then
    echo "ok $((NTEST += 1)) # SKIP the download ended before the signal came"
    echo "ok $((NTEST += 1)) # SKIP the download ended before the signal came"
else
    is "$STATUS-$(j "$TMP/sig.out" 'd["error"]')" "130-interrupted" "with --json: exit 130 and its document"
    is "$LEFT" "" "and the temporary file is removed too"
fi

stop_server
is "$STOP_STATUS" 0 "server stopped cleanly"
done_testing

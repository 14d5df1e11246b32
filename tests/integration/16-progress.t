#!/bin/bash
# Progress on long single jobs: an upload, a download or a task wait draws a
# bar on stderr when it is a terminal (script(1) gives the client one), not
# when it is a file, and never with --quiet.  IMGPROC_PROGRESS_DELAY=0 shows
# the bar at once, so the test does not depend on how long a job takes.
PORT=47116
PROG=1061000016
. "$(dirname "$0")/../lib.sh"

CORPUS=${IMGPROC_CORPUS:-${XDG_CACHE_HOME:-$HOME/.cache}/imgproc/corpus}
[ -f "$CORPUS/MANIFEST.txt" ] || bail "the real-photo corpus is missing: run 'make corpus'"
command -v script >/dev/null || bail "script(1) is missing (Debian: bsdutils)"
PHOTO="$CORPUS/png-16bit-photo.png"     # 9 MB: its upload takes many pieces
NAME=$(basename "$PHOTO")
export IMGPROC_PROGRESS_DELAY=0

ensure_rpcbind
start_server

# tty FILE ARGS...: the client on a terminal; what the terminal showed goes to FILE.
tty() {
    local out=$1 cmd
    shift
    cmd=$(printf '%q ' "$IMGPROC" --program "$PROG" "$@")
    script -qec "$cmd" /dev/null >"$out"
}

# ---- a synchronous call: the image going out, the server working, the result coming back
tty "$TMP/sync.tty" blur --sigma 2 -o "$TMP/blur.png" "$PHOTO"
ok $? "blur on a terminal works"
is "$(hdr width "$TMP/blur.png")x$(hdr height "$TMP/blur.png")" \
   "$(hdr width "$PHOTO")x$(hdr height "$PHOTO")" "... and writes the blurred photo"
tr '\r' '\n' <"$TMP/sync.tty" >"$TMP/sync.lines"
like "$(grep -m1 "^sending $NAME \[" "$TMP/sync.lines")" "sending $NAME \[*\]*% *B of *MB*" \
     "the upload draws a bar in bytes"
ok "$(grep -q "^sending $NAME \[#*\] 100%" "$TMP/sync.lines"; echo $?)" \
   "... which reaches 100%"
like "$(grep -m1 "^$NAME: sent" "$TMP/sync.lines")" "*the server is working*" \
     "then it says the server is working"
like "$(grep -m1 "^receiving $NAME \[" "$TMP/sync.lines")" "receiving $NAME \[*\]*MB*" \
     "the result coming back draws a bar too"
like "$(tail -c 8 "$TMP/sync.tty" | od -An -c | tr -d ' \n')" '*\r033[K' \
     "the bar's line is cleared at the end"

# ---- --quiet, and a stderr that is not a terminal: nothing
tty "$TMP/quiet.tty" --quiet blur --sigma 2 -o "$TMP/blur2.png" "$PHOTO"
ok $? "--quiet blur works"
is "$(grep -c 'sending\|receiving\|\[###' "$TMP/quiet.tty")" 0 "--quiet draws no bar"
"$IMGPROC" --program "$PROG" blur --sigma 2 -o "$TMP/blur3.png" "$PHOTO" 2>"$TMP/file.err"
ok $? "blur with stderr in a file works"
is "$(wc -c <"$TMP/file.err")" 0 "... and writes nothing there"
is "$(vips avg "$TMP/blur3.png")" "$(vips avg "$TMP/blur.png")" "... the same image as on the terminal"

# ---- a task: chunked upload, a wait, the result's download
id=$(cli task create --upload --hold --steps grayscale "$PHOTO")
like "$id" "[1-9]*" "a task to upload into ($id)"
tty "$TMP/up.tty" task upload "$id" "$PHOTO"
ok $? "task upload on a terminal works"
tr '\r' '\n' <"$TMP/up.tty" >"$TMP/up.lines"
ok "$(grep -q "^uploading $NAME \[#*\] 100%.* MB of .* MB" "$TMP/up.lines"; echo $?)" \
   "the upload draws a bar in bytes, to 100%"

# A held task stays created: the wait draws its state, gives up after
# --for 1, and clears the bar before saying so.
tty "$TMP/wait.tty" task wait "$id" --for 1
is "$?" 1 "waiting --for 1 on a held task ends with exit 1"
tr '\r' '\n' <"$TMP/wait.tty" >"$TMP/wait.lines"
like "$(grep -m1 "^waiting for task $id" "$TMP/wait.lines")" "waiting for task $id \[*\]   0%  created*" \
     "the wait draws the task's percent and state"
ok "$(grep -qF "$(printf '\033[K')imgproc: task $id is still created after 1 s" "$TMP/wait.lines"; echo $?)" \
   "... and clears its line before the message"

cli task start "$id" >/dev/null
cli task wait "$id" --for 120 >/dev/null
ok $? "the task finishes"
tty "$TMP/down.tty" task result "$id" -o "$TMP/gray.png"
ok $? "task result on a terminal works"
is "$(hdr bands "$TMP/gray.png")" 1 "... and the result is the gray photo"
tr '\r' '\n' <"$TMP/down.tty" >"$TMP/down.lines"
ok "$(grep -q "^downloading the result of task $id \[#*\] 100%" "$TMP/down.lines"; echo $?)" \
   "the download draws a bar in bytes, to 100%"
stop_server
is "$STOP_STATUS" 0 "the server stops cleanly"
done_testing

#!/bin/bash
# --json is one document that parses, whatever fails: every command that
# takes it, given a failing first input, lists that input as an object with
# its name and an error, in order, and the good input after it with values
# checked against libvips' own reading of the file; the exit status still
# says that something failed.
PORT=47115
PROG=1061000015
. "$(dirname "$0")/../lib.sh"

CORPUS=${IMGPROC_CORPUS:-${XDG_CACHE_HOME:-$HOME/.cache}/imgproc/corpus}
[ -f "$CORPUS/MANIFEST.txt" ] || bail "the real-photo corpus is missing: run 'make corpus'"
GOOD="$CORPUS/jpeg-photo-ladybird.jpg"
W=$(hdr width "$GOOD")
H=$(hdr height "$GOOD")
printf 'not an image\n' >"$TMP/bad.jpg"
cd "$TMP" || bail "no temporary folder"

ensure_rpcbind
start_server

# A list of two: the bad input failed with its name, status and error; the
# good one after it worked.
two() {     # two FILE NAME STATUS
    is "$(j "$1" 'len(d), d[0]["file"], d[0]["ok"], d[0]["status"], bool(d[0]["error"]), d[1]["file"], d[1]["ok"]')" \
       "(2, 'bad.jpg', False, '$3', True, '$GOOD', True)" "$2: one document, the failure first, named, with its error"
}

# ---- single calls and process, with a folder for the results
for cmd in "grayscale" "resize --width 200" "rotate --angle 90" "blur --sigma 2" \
           "process --steps grayscale,flip"; do
    name=${cmd%% *}
    cli --json $cmd -o "out-$name" bad.jpg "$GOOD" >"$name.json" 2>/dev/null
    is "$?" 1 "$name --json exits 1 when an input failed"
    two "$name.json" "$name" unsupported-format
    out=$(j "$name.json" 'd[1]["output"]')
    is "$(j "$name.json" '(d[1]["width"], d[1]["height"], d[1]["bands"])')" \
       "($(hdr width "$out"), $(hdr height "$out"), $(hdr bands "$out"))" \
       "$name: the good input's dimensions are those of the file written"
done
is "$(j grayscale.json 'd[1]["width"], d[1]["bands"]')" "($W, 1)" "grayscale keeps the width and gives one band"
is "$(j rotate.json 'd[1]["width"], d[1]["height"]')" "($H, $W)" "rotate 90 swaps width and height"

# A result on stdout would be mixed with the document: refused, as one.
cli --json grayscale bad.jpg -o - >stdout.json 2>/dev/null
is "$?" 2 "grayscale --json -o - is a usage error"
is "$(j stdout.json 'd["ok"], d["exit"], "-o" in d["error"]')" "(False, 2, True)" \
   "... said in one JSON object"

# ---- identify
cli --json identify bad.jpg "$GOOD" >identify.json 2>/dev/null
is "$?" 1 "identify --json exits 1 when an input failed"
two identify.json identify unsupported-format
is "$(j identify.json '(d[1]["width"], d[1]["height"], d[1]["bands"])')" \
   "($W, $H, $(hdr bands "$GOOD"))" "identify: the good input's values are libvips' own"
cli --json identify missing.jpg "$GOOD" >missing.json 2>/dev/null
is "$(j missing.json 'd[0]["file"], d[0]["status"], d[0]["error"]')" \
   "('missing.jpg', None, \"cannot read 'missing.jpg': No such file or directory\")" \
   "a file that cannot be read fails locally (status null), with the reason"

# A file name that is not UTF-8 (Latin-1 "café"): the document stays valid JSON.
cp "$GOOD" "$TMP/caf"$'\xe9'".jpg"
cli --json identify "caf"$'\xe9'".jpg" >latin1.json 2>/dev/null
is "$(j latin1.json 'd[0]["file"] == "caf\ufffd.jpg", d[0]["width"]')" "(True, $W)" \
   "a Latin-1 file name comes out as valid JSON (its stray byte replaced)"

# ---- submit: with and without results fetched
cli --json submit --steps grayscale -o out-submit bad.jpg "$GOOD" >submit.json 2>/dev/null
is "$?" 1 "submit --json exits 1 when an input failed"
two submit.json "submit -o" unsupported-format
is "$(hdr bands "$(j submit.json 'd[1]["output"]')")" 1 "submit: the good input's result is written"
is "$(j submit.json 'd[1]["width"], d[1]["height"], d[1]["bands"], d[1]["format"]')" \
   "($W, $H, 1, 'jpeg')" "... and its object says what it is, as the image commands' do"
cli --json submit --steps grayscale bad.jpg "$GOOD" >submit2.json 2>/dev/null
two submit2.json "submit (ids only)" unsupported-format
id=$(j submit2.json 'd[1]["id"]')
like "$id" "[1-9]*" "submit: the good input has its task id ($id)"

# ---- batch
cli --json batch --steps grayscale -o out-batch bad.jpg "$GOOD" >batch.json 2>batch.err
is "$?" 1 "batch --json exits 1 when an input failed"
like "$(cat batch.err)" "imgproc: cannot process 'bad.jpg' \[*/2\]: unsupported-format: *" \
     "... and says so on stderr, as the other commands do"
is "$(j batch.json 'round(d["images_per_second"] * d["seconds"], 1)')" "1.0" \
   "... its images per second count the one written, not the one that failed"
is "$(j batch.json '[(i["file"].split("/")[-1], i["ok"]) for i in d["items"]]')" \
   "[('bad.jpg', False), ('$(basename "$GOOD")', True)]" "batch: every input, in order"
is "$(j batch.json 'd["items"][0]["status"], d["failed"], d["written"]')" \
   "('unsupported-format', 1, 1)" "batch: the failure has its status"

# ---- every task subcommand, each given something that fails
cli task wait "$id" --for 60 >/dev/null
tcase() {   # tcase DESCRIPTION EXPECTED-EXIT EXPECTED-FIELDS EXPR task ARGS...
    local desc=$1 exit=$2 want=$3 expr=$4
    shift 4
    cli --json task "$@" >t.json 2>/dev/null
    is "$?" "$exit" "task $desc --json exits $exit"
    is "$(j t.json "$expr")" "$want" "task $desc: one object with what was asked and why it failed"
}
F='d["ok"], d["status"], bool(d["error"])'
tcase "create (not an image)" 1 "('bad.jpg', False, 'unsupported-format', True)" "d['file'], $F" \
      create --steps grayscale bad.jpg
tcase "upload (no such task)" 1 "(99999, 'bad.jpg', False, 'not-found', True)" "d['id'], d['file'], $F" \
      upload 99999 bad.jpg
for sub in start status wait cancel delete; do
    tcase "$sub (no such task)" 1 "(99999, False, 'not-found', True)" "d['id'], $F" $sub 99999
done
tcase "result (no such task)" 1 "(99999, False, 'not-found', True)" "d['id'], $F" result 99999 -o r.png
tcase "status (not an id)" 2 "(None, False, None, True)" "d['id'], $F" status abc
tcase "status (wrong arguments)" 2 "(False, 'task status', 'task status takes a task ID, not 2 arguments')" \
      'd["ok"], d["command"], d["error"]' status 1 2
# And their answers when they work, for contrast: the same shape, "ok": true.
tcase "result (done)" 0 "(True, $W, 1)" 'd["ok"], d["width"], d["bands"]' result "$id" -o r.png
is "$(hdr bands r.png)" 1 "... and the file is there"
tcase "status (done)" 0 "(True, 'done')" 'd["ok"], d["state"]' status "$id"

# ---- a wrong command line: one document whose error is the reason, not the usage line
ucase() {   # ucase EXPECTED-COMMAND EXPECTED-ERROR-GLOB ARGS...
    local want=$1 glob=$2
    shift 2
    cli "$@" >u.json 2>/dev/null
    is "$?:$(j u.json 'd["command"], d["ok"], d["exit"]')" "2:($want, False, 2)" \
       "imgproc $*: exit 2, one document"
    like "$(j u.json 'd["error"]')" "$glob" "... whose error says what is wrong"
}
ucase None "unknown option '--bogus'*" --json --bogus ping
ucase None "unknown option '--bogus'*" --bogus --json ping
ucase None "invalid program 'zz': a number, or a name in /etc/rpc" --program zz --json ping
ucase None "which command?*" --json
ucase None "unknown command 'frob'*" --json frob
ucase None "--steps goes after the command*" --json --steps grayscale ping
ucase "'ping'" "unknown option '--bogus' (see 'imgproc ping --help')" --json ping --bogus
ucase "'ping'" "-p needs a value*" --json ping -p
ucase "'grayscale'" "grayscale does not take --steps*" --json grayscale --steps flip bad.jpg -o x.png
ucase "'task wait'" "invalid state 'bogus'" --json task wait 1 --while bogus
ucase "'task list'" "invalid state 'bogus'*" --json task list --state bogus
ucase "'task create'" "invalid --steps:*separated by commas*" --json task create --steps 'blur=5;grayscale' bad.jpg
ucase "'task upload'" "task upload takes a task ID and a FILE, not 1 argument" --json task upload 1

# ---- task wait: "ok" is whether the wait ended as asked; unknown facts are null
held=$(cli task create --hold --steps grayscale "$GOOD")
cli --json task status "$held" >st.json
is "$(j st.json 'd["started"], d["finished"], d["error_status"], d["result_format"], d["width"], d["token"]')" \
   "(None, None, None, None, None, None)" "a task not yet run: its times, result and error are null"
cli --json task wait "$held" --for 1 >w1.json 2>/dev/null
is "$?:$(j w1.json 'd["ok"], d["state"], d["error"]')" \
   "1:(False, 'created', 'task $held is still created after 1 s')" \
   "task wait --for that runs out: ok false, saying so"
cli task cancel "$held"
cli --json task wait "$held" >w2.json 2>/dev/null
is "$?:$(j w2.json 'd["ok"], d["state"], d["error"]')" "1:(False, 'cancelled', 'the task was cancelled')" \
   "task wait on a cancelled task: ok false"
cli --json task wait "$held" --while queued >w3.json 2>/dev/null
is "$?:$(j w3.json 'd["ok"], d["state"]')" "0:(True, 'cancelled')" \
   "task wait --while queued on it: ok true (it is not queued)"
cli --json task delete "$held" >del.json
is "$(j del.json 'd["ok"], d["was"], "state" in d')" "(True, 'cancelled', False)" \
   "task delete says the state it was in, not a state it has"

# ---- Ctrl-C ends the document: exit 130, and every input is still listed.  A
# background job of a script ignores SIGINT, as the client then does too, so
# the test sends SIGTERM, which the client takes the same way.
mkfifo in.fifo out.fifo
"$IMGPROC" --program "$PROG" --json grayscale "$GOOD" - bad.jpg -o cc <in.fifo >out.fifo 2>/dev/null &
pid=$!
exec {IN}>in.fifo {OUT}<out.fifo
# The first result's line comes once the client has flushed it and gone on to
# read standard input, which this test holds open and never writes.
# (-t: a client that never flushes fails here rather than hanging the test)
read -t 60 -r -u "$OUT" line && read -t 60 -r -u "$OUT" line || line=
like "$line" "*\"ok\": true*" "image command: the first input is done"
kill -TERM "$pid"
wait "$pid"
is "$?" 130 "... interrupted while it reads the second: exit 130"
{ echo "["; echo "$line"; cat <&"$OUT"; } >cc.json
exec {IN}>&- {OUT}<&-
is "$(j cc.json '[(i["file"], i["ok"], i.get("error")) for i in d]')" \
   "[('$GOOD', True, None), ('-', False, 'interrupted'), ('bad.jpg', False, 'interrupted')]" \
   "... and the document lists all three, the two not done as interrupted"
rm -f in.fifo out.fifo

mkfifo in.fifo
from=$(($(log_lines) + 1))
"$IMGPROC" --program "$PROG" --json submit --steps grayscale "$GOOD" - -o sub <in.fifo \
    >cs.json 2>/dev/null &
pid=$!
exec {IN}>in.fifo
wait_log "TASK_CREATE from" 60 "$from"     # the first is created; then it reads stdin
kill -TERM "$pid"
wait "$pid"
is "$?:$(j cs.json '[(i["file"], i["ok"]) for i in d], d[1]["error"]')" \
   "130:([('$GOOD', False), ('-', False)], 'interrupted')" \
   "submit: interrupted while reading its second input, it lists both"
exec {IN}>&-
rm -f in.fifo

held=$(cli task create --hold --steps grayscale "$GOOD")
from=$(($(log_lines) + 1))
"$IMGPROC" --program "$PROG" --json task wait "$held" >cw.json 2>/dev/null &
pid=$!
wait_log "TASK_STATUS from" 60 "$from"     # its first call: the wait comes next
kill -TERM "$pid"
wait "$pid"
is "$?:$(j cw.json 'd["command"], d["ok"], d["error"]')" "130:('task wait', False, 'interrupted')" \
   "task wait: interrupted while waiting, it prints one object saying so"

# ---- no server at all: still one document, each input listed
stop_server
cli --json identify bad.jpg "$GOOD" >down.json 2>/dev/null
is "$?" 3 "identify with no server exits 3"
is "$(j down.json '[(i["file"], i["ok"], "cannot reach" in i["error"]) for i in d]')" \
   "[('bad.jpg', False, True), ('$GOOD', False, True)]" "... and lists every input with the reason"
cli --json submit --steps grayscale bad.jpg "$GOOD" >down2.json 2>/dev/null
is "$(j down2.json 'len(d), d[1]["ok"], "cannot reach" in d[1]["error"]')" "(2, False, True)" \
   "submit with no server lists every input too"
for cmd in "info" "ping" "task list"; do
    cli --json $cmd >down3.json 2>/dev/null
    is "$?" 3 "$cmd with no server exits 3"
    is "$(j down3.json 'd["ok"], "cannot reach" in d["error"]')" "(False, True)" \
       "$cmd with no server prints one object with the reason"
done
done_testing

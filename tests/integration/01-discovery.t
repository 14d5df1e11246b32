#!/bin/bash
# Discovery: rpcbind registration (TCP, UDP, IPv4, IPv6), ping, info, unregistration.
PORT=47101
PROG=1061000001         # a private program number for this test (lib.sh may move it)
. "$(dirname "$0")/../lib.sh"

ensure_rpcbind
start_server

out=$(rpcinfo -p 127.0.0.1 | awk -v p=$PROG '$1 == p {print $3 ":" $4}' | sort | tr '\n' ' ')
is "$out" "tcp:$PORT udp:$PORT " "rpcinfo -p lists the program on TCP and UDP"
rpcinfo -s | grep -q "^ *$PROG .*tcp6" ; ok $? "rpcbind knows the IPv6 registrations"
like "$(rpcinfo -t 127.0.0.1 $PROG 1)" "*ready and waiting*" "rpcinfo -t calls NULL over TCP"
like "$(rpcinfo -u 127.0.0.1 $PROG 1)" "*ready and waiting*" "rpcinfo -u calls NULL over UDP"
like "$(rpcinfo -T tcp6 ::1 $PROG 1)" "*ready and waiting*" "rpcinfo over tcp6 to ::1"
like "$(cli -T tcp ping)" "ok: program $PROGX version 1 on localhost over tcp*" "ping over TCP via rpcbind"
like "$(cli ping)" "ok: program $PROGX version 1 on localhost over local*" "ping on this machine: the local socket, by default"
rpcinfo | grep -q "^ *$PROG  *1  *local  *$TMP/state/imgprocd.sock "; ok $? "rpcbind lists the local socket (netid local)"
like "$(cli -T udp ping)" "ok:*over udp*" "ping over UDP"
# Image calls over UDP: refused before sending, saying why and what to use.
vips black "$TMP/b.v" 64 64 && vips pngsave "$TMP/b.v" "$TMP/b.png"
for cmd in "grayscale" "process --steps flip" "identify" "submit --steps flip" \
           "batch --steps flip -o $TMP/bo" "task create --steps flip"; do
    # shellcheck disable=SC2086
    cli -T udp $cmd "$TMP/b.png" >/dev/null 2>"$TMP/err"
    is "$?-$(grep -c "goes over TCP only.*8800 bytes at most.*TCP, the default, carries any size" "$TMP/err")" "2-1" \
       "imgproc -T udp ${cmd%% *} is refused before sending, naming the limit and TCP"
done
like "$(cli -H ::1 -p $PORT ping)" "ok:*" "ping ::1 on a fixed port without rpcbind"
like "$(IMGPROC_HOST=127.0.0.1 cli ping)" "ok:*on 127.0.0.1*" "IMGPROC_HOST picks the host"
like "$(IMGPROC_PROGRAM=$PROG "$IMGPROC" ping)" "ok: program $PROGX *" "IMGPROC_PROGRAM picks the program"
like "$(IMGPROC_PROGRAM=$PROG "$IMGPROC" --program 0x20494D47 --timeout 5 ping 2>&1)" "imgproc: cannot reach*" \
     "... and --program overrides it"
IMGPROC_PROGRAM=bogus "$IMGPROC" ping 2>"$TMP/err"
is "$?-$(tr '\n' ' ' <"$TMP/err")" "2-imgproc: invalid program 'bogus': a number, or a name in /etc/rpc imgproc: (the program came from \$IMGPROC_PROGRAM) " \
   "a bad IMGPROC_PROGRAM is a usage error that says where it came from"

cli info --json >"$TMP/info.json"; ok $? "info --json"
python3 - "$TMP/info.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
ops = {o["name"]: o for o in d["operations"]}
assert set(ops) >= {"grayscale", "resize", "rotate", "blur", "threshold", "crop", "flip",
                    "flop", "sharpen", "autorot"}, ops.keys()
blur = ops["blur"]["params"][0]
assert blur["name"] == "sigma" and blur["max"] == 1000, blur
assert {"jpeg", "png", "webp", "tiff"} <= set(d["input_formats"]), d["input_formats"]
assert d["output_formats"] == ["jpeg", "png", "webp", "tiff", "gif"], d["output_formats"]
assert d["limits"]["max_steps"] == 16 and d["limits"]["max_request_bytes"] == 64 << 20
assert d["vips_version"].startswith("8."), d["vips_version"]
assert d["load"]["calls_in_progress"] == 1, d["load"]
PY
ok $? "info lists operations with ranges, formats, limits and load"
# One table declares the operations; what people read comes from it or is
# checked against it: process --help shows each syntax info gives, and the
# README's list names each operation.
missing=""
while IFS=$'\t' read -r name syntax; do
    grep -qF -- "  $syntax" <<<"$(cli process --help)" || missing="$missing help:$name"
    sed -n '/^Pipeline steps:/,/^$/p' "$TOP/README.md" | tr '\n' ' ' | grep -qw -- "$name" ||
        missing="$missing readme:$name"
done < <(python3 -c 'import json,sys
for o in json.load(sys.stdin)["operations"]: print(o["name"] + "\t" + o["syntax"])' <"$TMP/info.json")
is "$missing" "" "process --help and the README list every operation info gives, as info writes it"
is "$(python3 -c 'import json,sys; d=json.load(sys.stdin); g=[o for o in d["operations"] if o["name"]=="gamma"][0]; print(g["syntax"], g["params"][0]["min"], g["params"][0]["max"], g["params"][0]["doc"])' <"$TMP/info.json")" \
   "gamma[=EXPONENT]  (EXPONENT 2.4 if left out) 0 10 gamma exponent, > 0" \
   "info describes gamma from its row: syntax, default, range, open end"
like "$(cli info)" "imgprocd 0.1.0 with libvips 8.*" "info as text"
# imgprocd's flags are declared once (server/config.c): the defaults its
# --help prints are the values a server started without them reports.
"$IMGPROCD" --help >"$TMP/dhelp"
python3 - "$TMP/dhelp" "$TMP/info.json" "$IMGPROCD_FLAGS" <<'PY'
import json, re, sys
text = re.sub(r"\n {25}", " ", open(sys.argv[1]).read())
info = json.load(open(sys.argv[2]))
given = sys.argv[3]
where = {"max-request-bytes": "limits.max_request_bytes", "max-pixels": "limits.max_pixels",
         "max-steps": "limits.max_steps", "max-connections": "limits.max_connections",
         "max-upload-bytes": "limits.max_upload_bytes", "queue-size": "limits.max_queued",
         "max-tasks": "limits.max_tasks", "result-ttl": "limits.result_ttl",
         "max-connections-per-address": "guard.max_connections_per_address",
         "min-receive-rate": "guard.min_receive_rate",
         "max-inflight-bytes": "guard.max_inflight_bytes",
         "max-request-seconds": "guard.max_request_seconds",
         "max-task-seconds": "guard.max_task_seconds", "max-blur-work": "guard.max_blur_work"}
unit = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
seen = 0
for name, path in where.items():
    m = re.search(r"--%s [A-Z]+ .*?\(default (\d+)([KMG]?)\)" % re.escape(name), text)
    assert m, "no default in --help for --" + name
    if "--" + name in given:
        continue        # the run set it (check-valgrind's time budgets)
    a, b = path.split(".")
    want = int(m.group(1)) * unit[m.group(2)]
    assert info[a][b] == want, (name, info[a][b], want)
    seen += 1
assert seen >= 12, seen
PY
ok $? "imgprocd --help's defaults are the values the server reports (info)"

cli nosuchcommand 2>"$TMP/err"; is "$?" 2 "an unknown command exits 2"
like "$(cat "$TMP/err")" "imgproc: unknown command 'nosuchcommand'*" "and says so"
cli ping --bogus 2>/dev/null; is "$?" 2 "an unknown flag exits 2"
cli resize --help >"$TMP/help"; is "$?" 0 "--help exits 0"
grep -q -- "--fit inside|cover|fill" "$TMP/help"; ok $? "--help on a subcommand shows its options"
like "$("$IMGPROC" --version)" "imgproc 0.1.0" "--version"

# Help that matches the program: every flag a command's --help shows is one
# it takes (task: each subcommand's synopsis line), and those it takes are shown.
accepts() {     # accepts COMMAND... FLAG: 0 unless the command rejects the flag itself
    ! "$IMGPROC" "$@" </dev/null 2>&1 | grep -qE "unrecognized option|does not take|unknown option"
}
bad=""
for c in grayscale resize rotate blur process identify info ping submit batch; do
    for f in $("$IMGPROC" $c --help | grep -oE -- "--[a-z][a-z-]+" | sort -u); do
        accepts $c $f || bad="$bad $c:$f"
    done
done
while read -r sub flags; do
    for f in $flags; do accepts task $sub $f || bad="$bad task-$sub:$f"; done
done < <("$IMGPROC" task --help | sed -n 's/^  imgproc task \([a-z]*\) \(.*\)/\1 \2/p' |
         while read -r sub rest; do echo "$sub $(echo "$rest" | grep -oE -- "--[a-z][a-z-]+" | tr '\n' ' ')"; done)
is "$bad" "" "every flag the help shows is accepted by its command"
# The other way: every long option the client knows (options.c's table), tried
# on every command with a value after it; one the command takes must be in its
# help (a task command's is 'task --help').  A flag that is the start of
# another one the help shows is skipped: getopt takes it as that one's
# abbreviation (--for is --format to grayscale).
# (the image commands' own options are their operations' parameters: info's)
known=$( (grep -ohE '^ *\{ "[a-z][a-z-]+", (0|'"'.'"'), ' "$TOP"/client/options.c | cut -d'"' -f2
          python3 -c 'import json,sys
for o in json.load(sys.stdin)["operations"]:
    for p in o["params"]: print(p["name"])' <"$TMP/info.json") | sort -u)
[ "$(echo "$known" | wc -w)" -gt 20 ] || bail "cannot read the client's option tables"
shown() {    # shown FLAG HELP: the help has --FLAG, or FLAG abbreviates one it has
    grep -q -- "--$1\b" <<<"$2" && return 0
    for g in $known; do
        [[ $g != "$1" && $g == "$1"* ]] && grep -q -- "--$g\b" <<<"$2" && return 0
    done
    return 1
}
missing=""
for c in grayscale resize rotate blur process identify info ping submit batch; do
    help=$("$IMGPROC" $c --help)
    for f in $known; do
        accepts $c --$f x && ! shown $f "$help" && missing="$missing $c:--$f"
    done
done
help=$("$IMGPROC" task --help)
for sub in create upload start status wait result cancel delete list; do
    for f in $known; do
        accepts task $sub --$f x && ! shown $f "$help" && missing="$missing task-$sub:--$f"
    done
done
is "$missing" "" "every flag a command takes is in its help"
for f in --for --while; do
    "$IMGPROC" task --help | grep -q -- "^ *$f " ; ok $? "task --help explains $f"
done
"$IMGPROC" task --help | grep -q -- "--once"; is "$?" 1 "task --help shows no --once (there is none)"
"$IMGPROC" submit --help | grep -q -- "--upload"; is "$?" 1 "submit --help shows no --upload (submit does not take it)"

stop_server
is "$STOP_STATUS" 0 "SIGTERM stops the server cleanly"
rpcinfo -p 127.0.0.1 | awk -v p=$PROG '$1 == p' | grep -q . ; is "$?" 1 "and unregisters it from rpcbind"
"$IMGPROC" --program $PROG --timeout 5 ping 2>"$TMP/err"; is "$?" 3 "an unreachable server exits 3"
like "$(cat "$TMP/err")" "imgproc: cannot reach localhost: *" "with a one-line reason"
"$IMGPROC" --program $PROG -p $((PORT + 90)) ping 2>"$TMP/err"
like "$(cat "$TMP/err")" "imgproc: cannot reach localhost port $((PORT + 90)): RPC: *" \
     "a fixed port that nobody serves: the reason after one separator"
grep -q ': :' "$TMP/err"; is "$?" 1 "... never a doubled one"

# Registration manners.  A second server on a live server's program refuses
# to start and leaves the first one's entries alone.
listed_ports() { rpcinfo -p 127.0.0.1 | awk -v p=$PROG '$1 == p { print $4 }' | sort -u | tr '\n' ' '; }
start_server
# (timeout: a server that wrongly starts would serve for ever)
timeout 60 "$IMGPROCD" --program $PROG --port $((PORT + 50)) --state-dir "$TMP/state2" >/dev/null 2>"$TMP/err"
is "$?" 1 "a second server on the same program exits 1"
like "$(cat "$TMP/err")" "imgprocd: program $PROGX version 1 is already served over tcp at 127.0.0.1 port $PORT by a live server;*--program" \
     "... naming the program, version and address"
is "$(listed_ports)" "$PORT " "... and rpcbind still lists the live server"
like "$(cli ping)" "ok:*" "... which still answers through rpcbind"
"$IMGPROCD" --program $((PROG + 1)) --port $PORT --state-dir "$TMP/state2" >/dev/null 2>"$TMP/err"
is "$?-$(cat "$TMP/err")" "1-imgprocd: cannot listen on 127.0.0.1 port $PORT (TCP): Address already in use" \
   "a port in use: the address, port and reason"
# A server that died without unregistering leaves stale entries: replaced.
kill_server
is "$(listed_ports)" "$PORT " "a server killed with SIGKILL leaves its entries"
PORT=$((PORT + 50)) start_server
like "$(grep -c "replacing a stale rpcbind entry: program $PROGX version 1 over tcp at 127.0.0.1 port $PORT (nobody answers there)" "$TMP/server.log")" 1 \
     "the next server replaces them, and the log says so"
is "$(listed_ports)" "$((PORT + 50)) " "... rpcbind lists the new one"
# At exit a server unsets only its own entries: here another server took
# the program over (the entries were deleted by hand, as an operator would).
rpcinfo -d $PROG 1
OLD_PID=$SERVER_PID
SERVER_PID=
start_server --state-dir "$TMP/state3"
is "$(listed_ports)" "$PORT " "another server registers once the entries are deleted"
kill -TERM "$OLD_PID"; wait "$OLD_PID"
is "$?-$(listed_ports)" "0-$PORT " "the first one stops and leaves the other's entries alone"
like "$(cli ping)" "ok:*" "... which still answers through rpcbind"
stop_server

# Without rpcbind: not registered, reachable on its port.
start_server --no-rpcbind
rpcinfo -p 127.0.0.1 | awk -v p=$PROG '$1 == p' | grep -q . ; is "$?" 1 "--no-rpcbind does not register"
like "$(cli -p $PORT ping)" "ok:*" "but answers on its port"
stop_server

# Where the tasks live is told to callers on the server's own machine only
# (lab 4 finds the database that way): a caller in a network namespace of
# this test's own, across a veth pair, is not told.
NS=imgproc-t01-$$
VETH=vt01h$slot             # the slot (lib.sh) keeps two runs' pairs and subnets apart
NET=10.201.$slot
if [ "$(id -u)" -eq 0 ] && ip netns add "$NS" 2>/dev/null; then
    trap 'ip link del "$VETH" 2>/dev/null; ip netns del "$NS" 2>/dev/null; cleanup' EXIT
    ip link del "$VETH" 2>/dev/null     # left by a run that was killed
    ip link add "$VETH" type veth peer name vt01n netns "$NS" &&
    ip addr add $NET.1/24 dev "$VETH" && ip link set "$VETH" up &&
    ip -n "$NS" addr add $NET.2/24 dev vt01n && ip -n "$NS" link set vt01n up ||
        bail "cannot set up the veth pair"
    start_server --no-rpcbind --listen $NET.1 --listen 127.0.0.1
    is "$(cli -p $PORT --json info | field state_dir)" "$(realpath "$TMP/state")" \
       "a caller on the same machine is told the state folder, as an absolute path"
    like "$(cli -p $PORT info | grep '^state:')" "state: $(realpath "$TMP/state") (tasks.db, in/, out/)" \
         "... in info's text too"
    is "$(cli -H $NET.1 -p $PORT --json info | field state_dir)" "$(realpath "$TMP/state")" \
       "... and so is one here that uses the machine's network address"
    ip netns exec "$NS" "$IMGPROC" --program $PROG -H $NET.1 -p $PORT --json info >"$TMP/far.json"
    is "$(field state_dir <"$TMP/far.json")-$(field server_version <"$TMP/far.json")" "None-0.1.0" \
       "a caller on another host gets the rest of info but not the folder (null)"
    is "$(cli -p $PORT --json info | field store)" \
       "SQLite: this server's alone ($(realpath "$TMP/state")/tasks.db)" \
       "where the tasks live: SQLite, its file told to a caller on the same machine"
    is "$(field store <"$TMP/far.json")" "SQLite: this server's alone" "... the kind alone to another host"
    stop_server

    # Two addresses of one family: rpcbind keeps one address per transport,
    # so the first is registered and the other is served on the same port.
    start_server --listen 127.0.0.1 --listen $NET.1
    is "$(listed_ports)" "$PORT " "two IPv4 addresses: registered once, on one port"
    like "$(cli ping)" "ok:*" "a caller here finds it through rpcbind"
    like "$(ip netns exec "$NS" "$IMGPROC" --program $PROG -H $NET.1 -p $PORT ping)" "ok:*" \
         "a caller across the veth reaches the second address on that port"
    stop_server
    is "$STOP_STATUS-$(listed_ports)" "0-" "stopped by SIGTERM, it leaves no entry behind"
    start_server --listen $NET.1
    is "$(listed_ports)" "$PORT " "a server on a non-loopback address only registers"
    like "$(ip netns exec "$NS" "$IMGPROC" --program $PROG -H $NET.1 ping)" "ok:*" \
         "... and a caller across the veth finds it through rpcbind there"
    stop_server
    is "$STOP_STATUS-$(listed_ports)" "0-" "... and leaves no entry behind either"
else
    ok 1 "# SKIP a network namespace needs root"
fi

done_testing

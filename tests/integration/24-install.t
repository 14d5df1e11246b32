#!/bin/bash
# Installed as a Debian RPC daemon is: `make install` puts exactly the files
# of the layout where they belong and `make uninstall` takes exactly those
# away; the systemd units pass `systemd-analyze verify`; the program is found
# by its /etc/rpc name (imgprocd, imgproc, imgproc-web, rpcinfo); imgprocd
# tells a service manager when it serves (sd_notify), writes the journal's
# priority prefixes, logs through syslog with --syslog, and takes systemd's
# StateDirectory; the bash completion completes commands, flags, step names
# and files.
#
# The test runs in a mount namespace of its own (/etc/rpc and /dev/log are
# replaced there only), so the machine's files are never touched.
if [ -z "$IMGPROC_IN_NS" ] && [ "$(id -u)" -eq 0 ]; then
    exec env IMGPROC_IN_NS=1 unshare -m --propagation private bash "$0" "$@"
fi
PORT=47125
PROG=1061000025
. "$(dirname "$0")/../lib.sh"

[ -n "$IMGPROC_IN_NS" ] || { echo "1..0 # SKIP needs root (a mount namespace)"; exit 0; }
CORPUS=${IMGPROC_CORPUS:-${XDG_CACHE_HOME:-$HOME/.cache}/imgproc/corpus}
PHOTO=$CORPUS/jpeg-photo-ladybird.jpg
[ -f "$PHOTO" ] || bail "the real-photo corpus is missing: run 'make corpus'"
IMGPROCD_WEB="$TOP/$BUILD/imgproc-web"

# ---- make install / uninstall: the layout, and nothing else
ROOT=$TMP/root
make -s -C "$TOP" BUILD="$BUILD" install DESTDIR="$ROOT" PREFIX=/usr \
    UNITDIR=/lib/systemd/system >"$TMP/install.log" 2>&1
ok $? "make install DESTDIR=... PREFIX=/usr"
is "$(cd "$ROOT" && find . -type f | sort | tr '\n' ' ')" \
   "./etc/default/imgproc-web ./etc/default/imgprocd ./lib/systemd/system/imgproc-web.service ./lib/systemd/system/imgprocd.service ./usr/bin/imgproc ./usr/sbin/imgproc-web ./usr/sbin/imgprocd ./usr/share/bash-completion/completions/imgproc ./usr/share/imgproc/imgproc.x ./usr/share/man/man1/imgproc.1 ./usr/share/man/man8/imgproc-web.8 ./usr/share/man/man8/imgprocd.8 " \
   "... writes the daemons to sbin/, the client to bin/, the .x, man pages, units, defaults, completion"
is "$(grep '^ExecStart=' "$ROOT/lib/systemd/system/imgprocd.service")" \
   'ExecStart=/usr/sbin/imgprocd $IMGPROCD_OPTS' "... and the unit runs the installed daemon"
is "$(grep '^EnvironmentFile=' "$ROOT/lib/systemd/system/imgproc-web.service")" \
   'EnvironmentFile=-/etc/default/imgproc-web' "... reading the defaults file from /etc"
cmp -s "$ROOT/usr/share/imgproc/imgproc.x" "$TOP/imgproc.x"
ok $? "... the installed imgproc.x is the interface"
[ -x "$ROOT/usr/sbin/imgprocd" ] && [ -x "$ROOT/usr/bin/imgproc" ] && [ -x "$ROOT/usr/sbin/imgproc-web" ]
ok $? "... the programs are executable"
touch "$ROOT/usr/share/imgproc/notes.txt"
make -s -C "$TOP" BUILD="$BUILD" uninstall DESTDIR="$ROOT" PREFIX=/usr \
    UNITDIR=/lib/systemd/system >>"$TMP/install.log" 2>&1
ok $? "make uninstall"
is "$(cd "$ROOT" && find . -type f | sort | tr '\n' ' ')" "./usr/share/imgproc/notes.txt " \
   "... removes exactly what install wrote (a file of someone else's stays)"

# A prefix of its own, installed for real: the unit names existing files.
PFX=$TMP/prefix
make -s -C "$TOP" BUILD="$BUILD" install PREFIX="$PFX" >>"$TMP/install.log" 2>&1
ok $? "make install PREFIX=$PFX"
is "$(grep '^ExecStart=' "$PFX/lib/systemd/system/imgprocd.service")" \
   "ExecStart=$PFX/sbin/imgprocd \$IMGPROCD_OPTS" "... the unit names that prefix"
is "$(grep '^EnvironmentFile=' "$PFX/lib/systemd/system/imgprocd.service")" \
   "EnvironmentFile=-$PFX/etc/default/imgprocd" "... and its etc/"
for u in imgprocd imgproc-web; do
    MANPATH=$PFX/share/man: systemd-analyze verify --man=yes \
        "$PFX/lib/systemd/system/$u.service" >"$TMP/verify-$u" 2>&1
    is "$?-$(cat "$TMP/verify-$u")" "0-" "systemd-analyze verify $u.service: clean (its man page found)"
done
# The check can fail: a unit with a mistake is not clean.
sed 's/^ProtectSystem=strict/ProtectSystem=stricter/' "$PFX/lib/systemd/system/imgprocd.service" \
    >"$TMP/broken.service"
MANPATH=$PFX/share/man: systemd-analyze verify "$TMP/broken.service" >"$TMP/verify-broken" 2>&1
like "$(cat "$TMP/verify-broken")" "*stricter*" "... while a mistake in a unit is reported"
grep -q '^Type=notify' "$PFX/lib/systemd/system/imgprocd.service" &&
    grep -q '^StateDirectory=imgprocd' "$PFX/lib/systemd/system/imgprocd.service" &&
    grep -q '^Wants=rpcbind.service' "$PFX/lib/systemd/system/imgprocd.service" &&
    grep -q '^After=.*rpcbind.service' "$PFX/lib/systemd/system/imgprocd.service"
ok $? "imgprocd.service: Type=notify, StateDirectory=, wants and follows rpcbind.service"

# ---- the program by name (/etc/rpc, replaced in this namespace only)
cp /etc/rpc "$TMP/rpc" 2>/dev/null || : >"$TMP/rpc"
printf 'imgproctest\t%d\timgproctestd\n' "$PROG" >>"$TMP/rpc"
mount --bind "$TMP/rpc" /etc/rpc || bail "cannot bind-mount /etc/rpc"
ensure_rpcbind
PROG_NUM=$PROG
PROG=imgproctest
start_server
PROG=$PROG_NUM
like "$READY" "imgprocd: ready: program $PROGX *" "imgprocd --program imgproctest: the name's number"
like "$(rpcinfo -p 127.0.0.1 | awk -v p="$PROG" '$1 == p {print $5}' | sort -u | tr '\n' ' ')" \
     "imgproctest *" "rpcinfo -p names the program"
rpcinfo -t 127.0.0.1 imgproctest 1 >"$TMP/rpcinfo" 2>&1
like "$(cat "$TMP/rpcinfo")" "*program $PROG version 1 ready and waiting*" \
     "rpcinfo -t 127.0.0.1 imgproctest 1: ready and waiting"
"$IMGPROC" --program imgproctest ping >/dev/null 2>&1
ok $? "imgproc --program imgproctest ping"
"$IMGPROC" --program imgproctest --json grayscale "$PHOTO" -o "$TMP/gray.jpg" >/dev/null 2>&1
is "$?-$(vipsheader -f bands "$TMP/gray.jpg" 2>/dev/null)-$(vipsheader -f width "$TMP/gray.jpg" 2>/dev/null)" \
   "0-1-$(vipsheader -f width "$PHOTO")" "... and a grayscale of a real photo through the name: 1 band, same width"
IMGPROC_PROGRAM=imgproctest "$IMGPROC" ping >/dev/null 2>&1
ok $? "IMGPROC_PROGRAM=imgproctest works too"
"$IMGPROC" --program nosuchprogram ping 2>"$TMP/err"
is "$?-$(cat "$TMP/err")" "2-imgproc: invalid program 'nosuchprogram': a number, or a name in /etc/rpc" \
   "an unknown name is a usage error that says what is accepted"
"$IMGPROCD" --program nosuchprogram 2>"$TMP/err"
is "$?-$(cat "$TMP/err")" \
   "2-imgprocd: invalid value 'nosuchprogram' for --program (a number, or a name in /etc/rpc)" \
   "... in imgprocd too"
"$IMGPROCD_WEB" --program nosuchprogram 2>"$TMP/err"
is "$?-$(cat "$TMP/err")" "2-imgproc-web: invalid --program 'nosuchprogram': a number, or a name in /etc/rpc" \
   "... and in imgproc-web"

# ---- sd_notify: READY=1 once registered, STOPPING=1 on SIGTERM
cat >"$TMP/notify.py" <<'EOF'
import socket, subprocess, sys
path, prog, ready = sys.argv[1], sys.argv[2], sys.argv[3]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.settimeout(60)
f = open(ready, "w")
print("bound", file=f, flush=True)
for _ in range(2):
    msg = s.recv(4096).decode()
    line = msg
    if "READY=1" in msg:
        # What a unit ordered after this one would find at this moment.
        r = subprocess.run(["rpcinfo", "-T", "tcp", "127.0.0.1", prog, "1"],
                           capture_output=True, text=True)
        line += " registered=%s" % ("yes" if r.returncode == 0 else "no: " + r.stdout + r.stderr)
        print("checked", file=f, flush=True)
    print(line, flush=True)
EOF
stop_server
mkfifo "$TMP/notify.ready"
python3 "$TMP/notify.py" "$TMP/notify.sock" "$PROG" "$TMP/notify.ready" >"$TMP/notify.out" 2>&1 &
NPID=$!
exec {NOTIFY_FD}<"$TMP/notify.ready"
read -r line <&"$NOTIFY_FD"
[ "$line" = bound ] || bail "the notify listener did not start: $line"
NOTIFY_SOCKET=$TMP/notify.sock start_server
read -r -t 60 line <&"$NOTIFY_FD"        # it has looked at rpcbind
stop_server
wait "$NPID"
exec {NOTIFY_FD}<&-
got=$(tr '\n' ' ' <"$TMP/notify.out")
is "$got" "READY=1 registered=yes STOPPING=1 " \
   "sd_notify: READY=1 when the program is registered with rpcbind, STOPPING=1 on SIGTERM"

# ---- the journal's priority prefixes, only when stderr is the journal's stream
: >"$TMP/journal.log"
mkfifo "$TMP/j.out"
JOURNAL_STREAM=$(stat -c '%d:%i' "$TMP/journal.log") timeout -s TERM 30 \
    "$IMGPROCD" --program 100 --no-rpcbind --port $((PORT + 1)) --state-dir "$TMP/st-j" -v \
    >"$TMP/j.out" 2>>"$TMP/journal.log" &
JPID=$!
read -r _ <"$TMP/j.out"
"$IMGPROC" -p $((PORT + 1)) --program 100 ping >/dev/null 2>&1
kill -TERM "$JPID"; wait "$JPID"
like "$(head -1 "$TMP/journal.log")" "<4>warning: program 0x64 is outside the user range*" \
     "stderr into the journal: a warning is <4>, without the program's name (the unit says it)"
like "$(grep -c '^<6>' "$TMP/journal.log")" "[1-9]*" "... -v lines are <6>"
: >"$TMP/plain.log"
JOURNAL_STREAM=$(stat -c '%d:%i' "$TMP/journal.log") "$IMGPROCD" --program 100 --no-rpcbind \
    --port 0 2>>"$TMP/plain.log" >/dev/null
like "$(tail -1 "$TMP/plain.log")" "imgprocd: invalid value '0' for --port*" \
     "... a JOURNAL_STREAM that is not stderr's changes nothing"

# ---- --syslog: lines go to /dev/log (a listener's, in a namespace of its own)
cat >"$TMP/syslog.py" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
s.settimeout(30)
with open(sys.argv[1], "w") as f:
    print("bound", file=f)
while True:
    msg = s.recv(4096).decode()
    print(msg, flush=True)
    if "stopping" in msg:
        break
EOF
unshare -m --propagation private bash -c '
    T=$1 IMGPROCD=$2 PORT=$3 IMGPROC=$4
    mkdir -p "$T/dev" && for d in null zero random urandom; do
        touch "$T/dev/$d"; mount --bind /dev/$d "$T/dev/$d"; done
    mount -t tmpfs tmpfs /dev || exit 1
    for d in null zero random urandom; do touch /dev/$d; mount --bind "$T/dev/$d" /dev/$d; done
    mkfifo "$T/syslog.ready" "$T/s.out"
    python3 "$T/syslog.py" "$T/syslog.ready" >"$T/syslog.out" 2>&1 &
    L=$!
    read -r line <"$T/syslog.ready"
    [ "$line" = bound ] || exit 1
    "$IMGPROCD" --syslog --program 100 --no-rpcbind --port "$PORT" --state-dir "$T/st-s" -v \
        >"$T/s.out" 2>"$T/s.err" &
    S=$!
    read -r _ <"$T/s.out"
    "$IMGPROC" -p "$PORT" --program 100 ping >/dev/null 2>&1
    kill -TERM "$S"; wait "$S"
    wait "$L"
' _ "$TMP" "$IMGPROCD" $((PORT + 2)) "$IMGPROC"
like "$(head -1 "$TMP/syslog.out")" "<28>*imgprocd[[]*[]]: program 0x64 is outside*" \
     "--syslog: a warning goes to syslog as daemon.warning (<28>), tagged imgprocd[PID]"
like "$(grep -c '<30>.*imgprocd' "$TMP/syslog.out")" "[1-9]*" "... -v lines as daemon.info (<30>)"
is "$(cat "$TMP/s.err")" "" "... and nothing is written to stderr"

# ---- $STATE_DIRECTORY: systemd's StateDirectory= is the default state folder
mkfifo "$TMP/sd.out"
STATE_DIRECTORY=$TMP/sd:$TMP/other timeout -s TERM 30 "$IMGPROCD" --no-rpcbind \
    --port $((PORT + 3)) >"$TMP/sd.out" 2>"$TMP/sd.err" &
SDPID=$!
read -r _ <"$TMP/sd.out"
"$IMGPROC" -p $((PORT + 3)) --json info >"$TMP/sd.json"
is "$(j "$TMP/sd.json" "d['state_dir']")" \
   "$TMP/sd" "\$STATE_DIRECTORY (its first folder) is the state folder when --state-dir is not given"
kill -TERM "$SDPID"; wait "$SDPID"
[ -d "$TMP/sd" ] && [ ! -e "$TMP/other" ]
ok $? "... made there, and only there"

# ---- a machine without IPv6: the default ::1 is left out, an asked-for one is not
cat >"$TMP/noipv6.sh" <<'EOF'
ip link set lo up
sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.lo.disable_ipv6=1 || exit 9
mkfifo "$3/r6"
"$1" --no-rpcbind --port "$2" --state-dir "$3/st-6" >"$3/r6" 2>"$3/noipv6.err" &
read -r line <"$3/r6"
echo "$line"
kill -TERM $!; wait $!
"$1" --no-rpcbind --port "$2" --state-dir "$3/st-6" --listen ::1 >/dev/null 2>"$3/ipv6.err"
echo "asked=$?"
EOF
unshare -n bash -c 'timeout -s TERM 10 bash "$0" "$@"' "$TMP/noipv6.sh" "$IMGPROCD" $((PORT + 4)) "$TMP" \
    >"$TMP/noipv6.out" 2>&1
like "$(head -1 "$TMP/noipv6.out")" "imgprocd: ready: * tcp:127.0.0.1:$((PORT + 4)) udp:127.0.0.1:$((PORT + 4)) local:* (not registered*" \
     "without IPv6, the default addresses start on 127.0.0.1 alone"
like "$(cat "$TMP/noipv6.err")" "imgprocd: IPv6 is not available here (cannot listen on ::1 port*): serving 127.0.0.1 only" \
     "... and say so"
is "$(tail -1 "$TMP/noipv6.out")-$(cat "$TMP/ipv6.err")" \
   "asked=1-imgprocd: cannot listen on ::1 port $((PORT + 4)) (TCP): Cannot assign requested address" \
   "... while --listen ::1, asked for, is an error"

# ---- bash completion, driven as bash drives it
start_server
complete_line() {   # complete_line WORDS...: the candidates bash would offer for the last word
    bash -c '
        source "$1"; shift
        COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))
        _imgproc 2>/dev/null
        printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " "
    ' _ "$TOP/dist/imgproc.bash-completion" "$IMGPROC" "$@"
}
is "$(complete_line gr)" "grayscale " "completion: a command"
is "$(complete_line "")" "batch blur grayscale identify info ping process resize rotate stats submit task " \
   "... every command"
is "$(complete_line task st)" "start status " "... task's subcommands"
is "$(complete_line batch --jo)" "--jobs " "... a command's own flag"
is "$(complete_line task wait 7 --)" "$(printf '%s ' $(printf '%s\n' --auth --for --help --host --json --krb5-service --port --program --quiet --timeout --transport --verbose --while | sort))" \
   "... a task subcommand's own flags, not the others'"
is "$(complete_line resize --fit c)" "cover " "... an option's values"
is "$(complete_line --tr)" "--transport " "... a global flag"
is "$(complete_line --program "$PROG" process --steps blur=3,sh)" "blur=3,sharpen " \
   "... a step name after a comma, from the server"
is "$(complete_line --program "$PROG" process -f w)" "webp " "... an output format"
mkdir -p "$TMP/pics" && cp "$PHOTO" "$TMP/pics/ladybird.jpg"
is "$(complete_line grayscale "$TMP/pics/lady")" "$TMP/pics/ladybird.jpg " "... files otherwise"
stop_server

done_testing

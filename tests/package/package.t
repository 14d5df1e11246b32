#!/bin/bash
# The Debian packages (`make deb` builds them in $BUILD/deb) installed on this
# machine, imgprocd started the way the package says on a machine without
# systemd (/etc/init.d/imgprocd: as user imgproc, its state in
# /var/lib/imgprocd), found by name through the machine's rpcbind, called by
# the installed client, stopped, then purged: nothing of it is left.
#
# It uses the default program number (0x20494D47, "imgproc" in /etc/rpc), so
# no other imgprocd of that number may run on the machine meanwhile.
PORT=47140
PROG=1061000040
. "$(dirname "$0")/../lib.sh"

[ "$(id -u)" -eq 0 ] || bail "installs packages: run as root"
DEBS=$TOP/$BUILD/deb
ls "$DEBS"/imgproc_*.deb "$DEBS"/imgproc-client_*.deb "$DEBS"/imgproc-web_*.deb >/dev/null 2>&1 ||
    bail "no packages in $DEBS: run 'make deb'"
CORPUS=${IMGPROC_CORPUS:-${XDG_CACHE_HOME:-$HOME/.cache}/imgproc/corpus}
PHOTO=$CORPUS/jpeg-photo-ladybird.jpg
[ -f "$PHOTO" ] || bail "the real-photo corpus is missing: run 'make corpus'"
ensure_rpcbind
rpcinfo -T tcp 127.0.0.1 541674823 1 >/dev/null 2>&1 &&
    bail "an imgprocd of the default program already runs here: stop it first"

purge() {
    [ -x /etc/init.d/imgproc-web ] && /etc/init.d/imgproc-web stop >/dev/null 2>&1
    [ -x /etc/init.d/imgprocd ] && /etc/init.d/imgprocd stop >/dev/null 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -q imgproc imgproc-web imgproc-client \
        >>"$TMP/apt.log" 2>&1
}
purge       # a run that stopped half way may have left them
trap 'purge; cleanup' EXIT

# ---- install: dependencies from the machine's packages, nothing from the network
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "$DEBS"/imgproc_*_*.deb "$DEBS"/imgproc-client_*_*.deb "$DEBS"/imgproc-web_*_*.deb \
    >"$TMP/apt.log" 2>&1
ok $? "apt-get install the three .debs" || sed 's/^/# /' "$TMP/apt.log"
for p in imgproc imgproc-client imgproc-web; do
    is "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" "install ok installed" "$p is installed"
done
is "$(dpkg -S /usr/sbin/imgprocd /usr/bin/imgproc /usr/sbin/imgproc-web /usr/share/imgproc/imgproc.x 2>/dev/null | cut -d: -f1 | tr '\n' ' ')" \
   "imgproc imgproc-client imgproc-web imgproc-client " \
   "imgprocd, imgproc and imgproc-web come from their own packages; imgproc.x with the client"
is "$(grep -cE '^imgproc[[:space:]]+541674823[[:space:]]' /etc/rpc)" "1" "/etc/rpc names the program, once"
DEBIAN_FRONTEND=noninteractive dpkg-reconfigure imgproc-client >/dev/null 2>&1
is "$(grep -cE '^imgproc[[:space:]]' /etc/rpc)" "1" "... and still once after the postinst runs again"
is "$(id -un imgproc 2>/dev/null)-$(stat -c '%U:%a' /var/lib/imgprocd 2>/dev/null)" "imgproc-imgproc:750" \
   "a system user imgproc owns /var/lib/imgprocd (750)"
is "$(man -w imgprocd imgproc imgproc-web 2>/dev/null | tr '\n' ' ')" \
   "/usr/share/man/man8/imgprocd.8.gz /usr/share/man/man1/imgproc.1.gz /usr/share/man/man8/imgproc-web.8.gz " \
   "man finds the three pages"
MANWIDTH=80 man --warnings imgprocd >"$TMP/man.txt" 2>"$TMP/man.err"
is "$?-$(cat "$TMP/man.err")" "0-" "man imgprocd renders without warnings"
like "$(cat "$TMP/man.txt")" "*rpcbind*" "... and speaks of rpcbind"
for u in imgprocd imgproc-web; do
    systemd-analyze verify "/lib/systemd/system/$u.service" >"$TMP/verify" 2>&1
    is "$?-$(cat "$TMP/verify")" "0-" "systemd-analyze verify /lib/systemd/system/$u.service: clean"
done
[ -f /usr/share/bash-completion/completions/imgproc ]
ok $? "the bash completion is installed"

# ---- started as the package says (no systemd here: its init script)
# A bad option: start fails at once, with imgprocd's own words, not silently.
cp /etc/default/imgprocd "$TMP/default.orig"
echo 'IMGPROCD_OPTS="--max-conections 5"' >>/etc/default/imgprocd
/etc/init.d/imgprocd start >"$TMP/start.log" 2>&1
is "$?" "1" "/etc/init.d/imgprocd start with a mistyped option fails (status 1)"
like "$(cat "$TMP/start.log")" "*unrecognized option*max-conections*" "... saying why"
# A state folder a root imgprocd used before (its default) is given back to imgproc;
# the defaults file's variables reach imgprocd.
cp "$TMP/default.orig" /etc/default/imgprocd
echo 'MALLOC_ARENA_MAX=3' >>/etc/default/imgprocd
mkdir -p /var/lib/imgprocd/in && touch /var/lib/imgprocd/in/stray && chown -R root:root /var/lib/imgprocd
/etc/init.d/imgprocd start >"$TMP/start.log" 2>&1
ok $? "/etc/init.d/imgprocd start (returns once imgprocd is registered)" || sed 's/^/# /' "$TMP/start.log"
PID=$(cat /run/imgprocd.pid 2>/dev/null)
is "$(ps -o user= -p "$PID" 2>/dev/null)" "imgproc" "imgprocd runs as user imgproc"
is "$(find /var/lib/imgprocd ! -user imgproc | wc -l)" "0" "... owning all of /var/lib/imgprocd again"
is "$(tr '\0' '\n' <"/proc/$PID/environ" | grep '^MALLOC_ARENA_MAX=')" "MALLOC_ARENA_MAX=3" \
   "... with the environment /etc/default/imgprocd sets"
like "$(cat /var/log/imgprocd.log)" "*imgprocd: ready: program 0x20494D47*" \
     "... and its ready line in /var/log/imgprocd.log"
cp "$TMP/default.orig" /etc/default/imgprocd
/etc/init.d/imgprocd start >/dev/null 2>&1
ok $? "start again while it runs: nothing to do, status 0"
/etc/init.d/imgprocd status >/dev/null 2>&1
ok $? "/etc/init.d/imgprocd status: running"
is "$(rpcinfo -p 127.0.0.1 | awk '$1 == 541674823 {print $3 "/" $5}' | sort | tr '\n' ' ')" \
   "tcp/imgproc udp/imgproc " "rpcinfo -p shows the program by name, over TCP and UDP"
like "$(rpcinfo -t localhost imgproc 2>&1)" "program 541674823 version 1 ready and waiting*" \
     "rpcinfo -t localhost imgproc: ready and waiting"
like "$(imgproc ping 2>&1)" "ok: program 0x20494D47 version 1 on localhost over local*" \
     "imgproc ping (the installed client, the default program): over the local socket"
[ -S /run/imgprocd/imgprocd.sock ]; ok $? "the local socket is /run/imgprocd/imgprocd.sock"
like "$(setpriv --reuid 4001 --regid 4001 --clear-groups imgproc info 2>&1)" \
     "*you are: uid 4001 on this machine (the local socket: the kernel's word)*" \
     "an ordinary user reaches it, and the kernel names them"
like "$(imgproc --program imgproc -T udp ping 2>&1)" "ok: program 0x20494D47 version 1 on localhost over udp*" \
     "imgproc --program imgproc -T udp ping"

# A grayscale of a real photo, against what libvips itself gives.
imgproc grayscale "$PHOTO" -o "$TMP/gray.png" >/dev/null 2>"$TMP/err"
ok $? "imgproc grayscale of a real photo" || sed 's/^/# /' "$TMP/err"
is "$(vipsheader -f width "$TMP/gray.png")x$(vipsheader -f height "$TMP/gray.png")x$(vipsheader -f bands "$TMP/gray.png")" \
   "$(vipsheader -f width "$PHOTO")x$(vipsheader -f height "$PHOTO")x1" "... the photo's size, one band"
# imgproc.x: the BT.601 weighed sum of R, G, B; libvips' recomb gives it unrounded.
printf '3 1\n0.299 0.587 0.114\n' >"$TMP/luma.mat"
vips recomb "$PHOTO" "$TMP/ref.v" "$TMP/luma.mat" 2>/dev/null &&
    vips subtract "$TMP/gray.png" "$TMP/ref.v" "$TMP/d.v" && vips abs "$TMP/d.v" "$TMP/a.v"
diff=$(vips avg "$TMP/a.v" 2>/dev/null)
ok "$(awk -v d="${diff:-999}" 'BEGIN { exit !(d <= 0.5) }'; echo $?)" \
   "... within rounding (0.5 levels on average) of libvips' recomb with the BT.601 weights (got ${diff:-nothing})"

# A task is kept in /var/lib/imgprocd, through a restart of the service.
id=$(imgproc task create --steps grayscale --hold "$PHOTO" 2>"$TMP/err")
like "$id" "[0-9]*" "a held task is made" || sed 's/^/# /' "$TMP/err"
/etc/init.d/imgprocd restart >/dev/null 2>&1
ok $? "/etc/init.d/imgprocd restart"
like "$(imgproc task status "$id" 2>&1)" "*created*" "... and the task is still there, created"
imgproc task start "$id" >/dev/null 2>&1 && imgproc task wait "$id" >/dev/null 2>&1 &&
    imgproc task result "$id" -o "$TMP/task.jpg" >/dev/null 2>&1
is "$(vipsheader -f bands "$TMP/task.jpg" 2>/dev/null)" "1" "... started, it finishes: one band"
like "$(ls /var/lib/imgprocd)" "*tasks.db*" "... its database lives in /var/lib/imgprocd"

# The gateway from its package, started by its init script.
echo "IMGPROC_WEB_OPTS=\"--listen 127.0.0.1:$((PORT + 1))\"" >>/etc/default/imgproc-web
/etc/init.d/imgproc-web start >"$TMP/web.log" 2>&1
ok $? "/etc/init.d/imgproc-web start" || sed 's/^/# /' "$TMP/web.log"
is "$(ps -o user:32= -p "$(cat /run/imgproc-web.pid 2>/dev/null)" 2>/dev/null)" "imgproc-web" \
   "imgproc-web runs as its own user, imgproc-web"
curl -s "http://127.0.0.1:$((PORT + 1))/v1/info" >"$TMP/info.json"
is "$(j "$TMP/info.json" "d['server_version']")" "$(imgproc --json info | python3 -c 'import json,sys; print(json.load(sys.stdin)["server_version"])')" \
   "... and reaches the packaged imgprocd"
/etc/init.d/imgproc-web stop >/dev/null 2>&1
ok $? "/etc/init.d/imgproc-web stop"

# ---- stop: unregistered; purge: nothing left
/etc/init.d/imgprocd stop >/dev/null 2>&1
ok $? "/etc/init.d/imgprocd stop"
is "$(rpcinfo -p 127.0.0.1 | grep -c 541674823)" "0" "... unregistered from rpcbind"
/etc/init.d/imgprocd status >/dev/null 2>&1
is "$?" "3" "... status says it is not running (3)"
DEBIAN_FRONTEND=noninteractive apt-get purge -y -q imgproc imgproc-web imgproc-client >>"$TMP/apt.log" 2>&1
ok $? "apt-get purge"
is "$(grep -c '^imgproc[[:space:]]' /etc/rpc)" "0" "... takes the name out of /etc/rpc"
[ ! -e /var/lib/imgprocd ] && [ ! -e /usr/sbin/imgprocd ] && [ ! -e /etc/default/imgprocd ] &&
    [ ! -e /etc/init.d/imgprocd ] && [ ! -e /lib/systemd/system/imgprocd.service ] &&
    [ ! -e /var/log/imgprocd.log ] && [ ! -e /etc/init.d/imgproc-web ] && [ ! -e /var/log/imgproc-web.log ]
ok $? "... and the state folder, programs, defaults, init scripts, units and logs"

done_testing

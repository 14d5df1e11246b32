#!/bin/bash
# Who is calling: the local socket (the kernel's word for the uid), two real
# users kept apart, forged AUTH_SYS refused there and anonymous over TCP,
# root as admin, and the policy flags (--untrusted refuse, --trust-sys-from).
PORT=47150
PROG=1061000050
. "$(dirname "$0")/../lib.sh"

CORPUS=${IMGPROC_CORPUS:-${XDG_CACHE_HOME:-$HOME/.cache}/imgproc/corpus}
[ -f "$CORPUS/MANIFEST.txt" ] || bail "the real-photo corpus is missing: run 'make corpus'"
[ "$(id -u)" -eq 0 ] || { echo "1..0 # SKIP runs clients as two users: needs root (setpriv)"; exit 0; }
command -v setpriv >/dev/null || bail "setpriv (util-linux) is missing"
ensure_rpcbind

# Two users of this machine, without accounts: uids nobody has.
ALICE=4001
BOB=4002
# A folder every user may traverse, for the socket, inputs and outputs.
SHARED=$TMP/shared
mkdir -p "$SHARED/alice" "$SHARED/bob"
chmod 711 "$TMP"
chmod 755 "$SHARED"
chown "$ALICE:$ALICE" "$SHARED/alice"
chown "$BOB:$BOB" "$SHARED/bob"
cp "$CORPUS/jpeg-photo-ladybird.jpg" "$CORPUS/png-rgb-art.png" "$SHARED/"
chmod 644 "$SHARED"/*.jpg "$SHARED"/*.png
SOCK=$SHARED/imgprocd.sock
HOST=$(hostname)

as() {      # as UID imgproc ARGS...: the client run by that user
    local uid=$1; shift
    setpriv --reuid "$uid" --regid "$uid" --clear-groups "$IMGPROC" --program "$PROG" "$@"
}

start_server --local-socket "$SOCK"
[ -S "$SOCK" ] && [ "$(stat -c %a "$SOCK")" = 666 ]; ok $? "the local socket exists, mode 666: any user may connect"
rpcinfo | grep -q "^ *$PROG  *1  *local  *$SOCK "; ok $? "rpcbind names it under netid local"
like "$(as $ALICE ping)" "ok:*over local*" "a user's client finds it through rpcbind and uses it"
like "$(as $ALICE info)" "*you are: uid $ALICE on this machine (the local socket: the kernel's word)*" \
     "SERVER_INFO tells the caller what the server made of it"

# ---- two users, each sees only their own tasks
a=$(as $ALICE task create --hold --steps grayscale "$SHARED/jpeg-photo-ladybird.jpg")
b=$(as $BOB task create --hold --steps flip "$SHARED/png-rgb-art.png")
[ -n "$a" ] && [ -n "$b" ]; ok $? "alice and bob each create a task ($a, $b)"
is "$(as $ALICE --json task status "$a" | field owner)" "$ALICE@$HOST" "alice's task is owned by her uid, as the kernel said"
is "$(as $ALICE --json task list | python3 -c 'import json,sys; print([t["id"] for t in json.load(sys.stdin)])')" \
   "[$a]" "alice lists only hers"
is "$(as $BOB --json task list | python3 -c 'import json,sys; print([t["id"] for t in json.load(sys.stdin)])')" \
   "[$b]" "bob lists only his"
as $ALICE task status "$b" 2>"$TMP/err"; is "$?" 1 "alice cannot see bob's task"
like "$(cat "$TMP/err")" "*denied: task $b belongs to another caller*" "... denied, as another caller's"
as $ALICE task cancel "$b" 2>/dev/null; is "$?" 1 "... nor cancel it"
as $ALICE task delete "$b" 2>/dev/null; is "$?" 1 "... nor delete it"

# ---- forged AUTH_SYS on the local socket: refused, naming the rule
as $ALICE --auth $BOB task status "$b" 2>"$TMP/err"; is "$?" 1 "alice claiming bob's uid is refused"
like "$(cat "$TMP/err")" "*denied: refused by the local-socket rule: your AUTH_SYS credentials claim uid $BOB gid $BOB, but the kernel says this connection is uid $ALICE gid $ALICE*" \
     "... by the local-socket rule, with the claim and the kernel's word"
as $ALICE --auth $BOB task cancel "$b" 2>/dev/null; is "$?" 1 "... and cannot cancel his task so either"
as $ALICE --auth 0 task list 2>"$TMP/err"; is "$?" 1 "claiming root is refused too"
like "$(grep -c 'local-socket rule' "$TMP/err")" 1 "... by the same rule"

# ---- forged AUTH_SYS over TCP: anonymous, owns nothing of theirs
as $ALICE -T tcp --auth $BOB task status "$b" 2>"$TMP/err"; is "$?" 1 "over TCP, bob's uid claimed cannot read his task"
like "$(cat "$TMP/err")" "*denied: task $b belongs to another caller*" "... the claim is only an anonymous token"
as $ALICE -T tcp --auth $BOB task cancel "$b" 2>/dev/null; is "$?" 1 "... nor cancel it"
is "$(as $ALICE -T tcp --auth 0 --json task list)" "[]" "over TCP, --auth 0 lists nothing of anyone's"
like "$(as $ALICE -T tcp --auth 0 info)" "*you are: anonymous: AUTH_SYS from an untrusted network proves nothing*" \
     "... and SERVER_INFO says it is anonymous"
is "$(as $BOB --json task status "$b" | field state)" "created" "bob's task is untouched after all that"

# ---- AUTH_NONE on the socket is still the kernel's uid
as $BOB --auth none task list >/dev/null; ok $? "AUTH_NONE on the local socket is served"
is "$(as $BOB --auth none --json task list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" 0 \
   "... as bob's uid with another machine label (bob@local): none of the AUTH_SYS ones"

# ---- real work on the socket: the same pixels as libvips itself gives
printf '3 1\n0.299 0.587 0.114\n' >"$TMP/luma.mat"
as $ALICE grayscale -f png "$SHARED/jpeg-photo-ladybird.jpg" -o "$SHARED/alice/gray.png"
ok $? "alice converts a real photo over the local socket"
vips recomb "$SHARED/jpeg-photo-ladybird.jpg" "$TMP/ref.v" "$TMP/luma.mat" &&
    vips round "$TMP/ref.v" "$TMP/rr.v" rint && vips cast "$TMP/rr.v" "$TMP/ref8.v" uchar &&
    vips subtract "$SHARED/alice/gray.png" "$TMP/ref8.v" "$TMP/d.v" && vips abs "$TMP/d.v" "$TMP/a.v"
is "$(hdr bands "$SHARED/alice/gray.png") $(hdr width "$SHARED/alice/gray.png")x$(hdr height "$SHARED/alice/gray.png") $(vips max "$TMP/a.v" | cut -d. -f1)" \
   "1 2560x1600 0" "... 1 band, its size, BT.601 luma within rounding of libvips' recomb"

# ---- root on the socket is the admin: sees, cancels and deletes everyone's
like "$(cli info)" "*you are: uid 0 on this machine*an admin (uid 0)*" "root on the local socket is an admin"
is "$(cli --json task list | python3 -c 'import json,sys; print(sorted(t["id"] for t in json.load(sys.stdin)))')" \
   "$(python3 -c "print(sorted([$a, $b]))")" "the admin lists every user's tasks"
cli task cancel "$b" >/dev/null; ok $? "the admin cancels bob's task"
is "$(as $BOB --json task status "$b" | field state)" "cancelled" "... and bob sees it cancelled"
cli task result "$a" -o "$TMP/x.jpg" 2>"$TMP/err"; is "$?" 1 "the admin cannot fetch alice's image"
like "$(cat "$TMP/err")" "*belongs to another caller*" "... (list, status, wait, cancel, delete only)"
is "$(cli -T tcp --json task list)" "[]" "root over TCP is anonymous, not an admin"

# ---- the web gateway: started as root, it runs as its own user (imgproc-web
# where the package made it, else nobody) and reaches the socket as that
# user, the kernel's word; each browser session is a label of it
WEB_USER=$(id -un imgproc-web 2>/dev/null || echo nobody)
WUID=$(id -u "$WEB_USER"); WGID=$(id -g "$WEB_USER")
start_web
T1=$(printf 'a%.0s' $(seq 64)); T2=$(printf 'b%.0s' $(seq 64))
code=$(curl -s -o "$TMP/w.json" -w '%{http_code}' -H "Authorization: Bearer $T1" -X POST \
       --data-binary @"$SHARED/jpeg-photo-ladybird.jpg" "$URL/v1/tasks?steps=grayscale")
w=$(j "$TMP/w.json" 'd["tasks"][0]["id"]')
is "$code" 201 "a browser session creates a task through the gateway ($w)"
like "$(cli --json task status "$w" | field owner)" "$WUID@web-*" \
     "... owned by the gateway's uid ($WEB_USER), as the kernel says, and the session's label"
is "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $T2" "$URL/v1/tasks/$w")" 403 \
   "another session cannot see it"
label=$(cli --json task status "$w" | field owner)
cli -T tcp --auth "$label" task status "$w" 2>"$TMP/err"; is "$?" 1 "its owner claimed over TCP reaches nothing"
setpriv --reuid "$WUID" --regid "$WGID" --clear-groups "$IMGPROC" --program "$PROG" --auth "$label" \
    task status "$w" >/dev/null 2>&1
is "$?" 0 "only a process running as the gateway's user, on this machine, can act for it"
stop_web
stop_server
is "$STOP_STATUS" 0 "server stopped cleanly"
[ ! -e "$SOCK" ]; ok $? "... and removed its socket"

# ---- a socket the user cannot reach (the default: in the private state folder)
start_server
as $ALICE info >"$TMP/out" 2>"$TMP/err"
like "$(cat "$TMP/err")" "imgproc: note: cannot use the server's local socket $TMP/state/imgprocd.sock (*Permission denied): calling over TCP, where the server cannot ask the kernel who you are" \
     "a user who may not reach the socket is told, once"
like "$(cat "$TMP/out")" "*you are: anonymous*" "... and is anonymous over TCP"
stop_server

# ---- --untrusted refuse: unverified callers get NULL and SERVER_INFO only
start_server --local-socket "$SOCK" --untrusted refuse
cli -T tcp task list 2>"$TMP/err"; is "$?" 1 "--untrusted refuse: a TCP caller's task list is refused"
like "$(cat "$TMP/err")" "*denied: refused by the untrusted-caller rule (--untrusted refuse): AUTH_SYS proves nothing from your address*" \
     "... naming the rule"
cli -T tcp grayscale "$SHARED/jpeg-photo-ladybird.jpg" -o "$TMP/g.jpg" 2>"$TMP/err"; is "$?" 1 "... an image call too"
cli -T udp --auth none task list 2>"$TMP/err"; is "$?" 1 "... and AUTH_NONE over UDP"
like "$(cat "$TMP/err")" "*AUTH_NONE proves nothing*" "... which says so"
like "$(cli -T tcp ping)" "ok:*over tcp*" "NULL is still answered over TCP"
like "$(cli -T tcp info)" "*you are:*" "... and SERVER_INFO, which tells the caller why"
like "$(as $ALICE grayscale "$SHARED/jpeg-photo-ladybird.jpg" -o "$SHARED/alice/g.jpg" && hdr bands "$SHARED/alice/g.jpg")" \
     "1" "the local socket is served as before"
stop_server

# ---- --trust-sys-from: the operator believes AUTH_SYS from a network
start_server --local-socket "$SOCK" --trust-sys-from 127.0.0.0/8
a2=$(as $ALICE task create --hold --steps grayscale "$SHARED/jpeg-photo-ladybird.jpg")
is "$(cli -T tcp --auth "$ALICE@$HOST" --json task status "$a2" | field owner)" "$ALICE@$HOST" \
   "--trust-sys-from 127.0.0.0/8: root's TCP claim from a privileged port is believed (alice's task, as her)"
like "$(cli -T tcp info)" "*you are: uid 0 as claimed (AUTH_SYS over TCP from a privileged port in a --trust-sys-from network*" \
     "... and SERVER_INFO says why"
as $BOB -T tcp --auth "$ALICE@$HOST" task status "$a2" 2>"$TMP/err"; is "$?" 1 \
   "an ordinary user there (an unprivileged port) claiming alice is not believed"
like "$(as $BOB -T tcp info)" "*anonymous: AUTH_SYS from an unprivileged port (only a trusted host's root is believed)*" \
     "... SERVER_INFO says why"
cli -T udp --auth "$ALICE@$HOST" task status "$a2" 2>"$TMP/err"; is "$?" 1 "nor is a claim over UDP, whose source is easily forged"
cli -H ::1 -T tcp --auth "$ALICE@$HOST" task status "$a2" 2>"$TMP/err"; is "$?" 1 "from ::1, outside the list, the same claim is anonymous"
stop_server

"$IMGPROCD" --program "$PROG" --trust-sys-from 10.0.0.0/33 2>"$TMP/err"; is "$?" 2 "a network of 33 bits is refused"
like "$(cat "$TMP/err")" "*invalid value '10.0.0.0/33' for --trust-sys-from*" "... saying what is wrong"
"$IMGPROCD" --program "$PROG" --untrusted maybe 2>"$TMP/err"; is "$?" 2 "--untrusted takes anonymous or refuse"
like "$(cat "$TMP/err")" "*(anonymous or refuse)*" "... and says so"
done_testing

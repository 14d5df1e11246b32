#!/bin/bash
# Kerberos callers (RPCSEC_GSS) against a real KDC made here: signed and
# encrypted calls, tasks owned by the principal, an admin principal, the
# policy refusing unauthenticated callers, and the errors a user meets.
PORT=47160
PROG=1061000060
. "$(dirname "$0")/../lib.sh"

CORPUS=${IMGPROC_CORPUS:-${XDG_CACHE_HOME:-$HOME/.cache}/imgproc/corpus}
[ -f "$CORPUS/MANIFEST.txt" ] || bail "the real-photo corpus is missing: run 'make corpus'"
for t in kdb5_util kadmin.local krb5kdc kinit; do
    command -v "$t" >/dev/null || bail "$t is missing (make deps installs krb5-kdc, krb5-admin-server, krb5-user)"
done
ensure_rpcbind
start_kdc
kinit_as alice
kinit_as bob
kinit_as carol
PHOTO=$CORPUS/jpeg-photo-ladybird.jpg       # 351 KB: more than one Kerberos call carries
SMALL=$CORPUS/jpeg-small-photo.jpg          # 35 KB

krb() {     # krb USER imgproc ARGS...: the client with USER's ticket, over TCP
    local u=$1; shift
    KRB5CCNAME="FILE:$TMP/kdc/$u.cc" "$IMGPROC" --program "$PROG" -T tcp "$@"
}

# ---- a server without its keys does not start
"$IMGPROCD" --program "$PROG" --state-dir "$TMP/nokeys" --krb5-service imgproc@localhost \
    --keytab "$TMP/kdc/none.keytab" >/dev/null 2>"$TMP/err"
is "$?" 1 "a missing keytab stops the start"
like "$(cat "$TMP/err")" "*no Kerberos keys for --krb5-service imgproc@localhost in $TMP/kdc/none.keytab*" \
     "... saying which service and which keytab"

start_server --krb5-service imgproc@localhost --keytab "$KEYTAB" --admin carol@IMGPROC.TEST

# ---- who the server says we are
like "$(krb alice --auth krb5 ping)" "ok:*over tcp*" "a Kerberos NULL call (context made, then the call)"
like "$(krb alice --auth krb5 info)" "*you are: Kerberos principal alice@IMGPROC.TEST (integrity; Kerberos' word)*" \
     "--auth krb5: signed calls, the principal as Kerberos says"
like "$(krb alice --auth krb5p info)" "*you are: Kerberos principal alice@IMGPROC.TEST (privacy; Kerberos' word)*" \
     "--auth krb5p: encrypted calls"
like "$(krb carol --auth krb5i info)" "*carol@IMGPROC.TEST*an admin (--admin)*" "carol is an admin (--admin)"

# ---- a synchronous call: the same pixels as over the local socket
krb alice --auth krb5 grayscale -f png "$SMALL" -o "$TMP/k.png"; ok $? "a signed synchronous call on a real photo"
cli grayscale -f png "$SMALL" -o "$TMP/l.png"
cmp -s "$TMP/k.png" "$TMP/l.png"; ok $? "... gives the bytes the local socket gives"
is "$(hdr bands "$TMP/k.png") $(hdr width "$TMP/k.png")x$(hdr height "$TMP/k.png")" "1 400x250" "... 1 band, the photo's size"
krb alice --auth krb5p rotate --angle 90 "$SMALL" -o "$TMP/r.jpg"; ok $? "an encrypted synchronous call"
is "$(hdr width "$TMP/r.jpg")x$(hdr height "$TMP/r.jpg")" "250x400" "... rotated"

# ---- tasks: owned by the principal, moved in pieces
a=$(krb alice --auth krb5 task create --steps grayscale "$PHOTO")
[ -n "$a" ]; ok $? "alice creates a task from a 351 KB photo (uploaded in 128 KiB pieces)"
krb alice --auth krb5 task wait "$a" >/dev/null; ok $? "... it runs"
is "$(krb alice --auth krb5 --json task status "$a" | field owner)" "krb5:alice@IMGPROC.TEST" "... owned by her principal"
krb alice --auth krb5p task result "$a" -o "$TMP/a.jpg"; ok $? "... its result fetched, encrypted, in pieces"
is "$(hdr bands "$TMP/a.jpg") $(hdr width "$TMP/a.jpg")x$(hdr height "$TMP/a.jpg")" "1 2560x1600" "... 1 band, the photo's size"
id=$(cli task create --steps grayscale "$PHOTO") && cli task wait "$id" >/dev/null && cli task result "$id" -o "$TMP/b.jpg"
cmp -s "$TMP/a.jpg" "$TMP/b.jpg"; ok $? "... the same bytes as the same task over the local socket"

# ---- principals are kept apart; the admin sees all
b=$(krb bob --auth krb5 task create --hold --steps flip "$SMALL")
krb bob --auth krb5 task status "$a" 2>"$TMP/err"; is "$?" 1 "bob cannot see alice's task"
like "$(cat "$TMP/err")" "*denied: task $a belongs to another caller*" "... denied"
krb bob --auth krb5 task result "$a" -o "$TMP/x.jpg" 2>/dev/null; is "$?" 1 "... nor fetch it"
is "$(krb bob --auth krb5 --json task list | python3 -c 'import json,sys; print([t["id"] for t in json.load(sys.stdin)])')" \
   "[$b]" "bob lists only his"
is "$(krb carol --auth krb5 --json task list | python3 -c 'import json,sys; print(sorted(t["id"] for t in json.load(sys.stdin)))')" \
   "$(python3 -c "print(sorted([$a, $b, $id]))")" "carol, an admin, lists everyone's"
krb carol --auth krb5 task cancel "$b" >/dev/null; ok $? "... and cancels bob's"
is "$(krb bob --auth krb5 --json task status "$b" | field state)" "cancelled" "... which bob sees cancelled"

# ---- forged AUTH_SYS cannot reach a principal's task
cli -T tcp --auth 0 task status "$a" 2>"$TMP/err"; is "$?" 1 "AUTH_SYS over TCP cannot read alice's task"
like "$(cat "$TMP/err")" "*belongs to another caller*" "... it is another caller's"

# ---- what libtirpc cannot carry is refused, saying what to do
krb alice --auth krb5 grayscale "$PHOTO" -o "$TMP/big.jpg" 2>"$TMP/err"; is "$?" 1 "a 351 KB synchronous call is refused before it is sent"
like "$(cat "$TMP/err")" "*more than one Kerberos call carries here (131072: libtirpc signs or encrypts each message whole*a task sends any size in pieces: imgproc submit*" \
     "... naming the limit and tasks"
krb alice --auth krb5 resize --width 1600 --height 1600 --enlarge -f png "$SMALL" -o "$TMP/huge.png" 2>"$TMP/err"
is "$?" 1 "a reply over 240 KiB is refused by the server"
like "$(cat "$TMP/err")" "*too-large: RESIZE's reply (* bytes) is larger than a Kerberos reply may be here*pieces*" \
     "... which says why and what to use"

# ---- a folder: batched tasks carry any size; --sync calls say what they cannot
mkdir -p "$TMP/photos" && cp "$PHOTO" "$SMALL" "$TMP/photos/"
krb alice --auth krb5 --quiet batch --steps grayscale -o "$TMP/bout" "$TMP/photos" 2>"$TMP/err"
ok $? "batch of two real photos under Kerberos (a TASK_CREATE each: libtirpc cannot batch Kerberos calls)"
is "$(hdr bands "$TMP/bout/jpeg-photo-ladybird.jpg") $(hdr bands "$TMP/bout/jpeg-small-photo.jpg")" "1 1" \
   "... both converted"
krb alice --auth krb5 --quiet batch --sync --steps grayscale -o "$TMP/sout" "$TMP/photos" >"$TMP/err" 2>&1
is "$?" 1 "batch --sync: the photo over 128 KiB fails"
like "$(cat "$TMP/err")" "*jpeg-photo-ladybird.jpg*more than one Kerberos call carries*without --sync*" \
     "... saying what to do"
is "$(hdr bands "$TMP/sout/jpeg-small-photo.jpg")" 1 "... and the small one is done"

# ---- the errors a user meets
KRB5CCNAME="FILE:$TMP/kdc/nobody.cc" "$IMGPROC" --program "$PROG" -T tcp --auth krb5 ping 2>"$TMP/err"
is "$?" 3 "no ticket: the call is not made"
like "$(cat "$TMP/err")" "*cannot authenticate with Kerberos to imgproc@localhost:*No Kerberos credentials available*(get a ticket first: kinit)" \
     "... GSS-API's words: no credentials, and what to do"
krb alice --auth krb5 -T udp ping 2>"$TMP/err"; is "$?" 3 "Kerberos over UDP is not tried"
like "$(cat "$TMP/err")" "*Kerberos goes over the local socket or TCP, not UDP*" "... and the client says why"
krb alice --auth krb5 --krb5-service imgproc@elsewhere ping 2>"$TMP/err"; is "$?" 3 "an unknown service"
like "$(cat "$TMP/err")" "*imgproc/elsewhere@IMGPROC.TEST not found in Kerberos database*" "... the KDC's words"

# ---- a stranger's context requests: each refused; nothing kept, nobody starved
python3 - "$(rpcinfo -p 127.0.0.1 | awk -v p="$PROG" '$1 == p && $3 == "tcp" { print $4; exit }')" "$PROG" \
    >"$TMP/inits" <<'PY'
import socket, struct, sys
port, prog = int(sys.argv[1]), int(sys.argv[2])
def u32(*v): return b"".join(struct.pack(">I", x) for x in v)
def opaque(b): return u32(len(b)) + b + b"\0" * (-len(b) % 4)
s = socket.create_connection(("127.0.0.1", port))
replies = []
for xid in range(1, 201):
    # RPCSEC_GSS credential: version 1, RPCSEC_GSS_INIT, seq 0, service none, no handle
    cred = u32(1, 1, 0, 1) + opaque(b"")
    call = u32(xid, 0, 2, prog, 1, 0) + u32(6) + opaque(cred) + u32(0, 0) + opaque(b"not a token" * 9)
    s.sendall(u32(0x80000000 | len(call)) + call)
    head = s.recv(4, socket.MSG_WAITALL)
    n = struct.unpack(">I", head)[0] & 0x7fffffff
    body = s.recv(n, socket.MSG_WAITALL)
    rxid, mtype, stat = struct.unpack(">III", body[:12])
    replies.append((rxid == xid, mtype, stat, struct.unpack(">I", body[12:16])[0]))
ok = sum(1 for r in replies if r == (True, 1, 1, 1))   # MSG_DENIED, AUTH_ERROR
print(ok)
PY
is "$(cat "$TMP/inits")" 200 "200 context requests with garbage tokens: each denied as an auth error"
like "$(krb alice --auth krb5 info)" "*you are: Kerberos principal alice@IMGPROC.TEST*" "... and a real caller is served after them"

# ---- a connection that mixed Kerberos and AUTH_SYS, then left without a
# DESTROY: its context goes with it, and no later connection inherits it
bad=0
for i in 1 2 3; do
    like "$(KRB5CCNAME="FILE:$TMP/kdc/alice.cc" "$HOSTILE" "$(rpcinfo -p 127.0.0.1 | awk -v p="$PROG" '$1 == p && $3 == "tcp" { print $4; exit }')" "$PROG" krb5-then-sys)" \
         "ok" "alice's connection $i: Kerberos calls, then AUTH_SYS, then gone"
    for u in bob carol; do
        krb $u --auth krb5 info | grep -q "you are: Kerberos principal $u@IMGPROC.TEST" || bad=$((bad + 1))
    done
done
is "$bad" 0 "... every new connection after each makes its own context"

# ---- many Kerberos connections one after another: no stale context is inherited
bad=0
for i in $(seq 30); do
    u=alice; [ $((i % 2)) -eq 0 ] && u=bob
    krb $u --auth krb5 info | grep -q "you are: Kerberos principal $u@IMGPROC.TEST" || bad=$((bad + 1))
done
is "$bad" 0 "30 connections by turns of alice and bob: each is itself"
stop_server
is "$STOP_STATUS" 0 "server stopped cleanly"

# ---- --untrusted refuse: only Kerberos (and the local socket) are served
start_server --krb5-service imgproc@localhost --keytab "$KEYTAB" --untrusted refuse
cli -T tcp task list 2>"$TMP/err"; is "$?" 1 "--untrusted refuse: AUTH_SYS over TCP is refused"
like "$(cat "$TMP/err")" "*denied: refused by the untrusted-caller rule*imgproc --auth krb5*" "... the rule named, Kerberos offered"
krb alice --auth krb5 task list >/dev/null; ok $? "... while a Kerberos caller is served"
stop_server

# ---- a server without --krb5-service refuses Kerberos contexts
start_server
krb alice --auth krb5 ping 2>"$TMP/err"; is "$?" 3 "no --krb5-service: a Kerberos client cannot make a context"
like "$(cat "$TMP/err")" "*cannot authenticate with Kerberos to imgproc@localhost: the server refused the context*--krb5-service*" \
     "... told why"
stop_server
done_testing

#!/bin/bash
# Lab 7: who is calling?  AUTH_SYS forged, then refused.  An AUTH_SYS
# credential is a claim (uid, gid, machine) that the client writes itself;
# nothing in the message proves it.  On the server's local socket (netid
# "local", an AF_LOCAL socket) the kernel tells the server who connected
# (SO_PEERCRED), so a claim can be checked, and a forged one is refused.  Over
# TCP nobody vouches for it: the server makes such a caller anonymous, and its
# claim only a label for its tasks.  Run it on the server's machine, as root or
# as any user.
. "$(dirname "$0")/common.sh"
img=$(sample) || { echo "cannot make a sample image"; exit 1; }
me=$(id -u); mygid=$(id -g); host=$(uname -n)
fake=4242; [ "$me" = "$fake" ] && fake=4243     # a uid that is not yours
field() { ip --json task status "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$2"; }

say "1. rpcbind lists a third way in: netid local, an AF_LOCAL socket (a file)"
run rpcinfo "$HOST" >"$WORK/rpcinfo.txt"
head -1 "$WORK/rpcinfo.txt"     # the command, as run
grep -E "^ *$PROG " "$WORK/rpcinfo.txt"
check "program $PROG version 1 is registered with netid local" \
    grep -qE "^ *$PROG +1 +local +/" "$WORK/rpcinfo.txt"
echo "(only rpcbind versions 3 and 4 list it: 'rpcinfo -p' speaks version 2, IPv4 only)"

say "2. on the server's machine the client takes the local socket by default (-T auto)"
run ip ping | tee "$WORK/ping.txt"
check "ping went over local" grep -q " over local " "$WORK/ping.txt"
if ! grep -q " over local " "$WORK/ping.txt"; then   # the rest needs the local socket
    sock=$(awk -v p="$PROG" '$1 == p && $3 == "local" { print $4; exit }' "$WORK/rpcinfo.txt")
    echo "The local socket is for callers on the server's machine who may open it"
    echo "(${sock:-not registered}; you are uid $me): run this lab there, as such a user."
    finish
fi

say "3. who does the server think you are?  SERVER_INFO says: over local, then over TCP"
run ip info >"$WORK/info-local.txt"
head -1 "$WORK/info-local.txt"
grep '^you are:' "$WORK/info-local.txt"
check "over local: uid $me, the kernel's word" \
    grep -q "^you are: uid $me on this machine (the local socket: the kernel's word)" "$WORK/info-local.txt"
run ip -T tcp info >"$WORK/info-tcp.txt"
head -1 "$WORK/info-tcp.txt"
grep '^you are:' "$WORK/info-tcp.txt"
check "over tcp: anonymous, your uid $me only a claim" \
    grep -q "^you are: anonymous: .*your claim (uid $me) is only a token" "$WORK/info-tcp.txt"
echo "The same client sends the same AUTH_SYS credential both times.  Over local the"
echo "kernel says which uid opened the connection; over TCP nothing stands behind it."

say "4. a held task, created over local: its owner is your uid, as the kernel said"
printf '$ id=$(imgproc task create --hold --steps grayscale %q)\n' "$img"
id=$(ip task create --hold --steps grayscale "$img")
echo "task id: $id"
check "an id came back" [ -n "$id" ]
run ip task status "$id"
owner=$(field "$id" owner)
echo "owner: $owner  (imgproc --json task status $id, field \"owner\")"
check "the owner is you: $me@$host" [ "$owner" = "$me@$host" ]

say "5. forge a uid on the local socket: AUTH_SYS says $fake, the kernel says $me"
run ip --auth "$fake" task list 2>&1 | tee "$WORK/forged.txt"
rc=${PIPESTATUS[0]}
check "refused (exit status $rc, 1 expected)" [ "$rc" = 1 ]
check "the local-socket rule names both: the claim and the kernel's word" \
    grep -q "denied: refused by the local-socket rule: your AUTH_SYS credentials claim uid $fake gid $fake, but the kernel says this connection is uid $me gid $mygid" "$WORK/forged.txt"
echo "Anyone can write any uid into AUTH_SYS (here: --auth $fake); the kernel cannot be"
echo "talked into another answer, so on this socket a lie is caught, not believed."

say "6. over TCP claim your own uid, $me, truthfully: the task is still not yours"
run ip -T tcp --auth "$me" task status "$id" 2>&1 | tee "$WORK/tcp-own.txt"
rc=${PIPESTATUS[0]}
check "denied (exit status $rc, 1 expected)" [ "$rc" = 1 ]
check "task $id belongs to another caller" \
    grep -q "denied: task $id belongs to another caller" "$WORK/tcp-own.txt"
echo "Over TCP the server cannot tell a true claim from a forged one, so it believes"
echo "neither: you are anon-<digest of the claim>, not $me@$host, the owner of task $id."

say "7. the old attack: over TCP, --auth 0 once made anyone root.  Now?"
run ip -T tcp --auth 0 --json task list | tee "$WORK/tcp-root.txt"
sed 1d "$WORK/tcp-root.txt" >"$WORK/tcp-root.json"     # the list, without the command
python3 -c 'import json,sys; [print("task %s: owner %s" % (t["id"], t["owner"])) for t in json.load(sys.stdin)]' \
    <"$WORK/tcp-root.json" >"$WORK/tcp-root-owners.txt"
check "a list came back" python3 -c 'import json,sys; sys.exit(type(json.load(sys.stdin)) is not list)' <"$WORK/tcp-root.json"
check "task $id is not in it" sh -c "! grep -q '^task $id:' '$WORK/tcp-root-owners.txt'"
check "nothing in it belongs to a uid: anonymous tasks only (normally none: [])" \
    sh -c "! grep -qv ': owner anon-' '$WORK/tcp-root-owners.txt'"
echo "'uid 0' over TCP is a claim like any other: it earns an anonymous identity"
echo "(anon-<digest>) and sees only the tasks made under that same claim over the"
echo "network (normally none); an admin is uid 0 on the local socket only."

say "8. clean up, over local: the owner may delete its task"
run ip task delete "$id"
check "gone" sh -c "! '$IMGPROC' -H '$HOST' --program '$PROG' task status '$id' 2>/dev/null"

echo
echo "AUTH_SYS is proof only where the kernel vouches for it (the local socket); from"
echo "the network, a caller proves who it is with Kerberos: imgproc --auth krb5 (or krb5p,"
echo "encrypted), which needs a KDC; see the README, section \"Who is calling\"."
finish

#!/bin/bash
# One address for several hosts: HAProxy's TCP front (dist/haproxy/imgproc.cfg,
# with this test's program and addresses) before two imgprocd on a fixed
# port; synchronous calls through it reach both, and a host killed is passed
# over (HAProxy's redispatch) without the client seeing it.
PORT=47180
PROG=1061000080
. "$(dirname "$0")/../lib.sh"

command -v haproxy >/dev/null || bail "haproxy is missing (make deps installs it)"
CORPUS=${IMGPROC_CORPUS:-${XDG_CACHE_HOME:-$HOME/.cache}/imgproc/corpus}
[ -f "$CORPUS/MANIFEST.txt" ] || bail "the real-photo corpus is missing: run 'make corpus'"
PHOTO=$CORPUS/jpeg-photo-storm.jpg
FRONT=$((PORT + 1))
HAPID=

trap '[ -n "$HAPID" ] && kill "$HAPID" 2>/dev/null; cleanup' EXIT

host_start 2
host_start 3

# The shipped configuration, with this test's program, port and hosts.
hexprog=$(printf '%08x' "$PROG")
sed -e "s/bind :5300/bind 127.0.0.1:$FRONT/" \
    -e "s/20494d47000000010000/${hexprog}000000010000/" \
    -e "/server host1/c\\    server host2 127.0.0.2:$PORT" \
    -e "/server host2 192/c\\    server host3 127.0.0.3:$PORT" \
    -e "/server host3 192/d" \
    -e "/^global/a\\    pidfile $TMP/haproxy.pid" \
    "$TOP/dist/haproxy/imgproc.cfg" >"$TMP/haproxy.cfg"
haproxy -c -q -f "$TMP/haproxy.cfg"; ok $? "dist/haproxy/imgproc.cfg, made this test's, is valid"
# -D: the parent returns once the front's port is bound.
haproxy -f "$TMP/haproxy.cfg" -D 2>"$TMP/haproxy.err" || bail "haproxy did not start: $(cat "$TMP/haproxy.err")"
HAPID=$(cat "$TMP/haproxy.pid")

front() { "$IMGPROC" --program "$PROG" -H 127.0.0.1 -p "$FRONT" "$@"; }
like "$(front ping)" "ok:*over tcp*" "a NULL call through the front"
bad=0
for i in 1 2 3 4; do
    front grayscale "$PHOTO" -o "$TMP/g$i.jpg" && [ "$(hdr bands "$TMP/g$i.jpg")" = 1 ] &&
        [ "$(hdr width "$TMP/g$i.jpg")" = "$(hdr width "$PHOTO")" ] || bad=$((bad + 1))
done
is "$bad" 0 "four grayscale calls of a real photo through the front: one band, its size"
c2=$(host_calls 2 GRAYSCALE); c3=$(host_calls 3 GRAYSCALE)
[ "$c2" -gt 0 ] && [ "$c3" -gt 0 ]; ok $? "... both hosts answered some ($c2 and $c3)"

kill -KILL "${PIDS[2]}"; wait "${PIDS[2]}" 2>/dev/null
bad=0
for i in 5 6 7 8; do
    front grayscale "$PHOTO" -o "$TMP/g$i.jpg" 2>>"$TMP/err" && [ "$(hdr bands "$TMP/g$i.jpg")" = 1 ] ||
        bad=$((bad + 1))
done
is "$bad" 0 "with one host killed, four more calls are all answered (redispatched)"
is "$(host_calls 3 GRAYSCALE)" "$((c3 + 4))" "... by the other"
done_testing

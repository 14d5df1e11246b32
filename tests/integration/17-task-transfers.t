#!/bin/bash
# Tasks larger than one message: a chunked upload (automatic and explicit),
# a retried upload, a chunked download, and the bytes checked both ways.
PORT=47117
PROG=1061000017
. "$(dirname "$0")/../lib.sh"

ensure_rpcbind
# A small request limit makes the 5 MB image too large for one message.
start_server --max-request-bytes 2M
make_photo "$TMP/photo.png" 640 480

# ---- chunked upload and download, larger than one message may be
make_photo "$TMP/big.png" 2200 1600
size=$(stat -c %s "$TMP/big.png")
[ "$size" -gt $((4 * 1024 * 1024)) ]; ok $? "the big image is larger than 4 chunks ($size bytes)"
cli grayscale "$TMP/big.png" -o "$TMP/nope.png" 2>"$TMP/err"
like "$(cat "$TMP/err")" "*too-large*" "it is too large for one call"
u=$(cli task create --hold --steps flip "$TMP/big.png")
cli --json task status "$u" | field received >"$TMP/recv"
is "$(cat "$TMP/recv")" "$size" "a file over the request limit goes up in chunks, all $size bytes"
cmp -s "$TMP/big.png" "$TMP/state/in/$u"; ok $? "the uploaded bytes are identical on the server"
# An explicit upload: create with the size only, then 'task upload' sends the chunks.
u2=$(cli task create --hold --upload --steps flip "$TMP/big.png")
is "$(cli --json task status "$u2" | field received)" "0" "create --upload declares the size only"
cli task upload "$u2" "$TMP/big.png"; ok $? "task upload"
is "$(cli --json task status "$u2" | field received)" "$size" "task upload sent it all"
cli task upload "$u2" "$TMP/big.png"; ok $? "uploading again (a retry) is harmless"
cli task start "$u2" && cli task wait "$u2" >/dev/null; ok $? "the uploaded task runs"
cli task result "$u2" -o "$TMP/big-out.png"; ok $? "its result comes back in chunks"
rs=$(stat -c %s "$TMP/big-out.png")
[ "$rs" -gt $((2 * 1024 * 1024)) ]; ok $? "the result is larger than two chunks ($rs bytes)"
cmp -s "$TMP/big-out.png" "$TMP/state/out/$u2"; ok $? "the downloaded bytes are identical to the server's"
vips flip "$TMP/big.png" "$TMP/big-ref.png" vertical
vips subtract "$TMP/big-out.png" "$TMP/big-ref.png" "$TMP/bd.v" && vips abs "$TMP/bd.v" "$TMP/ba.v"
is "$(vips max "$TMP/ba.v")" "0.000000" "and it is the flipped image, pixel for pixel"
p=$(cli task create --hold --upload --steps flip "$TMP/photo.png")
cli task start "$p" 2>"$TMP/err"; is "$?" 1 "start before the upload completes: refused"
like "$(cat "$TMP/err")" "*wrong-state: task $p has 0 of its * bytes; upload the rest*" "it says how much is missing"

stop_server
is "$STOP_STATUS" 0 "server stopped cleanly"
done_testing

#!/bin/bash
# A full disk: a task whose result does not fit fails at once, with the
# reason, and the server goes on (tasks that fit still run).  The state
# folder lives on a 3 MB tmpfs this test mounts (root only).
PORT=47112
PROG=1061000012
. "$(dirname "$0")/../lib.sh"

[ "$(id -u)" -eq 0 ] || { echo "1..0 # SKIP mounting a small tmpfs needs root"; exit 0; }
ensure_rpcbind
mkdir -p "$TMP/small"
mount -t tmpfs -o size=3m tmpfs "$TMP/small" || bail "cannot mount a tmpfs"
trap 'stop_server >/dev/null 2>&1; umount "$TMP/small"; cleanup' EXIT
vips gaussnoise "$TMP/n.v" 300 300 --sigma 60 && vips pngsave "$TMP/n.v" "$TMP/noise.png" ||
    bail "cannot make the test image"
start_server --state-dir "$TMP/small/state"

# A 300x300 input whose PNG result at 3000x3000 needs far more than 3 MB.
id=$(cli task create -f png --steps 'resize=3000x3000:enlarge' "$TMP/noise.png")
ok $? "a task whose result will not fit on the disk is accepted"
cli task wait "$id" --for 60 >/dev/null
cli --json task status "$id" >"$TMP/st.json"
is "$(field state <"$TMP/st.json")" "failed" "it fails (it does not stay running)"
like "$(field error <"$TMP/st.json")" "*No space left on device*" "... saying the disk is full"
is "$(ls "$TMP/small/state/tmp" | wc -l)" 0 "... and leaves no partial file behind"

# Space is there again for what fits.
id2=$(cli task create --steps flip "$TMP/noise.png")
cli task wait "$id2" --for 60 >/dev/null
is "$(cli --json task status "$id2" | field state)" "done" "a task that fits still runs"
cli task result "$id2" -o "$TMP/flip.png"
is "$(hdr width "$TMP/flip.png")x$(hdr height "$TMP/flip.png")" "300x300" "... and its result comes back"
stop_server
is "$STOP_STATUS" 0 "the server stops cleanly"
done_testing

#!/bin/bash
# Lab 6: ONC RPC batching.  Many small images become tasks two ways:
#   one TASK_CREATE per image: a round trip each (and the server stores each
#     task in its own transaction);
#   batched: TASK_SUBMIT per image with no reply (the client library buffers
#     them and sends them together), then one TASK_COLLECT that flushes the
#     batch and returns every task id (one transaction per batch).
# See "batching" in imgproc.x.
. "$(dirname "$0")/common.sh"
img=$(sample) || { echo "cannot make a sample image"; exit 1; }
N=${LAB_IMAGES:-200}

say "1. $N small images"
mkdir -p "$WORK/small"
vips thumbnail "$img" "$WORK/thumb.png" 64 >/dev/null
for i in $(seq -w 1 "$N"); do cp "$WORK/thumb.png" "$WORK/small/s$i.png"; done
run vipsheader "$WORK/small/s001.png"

field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$@"; }

say "2. one TASK_CREATE per image"
echo '$ imgproc --json batch --no-batch --steps flip -o one small/'
ip --json batch --no-batch --steps flip -o "$WORK/one" "$WORK/small" >"$WORK/one.json"
say "3. batched: TASK_SUBMIT x 100, then TASK_COLLECT"
echo '$ imgproc --json batch --steps flip -o batched small/'
ip --json batch --steps flip -o "$WORK/batched" "$WORK/small" >"$WORK/batched.json"

say "4. what it cost to create the $N tasks"
printf '%-22s %12s %16s\n' "" "round trips" "seconds to create"
for m in one batched; do
    printf '%-22s %12s %16s\n' "$([ $m = one ] && echo 'one call per image' || echo 'batched')" \
        "$(field "$WORK/$m.json" round_trips)" "$(field "$WORK/$m.json" submit_seconds)"
done
rt1=$(field "$WORK/one.json" round_trips)
rtb=$(field "$WORK/batched.json" round_trips)
echo
echo "round trips saved: $((rt1 - rtb)) of $rt1"
echo "Question: on loopback a round trip costs tens of microseconds; what else did batching save?"
echo "(hint: count the disk syncs: one per transaction)"

check "one round trip per image without batching" [ "$rt1" -eq "$N" ]
check "one round trip per 100 images with batching" [ "$rtb" -eq $(((N + 99) / 100)) ]
check "every image came back both ways" [ "$(field "$WORK/one.json" written) $(field "$WORK/batched.json" written)" = "$N $N" ]
check "the same results both ways" diff -r "$WORK/one" "$WORK/batched"
finish

#!/bin/bash
# Lab 2: the four classic calls, each an RPC that takes an image and returns one:
# GRAYSCALE, RESIZE, ROTATE and BLUR.  Each result is checked with libvips' tools.
. "$(dirname "$0")/common.sh"
img=$(sample) || { echo "cannot make a sample image"; exit 1; }
w=$(vipsheader -f width "$img"); h=$(vipsheader -f height "$img")

say "0. what is it?  IMAGE_INFO reads only the header"
run ip identify "$img"

say "1. GRAYSCALE: one band"
run ip grayscale "$img" -o "$WORK/gray.jpg"
check "one band" [ "$(vipsheader -f bands "$WORK/gray.jpg")" = 1 ]

say "2. RESIZE into a 200x200 box"
run ip resize --width 200 --height 200 "$img" -o "$WORK/small.jpg"
sw=$(vipsheader -f width "$WORK/small.jpg"); sh=$(vipsheader -f height "$WORK/small.jpg")
fits() { [ "$sw" -le 200 ] && [ "$sh" -le 200 ] && { [ "$sw" = 200 ] || [ "$sh" = 200 ]; }; }
check "fits the box, touching it (${sw}x${sh})" fits

say "3. ROTATE by 90 degrees: width and height swap"
run ip rotate --angle 90 "$img" -o "$WORK/rot.jpg"
check "now ${h}x${w}" [ "$(vipsheader -f width "$WORK/rot.jpg")x$(vipsheader -f height "$WORK/rot.jpg")" = "${h}x${w}" ]

say "4. BLUR with sigma 4: the pixels vary less"
run ip blur --sigma 4 "$img" -o "$WORK/blur.jpg"
before=$(vips deviate "$img"); after=$(vips deviate "$WORK/blur.jpg")
echo "standard deviation: $before -> $after"
check "deviation went down" awk -v a="$before" -v b="$after" 'BEGIN{exit !(b < a)}'
finish

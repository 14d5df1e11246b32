#!/bin/bash
# Lab 5: threads plus RPC.  A folder of photos goes to black and white with
# synchronous PROCESS calls, first over 1 connection, then 2, then 4, each
# connection driven by its own client thread (imgproc batch --sync -j N).
# The server runs one thread per connection, so N connections use up to N
# cores; past the number of cores, more connections only wait in line.
. "$(dirname "$0")/common.sh"
N=${LAB_IMAGES:-24}

say "1. a folder of $N photos"
photos "$WORK/photos" "$N" || { echo "cannot make the photos"; exit 1; }
first=$(ls "$WORK/photos" | head -1)
run vipsheader "$WORK/photos/$first"
echo "cores on this machine: $(nproc)"

say "2. black and white (threshold at mid-grey) with 1, 2 and 4 connections"
printf '$ imgproc batch --sync -j N --steps threshold=128 -f png -o OUT photos/\n\n'
printf '%-12s %8s %10s %8s\n' connections seconds images/s speedup
base=
for j in 1 2 4; do
    ip --json batch --sync -j "$j" --steps threshold=128 -f png -o "$WORK/bw$j" "$WORK/photos" \
        >"$WORK/run$j.json" || { echo "FAIL: the batch with $j connections"; FAILED=1; continue; }
    read -r secs rate < <(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["seconds"], d["images_per_second"])' "$WORK/run$j.json")
    [ -z "$base" ] && base=$rate
    printf '%-12s %8.2f %10.1f %7.2fx\n' "$j" "$secs" "$rate" "$(awk -v a="$rate" -v b="$base" 'BEGIN { print a / b }')"
done
echo
echo "Question: why is 4 connections no faster than 2 on a 2-core machine?"

say "3. the results"
out="$WORK/bw1/${first%.*}.png"
run vipsheader "$out"
vips hist_find "$out" "$WORK/hist.csv"
# Only two grey levels may be used: 0 (black) and 255 (white).
levels=$(tr '\t' '\n' <"$WORK/hist.csv" | awk '$1 > 0 { n++; if (NR != 1 && NR != 256) other++ } END { print n + 0, other + 0 }')
echo "grey levels used, and how many of them are neither black nor white: $levels"
check "$N black-and-white images each time" [ "$(ls "$WORK/bw1" "$WORK/bw2" "$WORK/bw4" | grep -c png)" -eq $((N * 3)) ]
check "one band" [ "$(vipsheader -f bands "$out")" = 1 ]
check "only black and white pixels, and both of them" [ "$levels" = "2 0" ]
check "1, 2 and 4 connections give the same bytes" sh -c "diff -r '$WORK/bw1' '$WORK/bw2' && diff -r '$WORK/bw1' '$WORK/bw4'"
finish

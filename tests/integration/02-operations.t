#!/bin/bash
# The image procedures, checked by value: dimensions, bands, pixels, formats.
PORT=47102
PROG=1061000002
. "$(dirname "$0")/../lib.sh"

ensure_rpcbind
start_server
make_photo "$TMP/photo.png" 640 480
vips copy "$TMP/photo.png" "$TMP/photo.jpg[Q=90]"

# identify
like "$(cli identify "$TMP/photo.jpg")" "*: jpeg 640x480, 3 bands, srgb uchar, alpha no,*" "identify reads the header"
cli identify --json "$TMP/photo.png" "$TMP/photo.jpg" >"$TMP/id.json"
python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert [x["format"] for x in d] == ["png", "jpeg"], d
assert all(x["width"] == 640 and x["height"] == 480 and x["bands"] == 3 for x in d), d
' "$TMP/id.json"; ok $? "identify --json on two files"

# grayscale: one band, same size
cli grayscale "$TMP/photo.jpg" -o "$TMP/gray.jpg"; ok $? "grayscale"
is "$(hdr bands "$TMP/gray.jpg") $(hdr width "$TMP/gray.jpg")x$(hdr height "$TMP/gray.jpg")" "1 640x480" "grayscale has one band, same size"
# Gray is BT.601 luma, 0.299 R + 0.587 G + 0.114 B, rounded: libvips computes
# the reference from the decoded colours, for a PNG and a JPEG alike.
printf '3 1\n0.299 0.587 0.114\n' >"$TMP/luma.mat"
gray_diff() {   # gray_diff SOURCE GRAY: "MEAN MAX" absolute difference from the BT.601 reference
    vips recomb "$1" "$TMP/ref.v" "$TMP/luma.mat" && vips round "$TMP/ref.v" "$TMP/rr.v" rint &&
    vips cast "$TMP/rr.v" "$TMP/ref8.v" uchar &&
    vips subtract "$2" "$TMP/ref8.v" "$TMP/gd.v" && vips abs "$TMP/gd.v" "$TMP/ga.v" &&
    vips relational_const "$TMP/ga.v" "$TMP/far.v" more 2
    # mean, max, and the share of pixels more than 2 away (percent)
    echo "$(vips avg "$TMP/ga.v") $(vips max "$TMP/ga.v") $(vips avg "$TMP/far.v" | awk '{ print $1 / 2.55 }')"
}
cli grayscale -f png "$TMP/photo.png" -o "$TMP/gray-png.png"
read -r mean max far < <(gray_diff "$TMP/photo.png" "$TMP/gray-png.png")
is "${max%%.*}" 0 "grayscale of a PNG is BT.601 luma, rounded (max difference $max)"
cli grayscale -f png "$TMP/photo.jpg" -o "$TMP/gray-jpg.png"
read -r mean max far < <(gray_diff "$TMP/photo.jpg" "$TMP/gray-jpg.png")
is "${max%%.*}" 0 "grayscale of a JPEG is BT.601 luma of its decoded colours (max difference $max)"
cli process --steps threshold=128 -f png "$TMP/photo.jpg" -o "$TMP/bw.png"
ok $? "threshold of a colour image (gray first, inside the step)"
vips hist_find "$TMP/bw.png" "$TMP/bw-hist.csv"
is "$(hdr bands "$TMP/bw.png") $(tr '\t' '\n' <"$TMP/bw-hist.csv" | awk '$1 > 0 { n++ } END { print n }')" "1 2" \
   "... gives one band of two levels, black and white"
# A JPEG cut in its pixel data: the loader sees the missing data.
head -c "$(($(stat -c %s "$TMP/photo.jpg") * 6 / 10))" "$TMP/photo.jpg" >"$TMP/cut.jpg"
cli grayscale "$TMP/cut.jpg" -o "$TMP/cut-gray.jpg" 2>"$TMP/err"
is "$?" 1 "a JPEG cut in its pixel data fails"
like "$(cat "$TMP/err")" "*corrupt-image: cannot decode*Premature end of*file*" \
     "... as corrupt, with the decoder's reason"
# A JPEG whose frame header claims 6 times the rows its data holds: libjpeg
# only warns and fills the rest with gray.  Every path must refuse it.
python3 - "$TMP/photo.jpg" "$TMP/liar.jpg" <<'EOF'
import sys
d = bytearray(open(sys.argv[1], 'rb').read())
i = max(d.find(b'\xff\xc0'), d.find(b'\xff\xc2'))   # the frame header (SOF0/SOF2)
h = (d[i + 5] << 8 | d[i + 6]) * 6
d[i + 5], d[i + 6] = h >> 8, h & 255
open(sys.argv[2], 'wb').write(d)
EOF
for steps in grayscale flip resize=100x100 blur=2; do
    cli process --steps "$steps" "$TMP/liar.jpg" -o "$TMP/liar-out.png" 2>"$TMP/err"
    rc=$?
    like "$rc $(cat "$TMP/err")" "1 *corrupt-image*" "a JPEG whose header claims rows it lacks: $steps refuses it"
done

# rotate by 90: width and height swap, pixels moved exactly (lossless PNG)
cli rotate --angle 90 "$TMP/photo.png" -o "$TMP/r90.png"; ok $? "rotate 90"
is "$(hdr width "$TMP/r90.png")x$(hdr height "$TMP/r90.png")" "480x640" "rotate 90 swaps width and height"
vips rot "$TMP/photo.png" "$TMP/ref90.png" d90
vips subtract "$TMP/r90.png" "$TMP/ref90.png" "$TMP/d.v" && vips abs "$TMP/d.v" "$TMP/a.v"
is "$(vips max "$TMP/a.v")" "0.000000" "rotate 90 is exact and clockwise"
cli rotate --angle -270 "$TMP/photo.png" -o "$TMP/rm270.png"
cmp -s "$TMP/r90.png" "$TMP/rm270.png"; ok $? "rotate -270 equals rotate 90"

# rotate by 30: the canvas grows to the rotated bounding box, corners get the background
cli rotate --angle 30 --background '#ff0000' "$TMP/photo.png" -o "$TMP/r30.png"; ok $? "rotate 30"
w=$(hdr width "$TMP/r30.png"); h=$(hdr height "$TMP/r30.png")
ew=$(awk 'BEGIN{printf "%d", 640*cos(0.5235988)+480*sin(0.5235988)}')
eh=$(awk 'BEGIN{printf "%d", 640*sin(0.5235988)+480*cos(0.5235988)}')
[ $((w - ew)) -ge 0 ] && [ $((w - ew)) -le 2 ] && [ $((h - eh)) -ge 0 ] && [ $((h - eh)) -le 2 ]
ok $? "rotate 30 grows the canvas to the bounding box (${w}x${h}, expected ~${ew}x${eh})"
is "$(vips getpoint "$TMP/r30.png" 0 0)" "255 0 0 " "the corner is the background colour"

# resize: fits the box; cover fills it exactly; fill stretches; no enlarging unless asked
cli resize --width 100 --height 100 "$TMP/photo.jpg" -o "$TMP/in.jpg"
is "$(hdr width "$TMP/in.jpg")x$(hdr height "$TMP/in.jpg")" "100x75" "resize inside keeps the aspect ratio"
cli resize --width 100 --height 100 --fit cover "$TMP/photo.jpg" -o "$TMP/cover.jpg"
is "$(hdr width "$TMP/cover.jpg")x$(hdr height "$TMP/cover.jpg")" "100x100" "resize cover fills the box"
cli resize --width 100 --height 30 --fit fill "$TMP/photo.jpg" -o "$TMP/fill.jpg"
is "$(hdr width "$TMP/fill.jpg")x$(hdr height "$TMP/fill.jpg")" "100x30" "resize fill stretches"
cli resize --width 320 "$TMP/photo.jpg" -o "$TMP/w.jpg"
is "$(hdr width "$TMP/w.jpg")x$(hdr height "$TMP/w.jpg")" "320x240" "resize with only a width"
cli resize --width 2000 --height 2000 "$TMP/photo.jpg" -o "$TMP/big.jpg"
is "$(hdr width "$TMP/big.jpg")x$(hdr height "$TMP/big.jpg")" "640x480" "resize never enlarges unless asked"
cli resize --width 1280 --height 1280 --enlarge "$TMP/photo.jpg" -o "$TMP/big2.jpg"
is "$(hdr width "$TMP/big2.jpg")x$(hdr height "$TMP/big2.jpg")" "1280x960" "resize --enlarge does"

# blur lowers the pixel deviation; the mean stays
cli blur --sigma 3 "$TMP/photo.png" -o "$TMP/blur.png"; ok $? "blur"
d0=$(vips deviate "$TMP/photo.png"); d1=$(vips deviate "$TMP/blur.png")
m0=$(vips avg "$TMP/photo.png"); m1=$(vips avg "$TMP/blur.png")
awk -v a="$d0" -v b="$d1" 'BEGIN{exit !(b < 0.9 * a)}'; ok $? "blur lowers the deviation ($d0 -> $d1)"
awk -v a="$m0" -v b="$m1" 'BEGIN{exit !(b > a - 2 && b < a + 2)}'; ok $? "blur keeps the mean ($m0 -> $m1)"

# process: one decode, many steps
cli process --steps 'blur=1,grayscale,resize=200x200:cover,threshold=128' "$TMP/photo.jpg" -o "$TMP/p.png"; ok $? "process pipeline"
is "$(hdr width "$TMP/p.png")x$(hdr height "$TMP/p.png") $(hdr bands "$TMP/p.png")" "200x200 1" "pipeline result size and bands"
nonbw=$(vips relational_const "$TMP/p.png" "$TMP/mid.v" more 0 && vips relational_const "$TMP/p.png" "$TMP/mid2.v" less 255 && vips boolean "$TMP/mid.v" "$TMP/mid2.v" "$TMP/both.v" and && vips max "$TMP/both.v")
is "$nonbw" "0.000000" "threshold leaves only black and white"
cli process --steps 'crop=100x50+10+20,flip,flop' "$TMP/photo.png" -o "$TMP/crop.png"
is "$(hdr width "$TMP/crop.png")x$(hdr height "$TMP/crop.png")" "100x50" "crop, flip, flop"
vips extract_area "$TMP/photo.png" "$TMP/c.v" 10 20 100 50 && vips rot "$TMP/c.v" "$TMP/ref.png" d180
vips subtract "$TMP/crop.png" "$TMP/ref.png" "$TMP/d2.v" && vips abs "$TMP/d2.v" "$TMP/a2.v"
is "$(vips max "$TMP/a2.v")" "0.000000" "crop+flip+flop equals crop+rotate 180, pixel for pixel"
cli process --steps 'sharpen=2,autorot' "$TMP/photo.jpg" -o "$TMP/sh.jpg"; ok $? "sharpen and autorot"

# output formats from the extension or --format
cli grayscale "$TMP/photo.jpg" -o "$TMP/g.webp"
like "$(cli identify "$TMP/g.webp")" "*: webp 640x480*" "the extension picks the output format"
cli grayscale --format tiff "$TMP/photo.jpg" -o - >"$TMP/g.out"
like "$(cli identify "$TMP/g.out")" "*: tiff 640x480*" "--format and -o - write to stdout"
cli grayscale "$TMP/photo.jpg" <&- >"$TMP/g2.jpg"
is "$(hdr bands "$TMP/g2.jpg")" "1" "no -o and stdout not a terminal: stdout"

# many inputs into a folder; one bad file is reported, the rest done, exit 1
cp "$TMP/photo.jpg" "$TMP/a.jpg"; cp "$TMP/photo.png" "$TMP/b.png"; echo "not an image" >"$TMP/c.jpg"
cli grayscale "$TMP/a.jpg" "$TMP/c.jpg" "$TMP/b.png" -o "$TMP/outdir" 2>"$TMP/err"
is "$?" 1 "many inputs with one bad: exit 1"
is "$(ls "$TMP/outdir" | tr '\n' ' ')" "a.jpg b.png " "the good ones are written into the folder"
like "$(cat "$TMP/err")" "imgproc: cannot convert '*/c.jpg': unsupported-format: *" "the bad one is named with its reason"

# Pipes: - reads the image from standard input, -o - writes the result to
# standard output, for the single calls, process and submit.
cat "$TMP/photo.jpg" | cli grayscale - -o - >"$TMP/piped.jpg"
is "$?-$(hdr bands "$TMP/piped.jpg")-$(hdr width "$TMP/piped.jpg")" "0-1-$(hdr width "$TMP/photo.jpg")" \
   "cat a.jpg | imgproc grayscale - -o - > b.jpg"
cli process --steps 'resize=64x64,flip' -f png - -o - <"$TMP/photo.jpg" >"$TMP/piped.png"
is "$?-$(hdr width "$TMP/piped.png")-$(hdr vips-loader "$TMP/piped.png")" \
   "0-64-pngload" "process from standard input to standard output"
cli submit --steps flip -o - - <"$TMP/photo.jpg" >"$TMP/piped-task.jpg"
is "$?-$(hdr width "$TMP/piped-task.jpg")" "0-$(hdr width "$TMP/photo.jpg")" "submit - -o -: a task from stdin, its result to stdout"
cli submit --steps flip -o "$TMP/pipedir" - <"$TMP/photo.jpg" >/dev/null
ok $? "submit - -o DIR names the result after stdin"
[ -f "$TMP/pipedir/stdin.jpg" ]; ok $? "... stdin.jpg"
cli grayscale - -o - </dev/null >/dev/null 2>"$TMP/err"
is "$?-$(cat "$TMP/err")" "1-imgproc: cannot read '-': standard input is empty" "an empty standard input is an error that says so"
cli grayscale -o "$TMP/gray-none/" "$TMP/"nothing*.png 2>/dev/null
is "$?-$([ -e "$TMP/gray-none" ]; echo $?)" "1-1" "a pattern that matched nothing fails and leaves no empty folder"
cli grayscale -o "$TMP/gray-some/" "$TMP/"nothing*.png "$TMP/photo.jpg" 2>/dev/null
is "$?-$(ls "$TMP/gray-some")" "1-photo.jpg" "... and the folder is made for the first result"
stop_server
is "$STOP_STATUS" 0 "server stopped cleanly"
done_testing

#!/bin/bash
# Where results go, and never over each other: two inputs with one file name
# (a/x.jpg, b/x.jpg) are refused before anything is sent by every command that
# writes into a folder; a result never replaces its own input; a name whose
# content belies its extension (a PNG called p.jpg) is caught when the result
# comes back; -o names a format or a folder the client can use.
PORT=47119
PROG=1061000019
. "$(dirname "$0")/../lib.sh"

CORPUS=${IMGPROC_CORPUS:-${XDG_CACHE_HOME:-$HOME/.cache}/imgproc/corpus}
[ -f "$CORPUS/MANIFEST.txt" ] || bail "the real-photo corpus is missing: run 'make corpus'"

ensure_rpcbind
start_server

cd "$TMP" || bail "no temporary folder"
mkdir a b c d
cp "$CORPUS/jpeg-small-photo.jpg" a/x.jpg
cp "$CORPUS/jpeg-gray-photo.jpg" b/x.jpg
cp "$CORPUS/jpeg-gray-photo.jpg" b/x.jpeg
cp "$CORPUS/png-rgb-art.png" c/p.jpg        # a PNG under a JPEG's name
cp "$CORPUS/png-gray-alpha.png" d/p.png
sum_a=$(md5sum <a/x.jpg)

# ---- the same file name twice: every folder-writing command refuses up front
for cmd in "grayscale" "process --steps grayscale" "submit --steps grayscale" \
           "batch --steps grayscale"; do
    # shellcheck disable=SC2086
    cli $cmd a/x.jpg b/x.jpg -o out >"$TMP/o" 2>"$TMP/e"
    is "$?" 2 "$cmd: two inputs named x.jpg are refused (usage, exit 2)"
    like "$(cat "$TMP/e")" "*'a/x.jpg' and 'b/x.jpg' would both be written to 'out/x.jpg'*" \
         "... naming both and where they would go"
    ok "$([ ! -e out ]; echo $?)" "... and nothing was written, not even the folder"
done
cli grayscale a/x.jpg b/x.jpeg -o out 2>"$TMP/e"
is "$?" 2 "x.jpg and x.jpeg (both .jpg results) are refused too"
cli grayscale -f png a/x.jpg b/x.jpeg -o out 2>"$TMP/e"
like "$(cat "$TMP/e")" "*would both be written to 'out/x.png'*" "-f png: they clash as x.png"
cli --json grayscale a/x.jpg b/x.jpg -o out >"$TMP/o" 2>/dev/null
is "$(python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["exit"], d["ok"], "would both" in d["error"])' <"$TMP/o")" \
   "2 False True" "--json: one document carrying the reason"

# ---- a result never replaces its input
cli grayscale a/x.jpg -o a 2>"$TMP/e"
is "$?" 2 "-o the input's own folder: refused"
like "$(cat "$TMP/e")" "*'a/x.jpg' would be overwritten by its own result*" "... saying so"
(cd a && cli submit --steps grayscale --wait x.jpg) 2>"$TMP/e"
is "$?" 2 "submit --wait in the input's folder (results go to .): refused"
is "$(md5sum <a/x.jpg)" "$sum_a" "... and the photo is untouched"
cli grayscale -f png a/x.jpg -o a 2>"$TMP/e"
is "$?" 0 "-f png into the input's folder writes x.png beside it"
is "$(hdr vips-loader a/x.png)-$(hdr bands a/x.png)" "pngload-1" "... a 1-band PNG"
is "$(md5sum <a/x.jpg)" "$sum_a" "... and the photo is untouched"

cp a/x.jpg self.jpg
ln -s self.jpg link.jpg
sum_self=$(md5sum <self.jpg)
for out in self.jpg ./self.jpg "$TMP/self.jpg"; do
    cli grayscale self.jpg -o "$out" 2>"$TMP/e"
    is "$?" 2 "-o $out, the input itself: refused"
done
cli blur --sigma 2 link.jpg -o self.jpg 2>"$TMP/e"
is "$?" 2 "-o the file a symbolic link input points at: refused"
like "$(cat "$TMP/e")" "*'link.jpg' would be overwritten by its own result*" "... saying so"
is "$(md5sum <self.jpg)" "$sum_self" "... and the photo is untouched"

# ---- the format comes from the content, not the name: caught when the result is back
cli grayscale c/p.jpg d/p.png -o out2 2>"$TMP/e"
is "$?" 1 "a PNG named p.jpg and p.png: the second result is not written (exit 1)"
like "$(cat "$TMP/e")" "*'d/p.png' would overwrite 'out2/p.png', the result of 'c/p.jpg'*" \
     "... saying whose result is there"
is "$(hdr width out2/p.png)x$(hdr height out2/p.png)" \
   "$(hdr width c/p.jpg)x$(hdr height c/p.jpg)" "... which is the first input's"
cli submit --steps grayscale c/p.jpg d/p.png -o out3 >/dev/null 2>"$TMP/e"
is "$?" 1 "submit: the same"
like "$(cat "$TMP/e")" "*'d/p.png' (task *) would overwrite 'out3/p.png'*" "... saying so"
is "$(hdr width out3/p.png)" "$(hdr width c/p.jpg)" "... the first result kept"
cli batch --steps grayscale --sync -j 1 c/p.jpg d/p.png -o out4 >/dev/null 2>"$TMP/e"
is "$?" 1 "batch: the same"
like "$(cat "$TMP/e")" "*would overwrite 'out4/p.png', the result of 'c/p.jpg'*" "... saying so"
is "$(hdr width out4/p.png)" "$(hdr width c/p.jpg)" "... the first result kept"

# ---- -o that cannot work is refused before sending
touch afile
cli grayscale a/x.jpg b/x.jpeg -o afile 2>"$TMP/e"
is "$?" 2 "-o an existing file with two inputs: refused"
like "$(cat "$TMP/e")" "*'afile' is a file, and 2 inputs need a folder*" "... saying why"
cli grayscale a/x.jpg b/x.jpeg -o new.jpg 2>"$TMP/e"
is "$?:$([ -e new.jpg ]; echo $?)" "2:1" "-o new.jpg with two inputs: refused, no folder named new.jpg made"
like "$(cat "$TMP/e")" "*-o 'new.jpg' names one image, and 2 inputs need a folder*" "... saying why"
cli grayscale a/x.jpg -o y.xyz 2>"$TMP/e"
is "$?" 2 "-o y.xyz: a format nobody knows is refused, not written as JPEG"
like "$(cat "$TMP/e")" "*'y.xyz' names no format*jpeg, png, webp, tiff, gif*" \
     "... listing the formats"
ok "$([ ! -e y.xyz ]; echo $?)" "... and nothing is written"
cli grayscale -f png a/x.jpg -o y.xyz
is "$(hdr vips-loader y.xyz)-$(hdr bands y.xyz)" "pngload-1" \
   "-f png -o y.xyz writes a PNG under that name"
cli grayscale -f bmp a/x.jpg -o y.png 2>"$TMP/e"
is "$?" 2 "-f bmp: refused"
like "$(cat "$TMP/e")" "*invalid format 'bmp': -f takes auto, jpeg, png, webp, tiff, gif*" \
     "... listing what -f takes"

id=$(cli task create --steps grayscale a/x.jpg) && cli task wait "$id" >/dev/null
mkdir results
cli task result "$id" -o results 2>"$TMP/e"
is "$?:$(ls results | wc -l)" "2:0" "task result -o FOLDER: refused, nothing written"
like "$(cat "$TMP/e")" "*'results' is a folder, and task result writes one file*" "... saying so"

# ---- two bands of data (extract_band) are never taken for gray and alpha
cli process --steps extract_band=1:2 a/x.jpg -o two 2>"$TMP/e"
is "$?:$(hdr vips-loader two)-$(hdr bands two)" "0:pngload-2" \
   "extract_band=1:2 of a JPEG: auto writes a 2-band PNG, not a JPEG that drops band 2"
vips extract_band a/x.jpg want.v 2 && vips extract_band two got.v 1
is "$(vips avg want.v)" "$(vips avg got.v)" "... whose second band is the photo's band 2, level for level"
for f in jpeg webp gif; do
    cli process --steps extract_band=1:2 -f $f a/x.jpg -o "two.$f" 2>"$TMP/e"
    is "$?" 1 "... -f $f is refused (it would read band 2 as transparency)"
done
like "$(cat "$TMP/e")" "*invalid-argument: gif would take band 1 of this 2-band extract_band result for transparency*" \
     "... saying so, and what to choose instead"
cli process --steps extract_band=1:2 -f tiff a/x.jpg -o two.tif
is "$(hdr bands two.tif)" 2 "... -f tiff keeps both bands"

done_testing

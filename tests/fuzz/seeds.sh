#!/bin/bash
# seeds.sh - makes the harnesses' seed corpora in $BUILD/seeds, from real things:
#   image/     the corpus's files under 300 KB, and small images derived from
#              its photographs with the vips CLI, in every kind the server
#              reads (JPEG, PNG, GIF, WebP, TIFF, HEIF) and their variants
#   steps/     every --steps example in README.md, and tests/fuzz/steps.txt
#   dispatch/  real calls of every procedure (tests/fuzz/seeds.c)
# Nothing binary is committed: the seeds are made again on every run.
#
#   BUILD=build-fuzz tests/fuzz/seeds.sh
set -euo pipefail

BUILD=${BUILD:-build-fuzz}
CORPUS=$(bash tests/corpus/fetch.sh --quiet)
OUT=$BUILD/seeds
NEW=$OUT.new
rm -rf "$NEW"
mkdir -p "$NEW/image" "$NEW/steps" "$NEW/dispatch"

# ---- images
for f in "$CORPUS"/*.jpg "$CORPUS"/*.png "$CORPUS"/*.gif "$CORPUS"/*.webp "$CORPUS"/*.tif; do
    if [ "$(stat -c %s "$f")" -lt 300000 ]; then
        cp "$f" "$NEW/image/"
    fi
done

# Small ones (a few KB: many runs a second), each derived from a real file:
# derive OPERATION SOURCE OUTPUT[SAVE-OPTIONS] ARGUMENT: vips OPERATION on
# the corpus's SOURCE, written to OUTPUT among the image seeds.
derive() {
    if ! vips "$1" "$CORPUS/$2" "$NEW/image/$3" "$4" >/dev/null 2>"$NEW/vips.err"; then
        echo "seeds: cannot make $3: $(head -1 "$NEW/vips.err")" >&2
        exit 1
    fi
}
photo=jpeg-small-photo.jpg
frame=tiff-video-frame.tif
anim=gif-animated-art.gif
derive thumbnail $photo 'jpeg-baseline.jpg[Q=75,strip]' 48
derive thumbnail $photo 'jpeg-progressive.jpg[interlace,optimize-coding,strip]' 40
derive thumbnail $photo 'jpeg-444.jpg[subsample-mode=off,Q=95,strip]' 32
derive resize jpeg-orient-6.jpg 'jpeg-exif-orient-6.jpg' 0.05
derive resize jpeg-cmyk.jpg 'jpeg-cmyk.jpg[Q=70,strip]' 0.025
derive resize jpeg-gray-photo.jpg 'jpeg-gray.jpg[Q=70,strip]' 0.02
derive thumbnail $photo 'png-rgb.png[strip]' 32
derive thumbnail webp-lossy-alpha-photo.webp 'png-rgba.png[strip]' 32
derive thumbnail png-palette-alpha-photo.png 'png-palette.png[palette,strip]' 32
derive thumbnail $photo 'png-interlaced.png[interlace,strip]' 24
derive resize png-16bit-art.png 'png-16bit.png[strip]' 0.06
derive resize png-gray-alpha.png 'png-gray-alpha.png[strip]' 0.02
derive resize jpeg-gray-photo.jpg 'png-1bit.png[bitdepth=1,strip]' 0.02
derive thumbnail $photo 'gif-still.gif[strip]' 32
derive thumbnail "$anim[n=4]" 'gif-animated.gif' 24
derive thumbnail $photo 'webp-lossy.webp[Q=60,strip]' 40
derive thumbnail png-palette-alpha-photo.png 'webp-lossless.webp[lossless,strip]' 32
derive thumbnail "$anim[n=3]" 'webp-animated.webp[strip]' 24
derive resize $frame 'tiff-deflate.tif[compression=deflate,strip]' 0.3
derive resize $frame 'tiff-lzw.tif[compression=lzw,predictor=horizontal,strip]' 0.3
derive resize $frame 'tiff-jpeg.tif[compression=jpeg,strip]' 0.3
derive resize $frame 'tiff-tiled.tif[tile,tile-width=16,tile-height=16,strip]' 0.3
derive resize $frame 'tiff-pyramid.tif[tile,pyramid,tile-width=16,tile-height=16,strip]' 0.5
derive resize tiff-16bit-video-frame.tif 'tiff-16bit.tif[strip]' 0.3
derive resize jpeg-gray-photo.jpg 'tiff-1bit.tif[bitdepth=1,compression=ccittfax4,strip]' 0.02
derive resize jpeg-cmyk.jpg 'tiff-cmyk.tif[compression=packbits,strip]' 0.02
derive thumbnail "$anim[n=3]" 'tiff-pages.tif[strip]' 24
derive thumbnail $photo 'heif-avif.avif[compression=av1,Q=40,strip]' 32
derive thumbnail $photo 'heif-hevc.heic[compression=hevc,Q=40,strip]' 32
rm -f "$NEW/vips.err"

# ---- step strings: the README's examples, then every form of the syntax
n=0
seed_steps() {
    n=$((n + 1))
    printf '%s' "$1" >"$NEW/steps/$(printf 'steps-%02d' $n)"
}
while IFS= read -r s; do
    seed_steps "$s"
done < <(grep -o -- "--steps '[^']*'\|--steps [^ ']*" README.md | sed "s/^--steps //; s/^'//; s/'\$//" | sort -u)
if [ "$n" -eq 0 ]; then
    echo "seeds: no --steps example found in README.md" >&2
    exit 1
fi
while IFS= read -r s; do
    case "$s" in ''|'#'*) continue ;; esac
    seed_steps "$s"
done <tests/fuzz/steps.txt

# ---- real calls, carrying small images (the first in every image call)
I=$NEW/image
"$BUILD/fuzz/seeds" "$NEW/dispatch" "$I/jpeg-baseline.jpg" "$I/png-rgba.png" "$I/gif-animated.gif" \
    "$I/webp-lossy.webp" "$I/tiff-16bit.tif" "$I/heif-avif.avif" "$I/jpeg-cmyk.jpg"

rm -rf "$OUT"
mv "$NEW" "$OUT"
echo "seeds: $(ls "$OUT/image" | wc -l) images, $(ls "$OUT/steps" | wc -l) step strings," \
     "$(ls "$OUT/dispatch" | wc -l) call sequences in $OUT"

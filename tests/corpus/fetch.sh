#!/bin/bash
# fetch.sh - builds the real-image corpus of the differential suite, once, in a
# cache outside the tree, and prints where it is.
#
# The images are photographs and artwork from Debian packages (fetched with
# apt-get download, unpacked with dpkg-deb); the kinds no package holds are
# derived from those photographs with the vips CLI (exiftool writes the EXIF
# orientation tag).  Nothing here is made from nothing.  Once built, the corpus is reused offline; delete the
# folder (or pass --force) to rebuild.
#
#   tests/corpus/fetch.sh [--force] [--quiet]
#   IMGPROC_CORPUS=DIR    where it goes (default ~/.cache/imgproc/corpus)
set -euo pipefail

CORPUS=${IMGPROC_CORPUS:-${XDG_CACHE_HOME:-$HOME/.cache}/imgproc/corpus}
# Bump when the list below changes: an older cache is rebuilt.
VERSION=5
force=0
quiet=0
for a in "$@"; do
    case "$a" in
    --force) force=1 ;;
    --quiet) quiet=1 ;;
    *) echo "usage: $0 [--force] [--quiet]" >&2; exit 2 ;;
    esac
done
say() { [ "$quiet" -eq 1 ] || echo "corpus: $*" >&2; }

if [ "$force" -eq 0 ] && [ "$(cat "$CORPUS/VERSION.txt" 2>/dev/null)" = "$VERSION" ]; then
    echo "$CORPUS"
    exit 0
fi

for tool in vips vipsheader exiftool dpkg-deb apt-get; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "corpus: '$tool' is missing: run 'make deps' (it installs libvips-tools and libimage-exiftool-perl)" >&2
        exit 1
    }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/imgproc-corpus.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
NEW="$WORK/corpus"
mkdir -p "$NEW" "$WORK/deb" "$WORK/x"

# Packages and the files taken from each (paths inside the package).
# mate-backgrounds: photographs (Storm, LadyBird) and artwork (Gulp: RGBA;
# Stripes: gray + alpha; Waves: RGBA, partly transparent).
# plasma-workspace-wallpapers: a grayscale photograph (Grey), a small preview
# (Path), an RGBA portrait (Kay).  ukui-wallpapers: a 9 MP JPEG (artwork).
# lomiri-wallpapers-16.04: a 16 MP photograph.  gdk-pixbuf-tests: a 13 MP
# photograph, a camera photo tagged with EXIF orientation 6 (its pixels are
# stored upright, to test the tag: autorot, like libvips' own, lays it on its
# side; the derived orient-1..8 set below is the one that comes back
# upright), an animated GIF (artwork, 45 frames).  argyll-doc: a progressive JPEG (product photo).
# allegro5-doc: a palette PNG with transparency (photo).  golang-golang-x-
# image-dev: a lossy WebP with alpha (photo), 8- and 16-bit TIFFs (a video
# frame).  imagemagick-6-doc: a 16-bit PNG (artwork).
GDK=usr/libexec/installed-tests/gdk-pixbuf
XIMG=usr/share/gocode/src/golang.org/x/image/testdata
declare -A TAKE=(
    [mate-backgrounds]="
        usr/share/backgrounds/mate/nature/Storm.jpg
        usr/share/backgrounds/mate/nature/LadyBird.jpg
        usr/share/backgrounds/mate/abstract/Gulp.png
        usr/share/backgrounds/mate/abstract/Waves.png
        usr/share/backgrounds/mate/desktop/Stripes.png"
    [plasma-workspace-wallpapers]="
        usr/share/wallpapers/Grey/contents/images/2560x1600.jpg
        usr/share/wallpapers/Path/contents/screenshot.jpg
        usr/share/wallpapers/Kay/contents/images/1080x1920.png"
    [ukui-wallpapers]="usr/share/backgrounds/rhythm.jpg"
    [lomiri-wallpapers-16.04]="usr/share/backgrounds/seeding_by_Clements_Engelhardt.jpg"
    [gdk-pixbuf-tests]="
        $GDK/issue70.jpg
        $GDK/bug725582-testrotate.jpg
        $GDK/1_partyanimsm2.gif"
    [argyll-doc]="usr/share/doc/argyll-doc/ColorMunki.jpg"
    [allegro5-doc]="usr/share/doc/allegro5-doc/examples/data/mysha_pal.png"
    [golang-golang-x-image-dev]="
        $XIMG/yellow_rose.lossy-with-alpha.webp
        $XIMG/video-001.tiff
        $XIMG/video-001-16bit.tiff"
    [imagemagick-6-doc]="usr/share/doc/imagemagick-6-common/html/www/Magick++/ImageMagick.png"
)

fetch() {   # fetch PACKAGE: download it into $WORK/deb (apt's lists refreshed if need be)
    ( cd "$WORK/deb" && apt-get download "$1" >/dev/null 2>&1 ) && return 0
    if [ "$(id -u)" -eq 0 ]; then
        say "refreshing apt's package lists"
        apt-get update -qq >/dev/null
        ( cd "$WORK/deb" && apt-get download "$1" >/dev/null 2>&1 ) && return 0
    fi
    echo "corpus: cannot download the Debian package '$1' (network? apt sources?)" >&2
    exit 1
}

for pkg in "${!TAKE[@]}"; do
    say "fetching $pkg"
    fetch "$pkg"
    deb=$(ls "$WORK/deb/${pkg}"_*.deb)
    # shellcheck disable=SC2086
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$WORK/x" $(for f in ${TAKE[$pkg]}; do echo "./$f"; done)
    echo "$(basename "$deb")" >>"$NEW/SOURCES.txt"
    rm -f "$deb"
done
M="$WORK/x/usr/share/backgrounds/mate"
PL="$WORK/x/usr/share/wallpapers"

# ---- real files, as they are
X="$WORK/x"
cp "$X/usr/share/backgrounds/rhythm.jpg"           "$NEW/jpeg-9mp-art.jpg"
cp "$X/$GDK/issue70.jpg"                           "$NEW/jpeg-13mp-photo.jpg"
cp "$X/$GDK/bug725582-testrotate.jpg"              "$NEW/jpeg-camera-orient-6.jpg"
cp "$M/nature/Storm.jpg"                           "$NEW/jpeg-photo-storm.jpg"
cp "$M/nature/LadyBird.jpg"                        "$NEW/jpeg-photo-ladybird.jpg"
cp "$PL/Grey/contents/images/2560x1600.jpg"        "$NEW/jpeg-gray-photo.jpg"
cp "$PL/Path/contents/screenshot.jpg"              "$NEW/jpeg-small-photo.jpg"
cp "$X/usr/share/doc/argyll-doc/ColorMunki.jpg"    "$NEW/jpeg-progressive-photo.jpg"
cp "$M/abstract/Gulp.png"                          "$NEW/png-rgba-art.png"
cp "$PL/Kay/contents/images/1080x1920.png"         "$NEW/png-rgba-portrait.png"
cp "$M/desktop/Stripes.png"                        "$NEW/png-gray-alpha.png"
cp "$X/usr/share/doc/allegro5-doc/examples/data/mysha_pal.png" "$NEW/png-palette-alpha-photo.png"
cp "$X/usr/share/doc/imagemagick-6-common/html/www/Magick++/ImageMagick.png" "$NEW/png-16bit-art.png"
cp "$X/$XIMG/yellow_rose.lossy-with-alpha.webp"    "$NEW/webp-lossy-alpha-photo.webp"
cp "$X/$XIMG/video-001.tiff"                       "$NEW/tiff-video-frame.tif"
cp "$X/$XIMG/video-001-16bit.tiff"                 "$NEW/tiff-16bit-video-frame.tif"
cp "$X/$GDK/1_partyanimsm2.gif"                    "$NEW/gif-animated-art.gif"

# ---- derived with the vips CLI from the real photographs above
say "deriving the kinds no package holds"
LB="$M/nature/LadyBird.jpg"
vips icc_export "$M/nature/Storm.jpg" "$NEW/jpeg-cmyk.jpg" --output-profile cmyk
vips colourspace "$LB" "$WORK/lb16.v" rgb16
vips pngsave "$WORK/lb16.v" "$NEW/png-16bit-photo.png"
vips extract_band "$M/abstract/Gulp.png" "$WORK/rgb.v" 0 --n 3
vips pngsave "$WORK/rgb.v" "$NEW/png-rgb-art.png"
vips tiffsave "$LB" "$NEW/tiff-photo.tif" --compression lzw
# Over 20 megapixels: the 16 MP photograph, 1.15 times larger (6109x3436).
vips resize "$X/usr/share/backgrounds/seeding_by_Clements_Engelhardt.jpg" \
    "$NEW/jpeg-21mp-photo.jpg[Q=90]" 1.15

# Each EXIF orientation 1..8.  Stored rotated or mirrored the other way, so
# that applying the tag (autorot) gives the upright photograph back in all 8.
vips resize "$M/nature/Storm.jpg" "$WORK/up.v" 0.5       # 960x640
vips copy "$WORK/up.v"                    "$WORK/o1.v"
vips flip "$WORK/up.v" "$WORK/o2.v" horizontal
vips rot  "$WORK/up.v" "$WORK/o3.v" d180
vips flip "$WORK/up.v" "$WORK/o4.v" vertical
vips rot  "$WORK/up.v" "$WORK/t.v" d90
vips flip "$WORK/t.v"  "$WORK/o5.v" horizontal             # transpose
vips rot  "$WORK/up.v" "$WORK/o6.v" d270
vips rot  "$WORK/up.v" "$WORK/t.v" d270
vips flip "$WORK/t.v"  "$WORK/o7.v" horizontal             # transverse
vips rot  "$WORK/up.v" "$WORK/o8.v" d90
for n in 1 2 3 4 5 6 7 8; do
    vips jpegsave "$WORK/o$n.v" "$NEW/jpeg-orient-$n.jpg" --Q 92
    exiftool -q -overwrite_original -n -Orientation="$n" "$NEW/jpeg-orient-$n.jpg"
    # Check the derivation: upright again, the same picture.
    vips autorot "$NEW/jpeg-orient-$n.jpg" "$WORK/back.v"
    vips subtract "$WORK/back.v" "$WORK/up.v" "$WORK/d.v"
    vips abs "$WORK/d.v" "$WORK/a.v"
    d=$(vips avg "$WORK/a.v")
    awk -v d="$d" 'BEGIN { exit !(d < 3) }' || {
        echo "corpus: orientation $n does not come back upright (mean difference $d)" >&2
        exit 1
    }
done

# The images that get every ordered pair of steps (diff.c reads this).
cat >"$NEW/pairs.txt" <<'EOF'
jpeg-9mp-art.jpg
png-rgba-art.png
jpeg-gray-photo.jpg
jpeg-cmyk.jpg full
png-16bit-photo.png full
jpeg-camera-orient-6.jpg full
webp-lossy-alpha-photo.webp full
EOF

{
    echo "# The imgproc corpus: file, size, kind (vipsheader), sha256"
    for f in "$NEW"/*; do
        case "$f" in *.txt) continue ;; esac
        printf '%s\t%s\t%s\n' "$(basename "$f")" "$(vipsheader "$f" | sed 's/^[^:]*: //')" \
            "$(sha256sum <"$f" | cut -c1-16)"
    done
} >"$NEW/MANIFEST.txt"
echo "$VERSION" >"$NEW/VERSION.txt"

mkdir -p "$(dirname "$CORPUS")"
rm -rf "$CORPUS.old"
[ -d "$CORPUS" ] && mv "$CORPUS" "$CORPUS.old"
mv "$NEW" "$CORPUS"
rm -rf "$CORPUS.old"
say "$(grep -vc '^#' "$CORPUS/MANIFEST.txt") images in $CORPUS"
echo "$CORPUS"

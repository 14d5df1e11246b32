# common.sh - shared by the lab scripts: where the client is, which server, checks.
# Settings (environment): IMGPROC (the client), IMGPROC_HOST, PROG or IMGPROC_PROGRAM
# (program number, decimal or hex),
# IMGPROC_IMAGE (a sample image; one is made with libvips' tools when unset),
# IMGPROC_PHOTOS (a folder of real photographs, JPEG; e.g. the corpus that
# tests/corpus/fetch.sh builds; when unset, copies of the sample stand in).
here=$(cd "$(dirname "$0")" && pwd)
IMGPROC=${IMGPROC:-$(command -v imgproc || echo "$here/../build/imgproc")}
HOST=${IMGPROC_HOST:-localhost}
# The program number, from $PROG or $IMGPROC_PROGRAM (what the client reads), in
# decimal or 0x hex as imgprocd prints it; kept in decimal, which rpcinfo needs.
PROG=${PROG:-${IMGPROC_PROGRAM:-0x20494D47}}
case $PROG in
0[xX][0-9a-fA-F]*|[0-9]*) PROG=$((PROG)) ;;
*) echo "not a program number: '$PROG' (decimal, or hex such as 0x20494D47)" >&2; exit 2 ;;
esac
# What a lab makes stays in its own folder after it ends, to be opened and
# looked at ($IMGPROC_LAB_DIR, default $TMPDIR/imgproc-lab, then the lab's
# name); the next run starts it afresh, and --clean removes it.
WORK=${IMGPROC_LAB_DIR:-${TMPDIR:-/tmp}/imgproc-lab}/$(basename "$0" .sh)
if [ "${1:-}" = --clean ]; then
    rm -rf "$WORK" && echo "removed $WORK"
    exit 0
fi
rm -rf "$WORK" && mkdir -p "$WORK" || { echo "cannot make $WORK" >&2; exit 1; }
FAILED=0

say() { printf '\n== %s\n' "$*"; }
# run COMMAND...: shows the command exactly as it runs, ready to paste (ip
# stands for the client with this lab's host and program), then runs it.
run() {
    local words=("$@")
    [ "$1" = ip ] && words=("$IMGPROC" -H "$HOST" --program "$PROG" "${@:2}")
    printf '$'
    printf ' %q' "${words[@]}"
    printf '\n'
    "$@"
}
check() {   # check DESCRIPTION COMMAND...: prints PASS or FAIL
    local what=$1; shift
    if "$@"; then echo "PASS: $what"; else echo "FAIL: $what"; FAILED=1; fi
}
ip() { "$IMGPROC" -H "$HOST" --program "$PROG" "$@"; }
sample() {
    if [ -n "$IMGPROC_IMAGE" ]; then echo "$IMGPROC_IMAGE"; return; fi
    vips gaussnoise "$WORK/n.v" 800 600 --mean 128 --sigma 40 >/dev/null &&
    vips bandjoin "$WORK/n.v $WORK/n.v $WORK/n.v" "$WORK/c.v" &&
    vips copy "$WORK/c.v" "$WORK/sample.jpg" --interpretation srgb && rm -f "$WORK/n.v" "$WORK/c.v" &&
        echo "$WORK/sample.jpg"
}
photos() {  # photos DIR N: N photographs in DIR, real ones when IMGPROC_PHOTOS says where
    local dir=$1 n=$2 i=0 src
    mkdir -p "$dir"
    if [ -n "$IMGPROC_PHOTOS" ]; then
        set -- "$IMGPROC_PHOTOS"/*.jpg
        [ -e "$1" ] || { echo "no .jpg files in $IMGPROC_PHOTOS" >&2; return 1; }
        while [ "$i" -lt "$n" ]; do
            for src in "$@"; do
                [ "$i" -lt "$n" ] || break
                i=$((i + 1))
                cp "$src" "$dir/photo$(printf %02d "$i")-$(basename "$src")"
            done
        done
        return 0
    fi
    vips resize "$(sample)" "$WORK/big.jpg" 2 >/dev/null || return 1   # more work per call
    while [ "$i" -lt "$n" ]; do
        i=$((i + 1))
        cp "$WORK/big.jpg" "$dir/photo$(printf %02d "$i").jpg"
    done
}
finish() {
    echo
    echo "results: $WORK (remove them with: bash $0 --clean)"
    [ "$FAILED" -eq 0 ] && echo "all checks passed" || echo "some checks FAILED"
    exit "$FAILED"
}

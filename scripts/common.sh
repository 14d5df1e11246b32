# common.sh - shared by the lab scripts: where the client is, which server, checks.
# Settings (environment): IMGPROC (the client), IMGPROC_HOST, PROG (program number),
# IMGPROC_IMAGE (a sample image; one is made with libvips' tools when unset).
here=$(cd "$(dirname "$0")" && pwd)
IMGPROC=${IMGPROC:-$(command -v imgproc || echo "$here/../build/imgproc")}
HOST=${IMGPROC_HOST:-localhost}
PROG=${PROG:-$((0x20494D47))}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/imgproc-lab.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
FAILED=0

say() { printf '\n== %s\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
check() {   # check DESCRIPTION COMMAND...: prints PASS or FAIL
    local what=$1; shift
    if "$@"; then echo "PASS: $what"; else echo "FAIL: $what"; FAILED=1; fi
}
ip() { "$IMGPROC" -H "$HOST" --program "$PROG" "$@"; }
sample() {
    if [ -n "$IMGPROC_IMAGE" ]; then echo "$IMGPROC_IMAGE"; return; fi
    vips gaussnoise "$WORK/n.v" 800 600 --mean 128 --sigma 40 >/dev/null &&
    vips bandjoin "$WORK/n.v $WORK/n.v $WORK/n.v" "$WORK/c.v" &&
    vips copy "$WORK/c.v" "$WORK/sample.jpg" --interpretation srgb && echo "$WORK/sample.jpg"
}
finish() { [ "$FAILED" -eq 0 ] && echo "all checks passed" || echo "some checks FAILED"; exit "$FAILED"; }

#!/bin/bash
# The differential suite: every operation alone on every real image of the
# corpus, and every ordered pair of steps on the pair images, sent by the real
# client to a real server; each result compared with what plain libvips gives
# (tests/corpus/diff.c).  CORPUS_FULL=1 runs the larger matrix (make check-corpus).
PORT=47110
PROG=1061000010
. "$(dirname "$0")/../lib.sh"

DIFF="$TOP/$BUILD/tests/corpus-diff"
CORPUS=${IMGPROC_CORPUS:-${XDG_CACHE_HOME:-$HOME/.cache}/imgproc/corpus}
[ -f "$CORPUS/MANIFEST.txt" ] ||
    bail "no image corpus in $CORPUS: run 'make corpus' (or tests/corpus/fetch.sh) once, with network"
[ -x "$DIFF" ] || bail "$DIFF is not built: run 'make check'"

ensure_rpcbind
start_server

# The cases, numbered.
# CORPUS_ONLY / CORPUS_SKIP: extended regular expressions on "IMAGE STEPS FORMAT"
# that keep or drop cases (check-valgrind runs a few small images only).
"$DIFF" list ${CORPUS_FULL:+--full} "$CORPUS" 2>/dev/null |
    grep -E -- "${CORPUS_ONLY:-.}" | { [ -n "$CORPUS_SKIP" ] && grep -vE -- "$CORPUS_SKIP" || cat; } |
    awk '{ printf "%04d\t%s\n", NR, $0 }' >"$TMP/cases"
[ -s "$TMP/cases" ] || bail "no cases listed from $CORPUS"
mkdir -p "$TMP/out"

# One client run per case, two at a time: ID.FORMAT (the result), ID.err
# (what the client said, -v), ID.rc (its exit status).
export IMGPROC PROG OUT="$TMP/out"
tr '\t' '\n' <"$TMP/cases" | xargs -d '\n' -n 4 -P 2 sh -c '
    "$IMGPROC" --program "$PROG" -v process --format "$4" --steps "$3" "$2" -o "$OUT/$1.$4" \
        >/dev/null 2>"$OUT/$1.err"
    echo $? >"$OUT/$1.rc"' sh

# The reference and the comparison print the TAP lines.
"$DIFF" check "$TMP/cases" "$TMP/out" 2>/dev/null
rc=$?
stop_server
[ "$STOP_STATUS" -eq 0 ] || { echo "# imgprocd did not exit cleanly"; rc=1; }
exit $rc

#!/bin/bash
# The gateway's page in a real browser (headless chromium, driven by
# selenium through chromedriver: tests/web/page_check.py): 20 real photos of
# every common kind and one text file are dropped on the page, a pipeline
# is built with the page's own controls, and every image must come back:
# each photo done, with the size and bytes the command line gets for the
# same steps, having shown live progress; the text file failed, saying
# why.  The browser's console must stay free of errors (a script error, a
# Content-Security-Policy refusal).  IMGPROC_SCREENSHOT=FILE keeps the
# screenshot (README.md shows one).
PORT=47123
PROG=1061000023
. "$(dirname "$0")/../lib.sh"

CORPUS=${IMGPROC_CORPUS:-${XDG_CACHE_HOME:-$HOME/.cache}/imgproc/corpus}
[ -f "$CORPUS/MANIFEST.txt" ] || bail "the real-photo corpus is missing: run 'make corpus'"
[ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] ||
    bail "chromium and chromium-driver are missing (.ci/deps.sh installs them)"
/usr/bin/python3 -c 'import selenium' 2>/dev/null || bail "python3-selenium is missing"
cd "$TMP" || bail "no temporary folder"

ensure_rpcbind
start_server
start_web

STEPS=resize=240x240,grayscale
# Twenty photos and artworks of every kind the corpus has, the largest left out for time.
PHOTOS=$(ls "$CORPUS"/*.jpg "$CORPUS"/*.png "$CORPUS"/*.webp "$CORPUS"/*.tif "$CORPUS"/*.gif |
         grep -v -e 21mp -e 13mp | head -20)
is "$(echo "$PHOTOS" | wc -l)" 20 "twenty real images to drop"
cp /etc/os-release notes.txt

/usr/bin/python3 "$TOP/tests/web/page_check.py" "$URL/" page.png ${STEPS//,/ } -- $PHOTOS \
    "$TMP/notes.txt" >page.out 2>page.err
is "$?" 0 "the browser test runs to its end"
[ -s page.err ] && sed 's/^/# /' page.err | tail -20
is "$(sed -n 's/^pipeline //p' page.out)" "$STEPS" "the pipeline built with the page's controls"
is "$(sed -n 's/^socket //p' page.out)" yes "the page's WebSocket is open"

for f in $PHOTOS; do
    name=${f##*/}
    read -r _ state width height bytes seen _ < <(grep "^$name " page.out)
    cli process --steps "$STEPS" "$f" -o "cli.${name##*.}" 2>/dev/null
    is "$state" done "$name: done"
    is "${width}x$height $bytes" "$(hdr width "cli.${name##*.}")x$(hdr height "cli.${name##*.}") $(wc -c <"cli.${name##*.}")" \
       "... its size and bytes what imgproc process gives"
    like "$seen" "uploading,*done" "... having shown its upload, then its progress, to done"
done
# Progress came live from the socket: at least one image was seen queued or running.
like "$(grep -c -e ',queued,' -e ',running,' page.out)" "[1-9]*" \
     "live progress: images shown queued or running before done"
read -r _ state _ _ _ _ why < <(grep '^notes.txt ' page.out)
is "$state" failed "the text file: failed"
like "$why" "unsupported-format:*" "... saying why"
is "$(sed -n 's/^summary //p' page.out)" "20 of 21 done" "the page's summary"
is "$(sed -n 's/^console //p' page.out)" 0 "no errors in the browser's console"
grep '^# ' page.out
[ -s page.png ] && [ "$(hdr width page.png)" -ge 1000 ]
ok $? "a screenshot of the finished page"
[ -n "$IMGPROC_SCREENSHOT" ] && cp page.png "$IMGPROC_SCREENSHOT"

# A pipeline the server refuses: said once, at the top, and nothing more is sent.
TWO=$(echo "$PHOTOS" | head -2)
/usr/bin/python3 "$TOP/tests/web/page_check.py" "$URL/" bad.png resize=abc -- $TWO >bad.out 2>bad.err
is "$?" 0 "a bad pipeline: the browser test runs to its end"
like "$(sed -n 's/^error //p' bad.out)" "The pipeline is not one the server takes: steps: *resize*" \
     "... the page says why, once"
is "$(grep -c ' waiting ' bad.out)" 2 "... and both images wait to be sent again"

stop_web
is "$WEB_STATUS" 0 "the gateway stops cleanly"
done_testing

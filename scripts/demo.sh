#!/bin/bash
# demo.sh - `make demo`: every operation on a sample image, through a real server,
# then the web gateway over HTTP; on a terminal it keeps both up for the page.
set -u
BUILD=${BUILD:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
out="$top/demo-out"
port=47900
prog=$((0x20494D47))
srv="$top/$BUILD/imgprocd"
cli="$top/$BUILD/imgproc"
rpcbind_opts=()
cli_opts=(--program "$prog")

if ! rpcinfo -p 127.0.0.1 >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ] && rpcbind -w; then
        echo "demo: started rpcbind"
    else
        echo "demo: rpcbind is not running (start it with: sudo rpcbind -w); serving without it"
        rpcbind_opts=(--no-rpcbind)
        cli_opts+=(-p "$port")
    fi
fi

rm -rf "$out" && mkdir -p "$out"
mkfifo "$out/.ready"
"$srv" --port "$port" --state-dir "$out/state" -v "${rpcbind_opts[@]}" >"$out/.ready" 2>"$out/server.log" &
srv_pid=$!
trap 'kill -TERM $srv_pid 2>/dev/null' EXIT
# The server prints one line once it serves; read blocks until then.
read -r ready <"$out/.ready"
rm -f "$out/.ready"
case "$ready" in
"imgprocd: ready"*) echo "$ready" ;;
*) echo "demo: the server did not start:"; cat "$out/server.log"; exit 1 ;;
esac

# A photo-like sample: noise for texture, a gradient, a disc for edges.
vips gaussnoise "$out/n.v" 1200 800 --mean 110 --sigma 35 >/dev/null
vips xyz "$out/xy.v" 1200 800 && vips extract_band "$out/xy.v" "$out/x.v" 0
vips linear "$out/x.v" "$out/g.v" 0.2 30 --uchar
vips bandjoin "$out/n.v $out/g.v $out/n.v" "$out/c.v"
vips copy "$out/c.v" "$out/sample.jpg[Q=90]" --interpretation srgb
rm -f "$out"/*.v

c() { echo "\$ imgproc $*"; "$cli" "${cli_opts[@]}" "$@" || fail=1; }
fail=0
c ping
c -T udp ping
c info
c identify "$out/sample.jpg"
c grayscale "$out/sample.jpg" -o "$out/grayscale.jpg"
c resize --width 300 --height 300 "$out/sample.jpg" -o "$out/resize-inside.jpg"
c resize --width 300 --height 300 --fit cover "$out/sample.jpg" -o "$out/resize-cover.jpg"
c rotate --angle 90 "$out/sample.jpg" -o "$out/rotate-90.jpg"
c rotate --angle 30 --background white "$out/sample.jpg" -o "$out/rotate-30.png"
c blur --sigma 5 "$out/sample.jpg" -o "$out/blur.jpg"
c process --steps 'blur=2,grayscale,resize=600x400,sharpen' "$out/sample.jpg" -o "$out/pipeline.webp"
c process --steps 'grayscale,threshold=120' "$out/sample.jpg" -o "$out/black-and-white.png"
c process --steps 'crop=400x300+100+100,flip,flop' "$out/sample.jpg" -o "$out/crop-flip-flop.jpg"
# Tasks: kept on disk, run in the background, fetched later.
echo "\$ id=\$(imgproc task create --hold --steps 'blur=3,grayscale' sample.jpg)"
id=$("$cli" "${cli_opts[@]}" task create --hold --steps 'blur=3,grayscale' "$out/sample.jpg") || fail=1
c task status "$id"
c task start "$id"
c task wait "$id"
c task result "$id" -o "$out/task-result.jpg"
c submit --steps 'resize=400x400,sharpen' -o "$out/submitted" "$out/sample.jpg"
c task list
# A whole folder: batched task creation, results fetched over 2 connections.
mkdir -p "$out/folder"
for k in 1 2 3 4 5 6; do cp "$out/sample.jpg" "$out/folder/photo$k.jpg"; done
c batch -j 2 --steps 'grayscale,resize=320x320' -o "$out/batch" "$out/folder"
c batch --sync -j 2 --steps 'threshold=128' -f png -o "$out/batch-bw" "$out/folder"
echo
c identify "$out"/*.jpg "$out"/*.png "$out"/*.webp

# The web gateway: the same server over HTTP, and the page.
echo
web_port=${IMGPROC_WEB_PORT:-8080}
web_opts=(--program "$prog" --listen "127.0.0.1:$web_port")
[ ${#rpcbind_opts[@]} -gt 0 ] && web_opts+=(-p "$port")
mkfifo "$out/.web"
"$top/$BUILD/imgproc-web" "${web_opts[@]}" >"$out/.web" 2>"$out/web.log" &
web_pid=$!
trap 'kill -TERM $srv_pid $web_pid 2>/dev/null' EXIT
read -r ready <"$out/.web"
rm -f "$out/.web"
url="http://127.0.0.1:$web_port"
h() { echo "\$ $*"; "$@" || fail=1; echo; }
case "$ready" in
"imgproc-web: ready"*)
    echo "$ready"
    h curl -sS --fail-with-body -o "$out/web-info.json" -w '%{http_code} %{content_type}\n' "$url/v1/info"
    h curl -sS --fail-with-body --data-binary @"$out/sample.jpg" -o "$out/web-gray.jpg" \
        -w '%{http_code} %{content_type}\n' "$url/v1/process?steps=grayscale,resize=400x400"
    h curl -sS --fail-with-body -c "$out/cookies" -b "$out/cookies" -F "a=@$out/sample.jpg" \
        -F "b=@$out/folder/photo1.jpg" -o "$out/web-tasks.json" "$url/v1/tasks?steps=blur=2,grayscale"
    cat "$out/web-tasks.json"
    for id in $(python3 -c 'import json,sys; print(*[t["id"] for t in json.load(open(sys.argv[1]))["tasks"]])' \
                "$out/web-tasks.json"); do
        h curl -sS --fail-with-body -b "$out/cookies" -o /dev/null -w '%{http_code}\n' \
            "$url/v1/tasks/$id/wait?timeout=30"
        h curl -sS --fail-with-body -b "$out/cookies" -o "$out/web-task-$id.jpg" \
            -w '%{http_code} %{content_type}\n' "$url/v1/tasks/$id/result"
    done
    h curl -sS --fail-with-body -b "$out/cookies" "$url/v1/tasks?state=done"
    ;;
*)
    echo "demo: the gateway did not start (port $web_port in use? IMGPROC_WEB_PORT=N):"
    cat "$out/web.log"
    fail=1
    ;;
esac
if [ "$fail" -eq 0 ]; then
    echo "demo: done. Results are in $out (the server's log: $out/server.log)"
else
    echo "demo: some steps FAILED; see above and $out/server.log"
fi
if [ -t 0 ] && [ "$fail" -eq 0 ]; then
    echo "demo: the page is at $url/ -- open it in a browser and drop images on it."
    echo "demo: press Enter to stop the server and the gateway."
    read -r _
fi
kill -TERM "$srv_pid" "$web_pid" 2>/dev/null; wait "$srv_pid" "$web_pid" 2>/dev/null
trap - EXIT
exit "$fail"

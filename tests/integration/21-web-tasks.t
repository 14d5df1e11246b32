#!/bin/bash
# The gateway's tasks and WebSocket, in front of a real imgprocd: tasks made
# from real photos over REST (a body, a multipart form of many), waited for,
# fetched byte for byte as the command line's, cancelled, deleted, listed;
# each session sees only its own, and keeps them across a restart of the
# gateway; the limits on files and bodies; the /v1/events WebSocket with
# Python's websockets (tests/web/ws_check.py).
PORT=47122
PROG=1061000022
. "$(dirname "$0")/../lib.sh"

CORPUS=${IMGPROC_CORPUS:-${XDG_CACHE_HOME:-$HOME/.cache}/imgproc/corpus}
[ -f "$CORPUS/MANIFEST.txt" ] || bail "the real-photo corpus is missing: run 'make corpus'"
command -v curl >/dev/null || bail "curl is missing (Debian: curl)"
/usr/bin/python3 -c 'import websockets' 2>/dev/null || bail "python3-websockets is missing"
cd "$TMP" || bail "no temporary folder"

ensure_rpcbind
start_server --workers 1
start_web --max-files 4 --max-websockets 2

LADY=$CORPUS/jpeg-photo-ladybird.jpg
ART=$CORPUS/png-rgba-art.png
ROSE=$CORPUS/webp-lossy-alpha-photo.webp
TIFF=$CORPUS/tiff-photo.tif
ALICE=$(printf 'a%.0s' $(seq 64))     # two sessions, as bearer tokens
BOB=$(printf 'b%.0s' $(seq 64))

# api WHO METHOD PATH [CURL-ARGS...]: the answer in a.json (or a.bin), "HTTP-STATUS" printed.
api() {
    local who=$1 method=$2 path=$3
    shift 3
    curl -s -o a.out -w '%{http_code}' -H "Authorization: Bearer $who" -X "$method" "$@" \
         "$URL$path"
    cp a.out a.json
}

# ---- create: one body, then a form of several; each a real imgprocd task
is "$(api "$ALICE" POST '/v1/tasks?steps=grayscale,resize=300x300' --data-binary @"$LADY")" 201 \
   "POST /v1/tasks, one photo as the body: 201"
is "$(j a.json 'len(d["tasks"]), d["tasks"][0]["ok"], d["tasks"][0]["file"]')" "(1, True, None)" \
   "... one task, ok"
ID1=$(j a.json 'd["tasks"][0]["id"]')
is "$(api "$ALICE" POST '/v1/tasks?steps=grayscale,resize=300x300' -F "a=@$ART" -F "b=@$ROSE" \
      -F "c=@$TIFF" -F "d=@/etc/hostname")" 201 "POST /v1/tasks, a form of four files: 201"
is "$(j a.json '[(t["file"], t["ok"], t.get("status")) for t in d["tasks"]]')" \
   "[('png-rgba-art.png', True, None), ('webp-lossy-alpha-photo.webp', True, None), ('tiff-photo.tif', True, None), ('hostname', False, 'unsupported-format')]" \
   "... a task for each photo, in order; the text file refused as unsupported-format"
IDS=$(j a.json '" ".join(str(t["id"]) for t in d["tasks"] if t["ok"])')
cli -T tcp task list --json >tl.json
is "$(j tl.json 'len(d)')" 0 "the tasks are not the command line's user's: imgprocd keeps them apart"

# ---- wait, status, result: what the command line gets for the same steps
for id in $ID1 $IDS; do
    is "$(api "$ALICE" GET "/v1/tasks/$id/wait?timeout=60")" 200 "task $id: the long poll answers"
    is "$(j a.json 'd["state"], d["progress"], d["steps"]')" "('done', 100, 'grayscale,resize=300x300:inside')" \
       "... done, 100%, its steps"
done
i=0
for f in "$LADY" "$ART" "$ROSE" "$TIFF"; do
    i=$((i + 1))
    id=$(echo $ID1 $IDS | cut -d' ' -f$i)
    code=$(curl -s -o r.out -D h.txt -w '%{http_code} %{content_type}' -H "Authorization: Bearer $ALICE" \
           "$URL/v1/tasks/$id/result")
    cli process --steps grayscale,resize=300x300 "$f" -o "cli.${f##*.}"
    like "$code" "200 image/*" "${f##*/}: the result, an image"
    is "$(md5sum <r.out)" "$(md5sum <"cli.${f##*.}")" "... byte for byte what imgproc process writes"
    is "$(tr -d '\r' <h.txt | sed -n 's/^X-Image-Width: //p')x$(tr -d '\r' <h.txt | sed -n 's/^X-Image-Height: //p')" \
       "$(hdr width r.out)x$(hdr height r.out)" "... X-Image-Width and -Height as libvips reads it"
done

# ---- sessions: each sees and controls only its own
is "$(api "$BOB" GET "/v1/tasks/$ID1")" 403 "another session's task: 403"
is "$(j a.json 'd["title"]')" denied "... denied, as imgprocd says"
is "$(api "$BOB" GET "/v1/tasks/$ID1/result")" 403 "... nor its result"
is "$(api "$BOB" DELETE "/v1/tasks/$ID1")" 403 "... nor may it delete it"
is "$(api "$BOB" GET /v1/tasks)" 200 "another session's list: 200"
is "$(j a.json 'd["tasks"]')" "[]" "... empty"
is "$(curl -s -o a.json -w '%{http_code}' "$URL/v1/tasks")" 200 "no session at all: 200"
is "$(j a.json 'd["tasks"]')" "[]" "... and nothing listed"
is "$(api "$ALICE" GET /v1/tasks)" 200 "the session's own list: 200"
is "$(j a.json '[t["id"] for t in d["tasks"]]')" "[$(echo $ID1 $IDS | sed 's/ /, /g')]" \
   "... its four tasks, oldest first"
is "$(api "$ALICE" GET '/v1/tasks?state=done,failed')" 200 "filtered by state: 200"
is "$(j a.json 'len(d["tasks"])')" 4 "... the four done"
is "$(api "$ALICE" GET '/v1/tasks?state=running')" 200 "... and none running"
is "$(j a.json 'len(d["tasks"])')" 0 "... none"

# A browser's session is a cookie: set by the page, kept by the jar, HttpOnly and SameSite.
curl -s -c jar -o page.html -D page.h "$URL/"
like "$(tr -d '\r' <page.h | grep -i '^set-cookie')" "Set-Cookie: imgproc_session=*; HttpOnly; SameSite=Strict" \
     "GET / gives a session cookie, HttpOnly and SameSite=Strict"
like "$(tr -d '\r' <page.h | grep -i '^content-security-policy')" "*default-src 'self'*" \
     "... and a Content-Security-Policy"
code=$(curl -s -b jar -c jar -o a.json -w '%{http_code}' --data-binary @"$LADY" "$URL/v1/tasks?steps=sharpen")
is "$code" 201 "a task in the cookie's session"
CID=$(j a.json 'd["tasks"][0]["id"]')

# ---- a restart of the gateway loses nothing: the tasks live in imgprocd
stop_web
is "$WEB_STATUS" 0 "the gateway stops cleanly"
start_web --max-files 4 --max-websockets 2
is "$(api "$ALICE" GET /v1/tasks)" 200 "after a restart, the session's list"
is "$(j a.json 'len(d["tasks"])')" 4 "... still its four tasks"
is "$(curl -s -b jar -o a.json -w '%{http_code}' "$URL/v1/tasks/$CID/wait?timeout=60")" 200 \
   "the cookie's task after a restart"
is "$(j a.json 'd["state"]')" done "... done"

# ---- cancel and delete
is "$(api "$ALICE" POST "/v1/tasks/$ID1/cancel")" 409 "cancel a done task: 409"
is "$(j a.json 'd["title"]')" wrong-state "... wrong-state"
is "$(api "$ALICE" DELETE "/v1/tasks/$ID1")" 200 "delete: 200"
is "$(j a.json 'd["deleted_in_state"]')" done "... it was done"
is "$(api "$ALICE" GET "/v1/tasks/$ID1")" 404 "a deleted task: 404"
# A task that has not run yet: the one worker is busy with a slow blur first.
api "$ALICE" POST '/v1/tasks?steps=blur=40' --data-binary @"$CORPUS/jpeg-9mp-art.jpg" >/dev/null
SLOW=$(j a.json 'd["tasks"][0]["id"]')
api "$ALICE" POST '/v1/tasks?steps=flip' --data-binary @"$LADY" >/dev/null
QUEUED=$(j a.json 'd["tasks"][0]["id"]')
is "$(api "$ALICE" POST "/v1/tasks/$QUEUED/cancel")" 200 "cancel a task before it has run: 200"
is "$(j a.json 'd["state"]')" cancelled "... cancelled"
is "$(api "$ALICE" GET "/v1/tasks/$QUEUED/result")" 409 "... and it has no result: 409"
api "$ALICE" POST "/v1/tasks/$SLOW/cancel" >/dev/null
is "$(api "$ALICE" GET "/v1/tasks/$SLOW/wait?seen=queued&timeout=5")" 200 "wait?seen=: answers"
like "$(j a.json 'd["state"]')" "[rc]*" "... once it has left queued"

# ---- limits and bad requests
is "$(api "$ALICE" POST '/v1/tasks?steps=flip' -F a=@"$LADY" -F b=@"$LADY" -F c=@"$LADY" \
      -F d=@"$LADY" -F e=@"$LADY")" 413 "five files over --max-files 4: 413"
is "$(j a.json 'd["title"]')" too-large "... too-large"
is "$(api "$ALICE" GET /v1/tasks)" 200 "the list after it"
is "$(j a.json 'len(d["tasks"])')" 5 "... holds none of the four files read before the fifth: undone"
is "$(api "$ALICE" POST '/v1/tasks?steps=flip' -F note=hello)" 400 "a form with no file: 400"
is "$(api "$ALICE" POST '/v1/tasks?steps=nope' --data-binary @"$LADY")" 400 "steps that are not a pipeline: 400"
like "$(j a.json 'd["detail"]')" "steps: *nope*" "... saying which"
is "$(api "$ALICE" GET /v1/tasks/12x)" 404 "a task id that is not a number: 404"
is "$(api "$ALICE" GET "/v1/tasks/$ID1/../../../etc/passwd")" 404 "a path that climbs: 404"
is "$(api "$ALICE" GET "/v1/tasks/$ID1/wait?timeout=0")" 400 "a wait of 0 s: 400"
is "$(api "$ALICE" GET '/v1/tasks?state=sleeping')" 400 "a state that is not one: 400"
is "$(api 1234 GET /v1/tasks)" 401 "a bearer token that is not a session's: 401, not a new session"
is "$(api "$(echo "$ALICE" | tr a-f A-F)" GET /v1/tasks)" 200 "a token in capitals: the same session"
is "$(j a.json 'len(d["tasks"])')" 5 "... its five tasks"
is "$(curl -s -o a.json -w '%{http_code}' --data-binary @"$LADY" "$URL/v1/process?steps=flip&strip=no")" 400 \
   "strip=no: 400, not taken as yes"
vips black big.tif 4500 2600 --bands 3 >/dev/null       # 35 MB: over half of --max-body
is "$(curl -s -o big.out -w '%{http_code}' --data-binary @big.tif "$URL/v1/process?steps=flip&format=png")" 200 \
   "a 35 MB body (more than half of --max-body): taken"
python3 -c "print('<?xml version=\"1.0\"?><methodCall><methodName>convert_to_grayscale</methodName><params><param><value>' + '<array><data><value>' * 3000 + '1' + '</value></data></array>' * 3000 + '</value></param></params></methodCall>')" >deep.xml
is "$(curl -s -o a.json -w '%{http_code}' --data-binary @deep.xml "$URL/RPC2")" 400 \
   "an XML-RPC call nested 9000 deep: 400"
is "$(curl -s -o a.json -w '%{http_code}' "$URL/v1/info")" 200 "... and the gateway still answers"
is "$(curl -s -o a.json -w '%{http_code}' --data-binary @"$LADY" "$URL/v1/process?steps=crop=100x100+10+10")" 200 \
   "an unencoded + in crop=WxH+L+T (a space in a query): taken"
is "$(curl -s -o /dev/null -w '%{http_code}' "$URL/../../etc/passwd" --path-as-is)" 404 \
   "a file outside the page's own: 404"

# ---- the WebSocket
: >expect.txt
for f in "$LADY" "$ART" "$ROSE" "$TIFF" "$CORPUS/jpeg-cmyk.jpg"; do
    cli process --steps grayscale "$f" -o "g.${f##*.}"
    echo "$f $(md5sum <"g.${f##*.}" | cut -d' ' -f1)" >>expect.txt
done
/usr/bin/python3 "$TOP/tests/web/ws_check.py" "$URL" expect.txt /etc/hostname >ws.out 2>&1
is "$?" 0 "the WebSocket check runs to its end"
while read -r verdict rest; do
    case "$verdict" in
    ok) ok 0 "websocket: $rest" ;;
    not) ok 1 "websocket: ${rest#ok }" ;;
    esac
done <ws.out
like "$(tail -1 ws.out)" "summary * *" "... and says how many checks it made"
[ "$(tail -1 ws.out)" = "summary $(grep -c '^ok' ws.out) $(grep -c '^\(ok\|not ok\)' ws.out)" ] ||
    sed 's/^/# /' ws.out

# ---- STATS (imgproc stats) and /metrics
stat() {    # stat FILE PROC FIELD: a procedure's counter in `imgproc stats --json`
    j "$1" "[p[\"$3\"] for p in d[\"procedures\"] if p[\"name\"] == \"$2\"][0]"
}
cli stats --json >s0.json
cli process --steps flip "$LADY" -o st1.jpg
cli process --steps flip "$ART" -o st2.png
cli process --steps flip /etc/hostname -o st3.png 2>/dev/null
cli stats --json >s1.json
is "$(( $(stat s1.json PROCESS calls) - $(stat s0.json PROCESS calls) ))" 3 \
   "imgproc stats: three more PROCESS calls"
is "$(( $(stat s1.json PROCESS errors) - $(stat s0.json PROCESS errors) ))" 1 "... one of them an error"
is "$(( $(stat s1.json PROCESS bytes_in) - $(stat s0.json PROCESS bytes_in) ))" \
   "$(( $(wc -c <"$LADY") + $(wc -c <"$ART") + $(wc -c </etc/hostname) ))" \
   "... the image bytes they carried in"
is "$(( $(stat s1.json PROCESS bytes_out) - $(stat s0.json PROCESS bytes_out) ))" \
   "$(( $(wc -c <st1.jpg) + $(wc -c <st2.png) ))" "... and out"
is "$(j s1.json 'd["tasks"]["cancelled"] >= 1 and d["tasks"]["done"] >= 5, d["workers"]')" "(True, 1)" \
   "... the tasks by state, the workers"
cli stats >stats.txt
like "$(sed -n 3p stats.txt)" "procedure *calls *errors *bytes in *bytes out *mean ms" "imgproc stats: a table"
like "$(grep '^PROCESS ' stats.txt)" "PROCESS *$(stat s1.json PROCESS calls) *$(stat s1.json PROCESS errors) *" \
     "... PROCESS's row"
cli -T udp stats --json >su.json
is "$(j su.json 'len(d["procedures"])')" "$(j s1.json 'len(d["procedures"])')" "imgproc stats over UDP too"

curl -s -D m.h -o metrics.txt "$URL/metrics"
like "$(tr -d '\r' <m.h | grep -i '^content-type')" "Content-Type: text/plain; version=0.0.4*" \
     "GET /metrics: Prometheus's text format"
is "$(grep -v -c -E '^(# (HELP|TYPE) [a-z_]+ .+|[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [0-9.e+-]+)$' metrics.txt)" 0 \
   "... every line a comment or a sample"
is "$(grep '^imgproc_up ' metrics.txt)" "imgproc_up 1" "... imgprocd up"
like "$(grep '^imgproc_web_requests_total{route="/v1/tasks",code="2xx"}' metrics.txt)" "* [1-9]*" \
     "... the gateway's requests by route"
like "$(grep '^imgproc_web_errors_total{route="/v1/tasks/{id}"}' metrics.txt)" "* [1-9]*" \
     "... its errors by route"
n=$(sed -n 's/^imgproc_web_request_duration_seconds_count{route="\/v1\/tasks"} //p' metrics.txt)
is "$(sed -n 's/^imgproc_web_request_duration_seconds_bucket{route="\/v1\/tasks",le="+Inf"} //p' metrics.txt)" \
   "$n" "... its latency, a histogram whose +Inf bucket counts every request"
cli stats --json >s2.json
is "$(sed -n 's/^imgproc_calls_total{procedure="TASK_CREATE"} //p' metrics.txt)" \
   "$(stat s2.json TASK_CREATE calls)" "... imgprocd's own counters, as STATS says them"
is "$(sed -n 's/^imgproc_tasks{state="done"} //p' metrics.txt)" "$(j s2.json 'd["tasks"]["done"]')" \
   "... the tasks by state"
stop_server
curl -s -o metrics.txt "$URL/metrics"
is "$(grep '^imgproc_up ' metrics.txt)" "imgproc_up 0" "imgprocd gone: imgproc_up 0, and the gateway's own still served"

stop_web
is "$WEB_STATUS" 0 "the gateway stops cleanly with sockets used"
done_testing

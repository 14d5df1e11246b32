#!/bin/bash
# The web gateway (imgproc-web) in front of a real imgprocd: GET /v1/info, and
# POST /v1/process on real photographs, each result byte for byte what the
# command line gets for the same steps; its errors are problem+json with the
# service's status names, and the HTTP status that says what to do.
PORT=47121
PROG=1061000021
. "$(dirname "$0")/../lib.sh"

CORPUS=${IMGPROC_CORPUS:-${XDG_CACHE_HOME:-$HOME/.cache}/imgproc/corpus}
[ -f "$CORPUS/MANIFEST.txt" ] || bail "the real-photo corpus is missing: run 'make corpus'"
command -v curl >/dev/null || bail "curl is missing (Debian: curl)"
cd "$TMP" || bail "no temporary folder"

ensure_rpcbind
start_server
start_web

# ---- GET /v1/info: what the command line's info --json says
code=$(curl -s -o info.json -w '%{http_code} %{content_type}' "$URL/v1/info")
is "$code" "200 application/json" "GET /v1/info: 200, JSON"
cli info --json >cli-info.json
is "$(j info.json '[o["name"] for o in d["operations"]]')" \
   "$(j cli-info.json '[o["name"] for o in d["operations"]]')" "... the operations info lists"
is "$(j info.json 'd["state_dir"]')" "None" "... but not the server's state folder"

# ---- POST /v1/process on real photographs of every common kind
for name in jpeg-photo-ladybird.jpg png-rgba-art.png webp-lossy-alpha-photo.webp \
            tiff-photo.tif jpeg-cmyk.jpg png-16bit-photo.png; do
    img="$CORPUS/$name"
    for steps in "grayscale" "resize=300x300,blur=1.5" "rotate=90,gamma=2.2"; do
        code=$(curl -s -o web.out -w '%{http_code} %{content_type}' --data-binary @"$img" \
               "$URL/v1/process?steps=$steps")
        cli process --steps "$steps" "$img" -o "cli.${name##*.}"
        like "$code" "200 image/*" "$name $steps: 200 and an image"
        is "$(md5sum <web.out)" "$(md5sum <"cli.${name##*.}")" \
           "... byte for byte what imgproc process writes"
    done
    is "$(hdr width web.out)x$(hdr height web.out)" "$(hdr height "$img")x$(hdr width "$img")" \
       "$name rotate=90: the sides swapped, as libvips reads them"
done
code=$(curl -s -o web.out -w '%{http_code} %{content_type}' --data-binary @"$CORPUS/jpeg-photo-ladybird.jpg" \
       "$URL/v1/process?steps=grayscale&format=png")
is "$code $(hdr bands web.out)" "200 image/png 1" "format=png: a one-band PNG, said in Content-Type"

# ---- errors: problem+json, the service's status, an HTTP status to act on
perr() {    # perr DESCRIPTION EXPECTED-HTTP EXPECTED-TITLE CURL-ARGS...
    local desc=$1 http=$2 title=$3
    shift 3
    code=$(curl -s -o p.json -w '%{http_code} %{content_type}' "$@")
    is "$code" "$http application/problem+json" "$desc: $http, problem+json"
    is "$(j p.json 'd["title"], d["status"], d["type"].endswith(d["title"]), len(d["detail"]) > 0')" \
       "('$title', $http, True, True)" "... titled $title, with a detail"
}
perr "steps out of range" 400 invalid-argument --data-binary @"$CORPUS/jpeg-photo-ladybird.jpg" \
     "$URL/v1/process?steps=blur=0"
like "$(j p.json 'd["detail"]')" "*sigma must be > 0*" "... naming the range"
perr "no steps" 400 invalid-argument --data-binary @"$CORPUS/jpeg-photo-ladybird.jpg" "$URL/v1/process"
perr "a format nobody knows" 400 invalid-argument --data-binary @"$CORPUS/jpeg-photo-ladybird.jpg" \
     "$URL/v1/process?steps=flip&format=bmp"
printf 'not an image' >bad.jpg
perr "not an image" 415 unsupported-format --data-binary @bad.jpg "$URL/v1/process?steps=flip"
head -c 5000 "$CORPUS/jpeg-photo-ladybird.jpg" >cut.jpg
perr "a JPEG cut short" 422 corrupt-image --data-binary @cut.jpg "$URL/v1/process?steps=flip"
perr "extract_band beyond the bands" 400 invalid-argument --data-binary @"$CORPUS/jpeg-gray-photo.jpg" \
     "$URL/v1/process?steps=extract_band=2"
perr "an unknown path" 404 not-found "$URL/v2/info"
perr "GET on process" 405 method-not-allowed "$URL/v1/process"

# ---- XML-RPC at /RPC2: a lab's unmodified Python client (xmlrpc.client, MultiCall)
PHOTO="$CORPUS/jpeg-photo-ladybird.jpg"
mkdir lab
/usr/bin/python3 "$TOP/tests/web/xmlrpc_lab.py" "$URL/RPC2" "$PHOTO" lab >lab.json
is "$?" 0 "the lab's XML-RPC client runs to its end"
is "$(j lab.json 'all(m in d["methods"] for m in ["convert_to_grayscale", "resize_image", "rotate_image", "apply_blur", "system.multicall"])')" \
   "True" "system.listMethods names the four lab calls and system.multicall"
W=$(hdr width "$PHOTO"); H=$(hdr height "$PHOTO")
is "$(hdr vips-loader lab/grayscale.jpg) $(hdr width lab/grayscale.jpg)x$(hdr height lab/grayscale.jpg) $(hdr bands lab/grayscale.jpg)" \
   "jpegload ${W}x$H 1" "convert_to_grayscale: a one-band JPEG of the photo's size"
cli process --steps grayscale -f jpeg "$PHOTO" -o cli-gray.jpg
is "$(md5sum <lab/grayscale.jpg)" "$(md5sum <cli-gray.jpg)" "... byte for byte imgproc process's"
python3 -c "import sys; w,h=$W,$H; s=min(300/w,200/h); print('%dx%d' % (round(w*s), round(h*s)))" >want
is "$(hdr width lab/resize.jpg)x$(hdr height lab/resize.jpg)" "$(cat want)" \
   "resize_image(300, 200): fits inside the box, keeping the photo's shape"
is "$(hdr width lab/rotate.jpg)x$(hdr height lab/rotate.jpg)" "${H}x$W" "rotate_image(90): the sides swap"
cli process --steps blur=5 -f jpeg "$PHOTO" -o cli-blur.jpg
is "$(md5sum <lab/blur.jpg)" "$(md5sum <cli-blur.jpg)" "apply_blur: imgproc's blur=5, a JPEG"
is "$(j lab.json 'd["multicall"]')" 2 "MultiCall: two calls, two results"
cli process --steps rotate=45.5 -f jpeg "$PHOTO" -o cli-rot.jpg
is "$(md5sum <lab/multi-rotate.jpg)" "$(md5sum <cli-rot.jpg)" "... the second a rotation by 45.5"
is "$(j lab.json 'd["fault_not_image"][0], d["fault_not_image"][1].split(":")[0]')" \
   "(2, 'unsupported-format')" "not an image: a fault with the service's status"
is "$(j lab.json 'd["fault_size"][0]')" 1 "a box of width 0: invalid-argument"
is "$(j lab.json 'd["fault_no_method"] is not None')" True "an unknown method: a fault"
is "$(j lab.json 'd["task_id_is_string"], d["task_states"]')" \
   "(True, ['Created', 'Created', 'Completed'])" "create_task: an id string; Created, then Completed"
is "$(j lab.json 'd["task_jump"], d["task_start"], d["task_complete"]')" "(False, True, True)" \
   "change_task_status: Created to Completed is refused; In Progress, then Completed, work"
cli process --steps blur=5,grayscale -f jpeg "$PHOTO" -o cli-task.jpg
is "$(hdr bands lab/task.jpg) $(md5sum <lab/task.jpg)" "1 $(md5sum <cli-task.jpg)" \
   "get_processed_image: blur then grayscale, a JPEG, as imgproc process makes it"
is "$(j lab.json 'd["task_unknown"], d["task_not_an_id"]')" "('Invalid Task ID', 'Invalid Task ID')" \
   "get_task_status of an unknown id or of no id: Invalid Task ID"
is "$(j lab.json 'd["task_bad_state"][0]')" 1 "change_task_status to a state of no lab: invalid-argument"
is "$(cli --json task list | python3 -c 'import json,sys; print(sum(1 for t in json.load(sys.stdin) if t["steps"].startswith("blur=5") and t["state"] == "done"))')" \
   1 "... the lab's task is a real imgprocd task, done"

# ---- the OpenAPI document, checked against the running gateway
/usr/bin/python3 "$TOP/tests/web/openapi_check.py" "$URL" "$PHOTO" >openapi.out 2>&1
is "$?" 0 "the OpenAPI check runs to its end"
while read -r verdict rest; do
    case "$verdict" in
    ok) ok 0 "openapi: $rest" ;;
    not) ok 1 "openapi: ${rest#ok }" ;;
    esac
done <openapi.out
like "$(tail -1 openapi.out)" "summary * *" "... and says how many checks it made"

stop_web
is "$WEB_STATUS" 0 "the gateway stops cleanly on SIGTERM"

start_web --max-body 100K
perr "a body over --max-body" 413 too-large --data-binary @"$CORPUS/jpeg-photo-ladybird.jpg" \
     "$URL/v1/process?steps=flip"
stop_server
perr "imgprocd gone" 502 gateway "$URL/v1/info"
like "$(j p.json 'd["detail"]')" "imgprocd: *" "... saying imgprocd could not be asked"
stop_web
is "$WEB_STATUS" 0 "the gateway stops cleanly"

done_testing

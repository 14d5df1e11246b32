#!/bin/bash
# tests/interop/run.sh - interoperability: a Java client generated from the
# INSTALLED imgproc.x by remotetea's jrpcgen (Debian package remotetea) talks
# to a real imgprocd: NULL, SERVER_INFO, a PROCESS pipeline on a real photo and
# a task's create/upload/start/wait/result/delete, every value checked against
# the C client and libvips' own tools.  `make check-interop` runs it; by hand,
# from the top of the tree: bash tests/interop/run.sh (BUILD=build by default).
#
# The Java side (tests/interop/ImgprocInterop.java) uses nothing but the
# generated classes and remotetea's runtime (oncrpc.jar).  It finds the server
# through rpcbind on 127.0.0.1 (portmapper version 2, GETPORT), as any ONC RPC
# client would, and the test checks that the port rpcbind gave is the server's.
PORT=47130
PROG=1061000030         # private program number (lib.sh may move both to a free slot)
. "$(dirname "$0")/../lib.sh"
START=$SECONDS

JRPCGEN_JAR=${JRPCGEN_JAR:-/usr/share/java/jrpcgen.jar}
ONCRPC_JAR=${ONCRPC_JAR:-/usr/share/java/oncrpc.jar}
CORPUS=${IMGPROC_CORPUS:-${XDG_CACHE_HOME:-$HOME/.cache}/imgproc/corpus}
PHOTO=$CORPUS/jpeg-photo-ladybird.jpg

for t in java javac; do
    command -v "$t" >/dev/null || bail "no $t: run 'sh .ci/deps.sh interop' (default-jdk-headless)"
done
for f in "$JRPCGEN_JAR" "$ONCRPC_JAR"; do
    [ -f "$f" ] || bail "no $f: run 'sh .ci/deps.sh interop' (remotetea)"
done
[ -f "$PHOTO" ] || bail "no $PHOTO: run 'make corpus' once, with network"
for b in "$IMGPROCD" "$IMGPROC"; do
    [ -x "$b" ] || bail "$b is not built: run 'make all'"
done

# ---- the installed interface: make install into a private root
make -C "$TOP" --no-print-directory install DESTDIR="$TMP/root" PREFIX=/usr BUILD="$BUILD" \
    >"$TMP/install.log" 2>&1
rc=$?
[ "$rc" -eq 0 ] || sed 's/^/# /' "$TMP/install.log"
ok "$rc" "make install DESTDIR=... PREFIX=/usr"
XDIR=$TMP/root/usr/share/imgproc
[ -f "$XDIR/imgproc.x" ] || bail "make install put no imgproc.x in /usr/share/imgproc"
cmp -s "$XDIR/imgproc.x" "$TOP/imgproc.x"
ok $? "the installed imgproc.x is the tree's"

# ---- jrpcgen, run from the folder of the .x, as a user would; client and
# server stubs both, so that all it generates is shown to compile as it is.
mkdir -p "$TMP/gen" "$TMP/classes" "$TMP/out"
(cd "$XDIR" && java -jar "$JRPCGEN_JAR" -nobackup -p imgproc.rpc -d "$TMP/gen" imgproc.x) \
    >"$TMP/jrpcgen.log" 2>&1
rc=$?
sed 's/^/# jrpcgen: /' "$TMP/jrpcgen.log"
ok "$rc" "jrpcgen accepts the installed imgproc.x"
is "$(ls "$XDIR")" "imgproc.x" "jrpcgen wrote nothing beside the .x (-d elsewhere)"
missing=
for c in imgproc imgprocClient imgprocServerStub ip_step ip_image ip_task_id ip_image_res; do
    [ -f "$TMP/gen/$c.java" ] || missing="$missing $c"
done
is "$missing" "" "jrpcgen generated the constants, both stubs, the unions and the typedefs"

javac -Xlint:all -d "$TMP/classes" -cp "$ONCRPC_JAR" "$TMP"/gen/*.java >"$TMP/javac-gen.log" 2>&1
rc=$?
sed 's/^/# javac: /' "$TMP/javac-gen.log"
ok "$rc" "the generated Java compiles unmodified ($(find "$TMP/gen" -name '*.java' | wc -l) files)"
javac -Xlint:all -d "$TMP/classes" -cp "$ONCRPC_JAR:$TMP/classes" "$TOP/tests/interop/ImgprocInterop.java" \
    >"$TMP/javac.log" 2>&1
rc=$?
sed 's/^/# javac: /' "$TMP/javac.log"
ok "$rc" "the test client compiles against the generated classes and oncrpc.jar alone"
[ "$rc" -eq 0 ] || bail "nothing to run"

# ---- a real server.  Flags away from the defaults, so that the values the
# Java side reads are the server's and not constants: a max_upload_bytes over
# 2^32 (an unsigned hyper that needs its high word) and a max_request_seconds
# above IP_MAX_WAIT, from which the client sets its timeout.
ensure_rpcbind
start_server --max-upload-bytes 5000000000 --max-request-seconds 75

java -cp "$ONCRPC_JAR:$TMP/classes" ImgprocInterop "$PROG" "$PHOTO" "$TMP/out" \
    >"$TMP/java.out" 2>"$TMP/java.err"
rc=$?
[ "$rc" -eq 0 ] || { sed 's/^/# java: /' "$TMP/java.out" "$TMP/java.err" | tail -40; }
ok "$rc" "the Java client made every call (exit 0)"
declare -A R
while IFS='=' read -r k v; do
    case "$k" in ''|'#'*) continue ;; esac
    R[$k]=$v
done <"$TMP/java.out"
is "${R[finished]}" "yes" "the Java client ran to its end"

# Discovery and NULL
is "${R[port]}" "$PORT" "rpcbind gave the Java client the server's port for program $PROG"
is "${R[null]}" "ok" "NULL over TCP"
is "${R[null_udp]}" "ok" "NULL over UDP"

# SERVER_INFO, against the C client's reading of it
cli info --json >"$TMP/info.json" 2>"$TMP/info.err" || bail "imgproc info failed: $(cat "$TMP/info.err")"
is "${R[info_status]}" "0" "SERVER_INFO: IP_OK"
is "${R[server_version]}" "$(j "$TMP/info.json" 'd["server_version"]')" "SERVER_INFO: server_version as the C client reads it"
is "${R[vips_version]}" "$(j "$TMP/info.json" 'd["vips_version"]')" "SERVER_INFO: vips_version"
is "${R[ops]}" "$(j "$TMP/info.json" '",".join("%s:%d" % (o["name"], o["op"]) for o in d["operations"])')" \
    "SERVER_INFO: the operations, names and numbers (nested variable arrays)"
is "${R[output_formats]}" "$(j "$TMP/info.json" '",".join(d["output_formats"])')" "SERVER_INFO: output formats (array of typedef'd strings)"
is "${R[max_request_bytes]}" "$(j "$TMP/info.json" 'd["limits"]["max_request_bytes"]')" "SERVER_INFO: max_request_bytes (unsigned hyper)"
is "${R[max_pixels]}" "$(j "$TMP/info.json" 'd["limits"]["max_pixels"]')" "SERVER_INFO: max_pixels (unsigned hyper)"
is "${R[max_upload_bytes]}" "5000000000" "SERVER_INFO: max_upload_bytes over 2^32 (unsigned hyper, high word)"
is "${R[max_steps]}" "16" "SERVER_INFO: max_steps"
is "${R[max_request_seconds]}" "75" "SERVER_INFO: guard.max_request_seconds (a struct appended in 0.2)"
is "${R[state_dir]}" "$(j "$TMP/info.json" 'd["state_dir"]')" "SERVER_INFO: state_dir (appended last; told to a loopback caller)"

# The timeout: remotetea's default, and the one the client sets from SERVER_INFO
is "${R[default_timeout_ms]}" "30000" "remotetea's default reply timeout is 30 s, below TASK_WAIT's 60 s"
is "${R[timeout_ms]}" "85000" "the client sets max(IP_MAX_WAIT, max_request_seconds) + 10 s = 85 s"

# PROCESS: grayscale, then into 400x400, on a 2560x1600 photo
is "${R[process_status]}" "0" "PROCESS grayscale,resize=400x400: IP_OK"
W=$(hdr width "$PHOTO"); H=$(hdr height "$PHOTO")
EXP=$(awk -v w="$W" -v h="$H" 'BEGIN { s = 400 / w; if (400 / h < s) s = 400 / h;
    printf "%dx%d", int(w * s + 0.5), int(h * s + 0.5) }')
is "${R[process_width]}x${R[process_height]}x${R[process_bands]}" "${EXP}x1" "PROCESS: the result's size and bands, as the reply says"
f=$TMP/out/process.jpg
is "$(hdr width "$f")x$(hdr height "$f")x$(hdr bands "$f")" "${EXP}x1" \
    "PROCESS: what vipsheader reads from the bytes the Java client got"
like "$(hdr interpretation "$f")" "*B_W*" "PROCESS: ... a grayscale (b-w) image"
is "${R[process_format]}" "1" "PROCESS: format IP_FMT_JPEG (auto keeps the input's)"
is "${R[process_bytes]}" "$(stat -c %s "$f")" "PROCESS: the opaque<> image arrived whole"
cli process --steps grayscale,resize=400x400 "$PHOTO" -o "$TMP/out/cli.jpg" 2>"$TMP/cli.err"
ok $? "the C client makes the same PROCESS call"
cmp -s "$f" "$TMP/out/cli.jpg"
ok $? "PROCESS: the Java client's result is byte for byte the C client's"
# And what plain libvips on the host makes of it: BT.601 luma, then the same scale.
printf '3 1\n0.299 0.587 0.114\n' >"$TMP/luma.mat"
vips recomb "$PHOTO" "$TMP/luma.v" "$TMP/luma.mat" &&
vips resize "$TMP/luma.v" "$TMP/ref.v" "$(awk -v w="$W" -v e="${EXP%x*}" 'BEGIN { print e / w }')" &&
vips subtract "$TMP/ref.v" "$f" "$TMP/diff.v" && vips abs "$TMP/diff.v" "$TMP/adiff.v" ||
    bail "vips on the host failed"
mad=$(vips avg "$TMP/adiff.v")
ok "$(awk -v m="$mad" 'BEGIN { exit !(m < 3) }'; echo $?)" \
    "PROCESS: the pixels are host libvips' luma + resize (mean |difference| $mad < 3 levels)"

# Refusals: the union's default arm (status and message)
is "${R[bad_sigma_status]}" "1" "PROCESS blur=0: IP_EINVAL"
like "${R[bad_sigma_message]}" "*sigma*" "PROCESS blur=0: the message says why"
is "${R[unknown_op_status]}" "1" "PROCESS with op 99 (ip_step's default arm): IP_EINVAL, not a decode error"
like "${R[unknown_op_message]}" "*unknown*" "PROCESS with op 99: the message says why"

# The task
SIZE=$(stat -c %s "$PHOTO")
is "${R[create_status]}" "0" "TASK_CREATE (upload source, held): IP_OK"
is "${R[create_state]}" "0" "TASK_CREATE: state CREATED"
is "${R[upload_chunks]}" "$(( (SIZE + 131071) / 131072 ))" "TASK_UPLOAD: sent in 128 KiB chunks"
is "${R[upload_received]}/${R[upload_size]}" "$SIZE/$SIZE" "TASK_UPLOAD: received and size (unsigned hypers)"
is "${R[upload_state]}" "0" "TASK_UPLOAD: a held task stays CREATED once complete"
is "${R[upload_sha256]}" "$(sha256sum "$PHOTO" | cut -d' ' -f1)" "TASK_UPLOAD: the server's SHA-256 is sha256sum's"
is "${R[start_status]}:${R[start_state]}" "0:1" "TASK_START: IP_OK, QUEUED"
is "${R[task_state]}" "3" "TASK_WAIT: the task is DONE"
is "${R[task_error]}" "" "TASK_WAIT: no error"
is "${R[task_width]}x${R[task_height]}x${R[task_bands]}" "${EXP}x1" "TASK_WAIT: the result's size and bands"
# Over TCP, AUTH_SYS proves nothing: the claim is an anonymous token, its digest the owner.
is "${R[task_owner]}" "anon-$(printf '%s' 4321@java-interop | sha256sum | cut -c1-16)" \
    "the task belongs to the Java client's AUTH_SYS claim, made an anonymous token"
is "${R[task_steps]}" "grayscale,resize=400x400:inside" "the server's reading of the steps"
f=$TMP/out/task.jpg
is "${R[result_total]}" "${R[task_result_size]}" "TASK_RESULT: total is the status's result_size"
is "$(stat -c %s "$f")" "${R[result_total]}" "TASK_RESULT: every byte fetched"
is "${R[result_chunks]}" "$(( (${R[result_total]:-0} + 4095) / 4096 ))" "TASK_RESULT: in 4 KiB chunks"
is "$(hdr width "$f")x$(hdr height "$f")x$(hdr bands "$f")" "${EXP}x1" "TASK_RESULT: what vipsheader reads from the fetched bytes"
is "${R[result_width]}x${R[result_height]}x${R[result_bands]}:${R[result_format]}" "${EXP}x1:1" "TASK_RESULT: the chunk's figures"
cmp -s "$f" "$TMP/out/process.jpg"
ok $? "the task's result is byte for byte PROCESS's"
is "${R[delete_status]}:${R[delete_state]}" "0:3" "TASK_DELETE: IP_OK, it was DONE"
is "${R[deleted_status]}" "5" "TASK_STATUS after the delete: IP_ENOTFOUND"

# Batched calls: remotetea's batchCall, then TASK_COLLECT
is "${R[collect_status]}" "0" "TASK_COLLECT after two batched TASK_SUBMITs: IP_OK"
is "${R[collect_items]}" "java-batch-1:0,java-batch-2:0" "TASK_COLLECT: both outcomes, in order, by token"
is "${R[collect_skipped]}" "0" "TASK_COLLECT: none skipped"

# The timeout, at a small scale: TASK_WAIT of 1 s on a held task
is "${R[short_timeout]}" "cut" "a 0.3 s client timeout cuts a 1 s TASK_WAIT (as 30 s would cut 60 s)"
is "${R[long_timeout]}" "answered" "the raised timeout lets the same TASK_WAIT answer"
is "${R[long_timeout_state]}" "0" "... with the task still CREATED: the server's wait ran to its end"
echo "# the raised timeout's answer came after ${R[long_timeout_ms]} ms (not asserted: no timing in tests)"

# The server saw them as calls like any other, and is still well.
cli ping >/dev/null 2>&1
ok $? "the server still answers the C client"
stop_server
is "$STOP_STATUS" "0" "imgprocd exits cleanly"
echo "# interop run: $((SECONDS - START)) s"
done_testing

#!/bin/bash
# Hostile and wrong input: each gets its own status and message; the server keeps serving.
PORT=47103
PROG=1061000003
. "$(dirname "$0")/../lib.sh"

ensure_rpcbind
start_server --max-steps 4 --max-request-bytes 2M --max-pixels 4M
make_photo "$TMP/photo.png" 320 240
vips copy "$TMP/photo.png" "$TMP/photo.jpg"

expect_status() {   # expect_status STATUS DESCRIPTION -- imgproc args...
    local st=$1 desc=$2
    shift 3
    cli "$@" -o "$TMP/out.png" 2>"$TMP/err"
    local rc=$?
    like "$rc $(cat "$TMP/err")" "1 imgproc: cannot *: $st: *" "$desc"
}

: >"$TMP/empty.jpg"
expect_status invalid-argument "an empty file" -- grayscale "$TMP/empty.jpg"
echo "hello, I am text" >"$TMP/text.jpg"
expect_status unsupported-format "a text file" -- grayscale "$TMP/text.jpg"
head -c 2000 "$TMP/photo.jpg" >"$TMP/trunc.jpg"
expect_status corrupt-image "a truncated JPEG" -- blur --sigma 2 "$TMP/trunc.jpg"
head -c 40 "$TMP/photo.png" >"$TMP/trunc.png"
expect_status corrupt-image "a PNG cut inside its header" -- grayscale "$TMP/trunc.png"
# A PNG header claiming 100000 x 100000 pixels: a tiny decompression bomb.
python3 - "$TMP/bomb.png" <<'PY'
import struct, sys, zlib
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
idat = zlib.compress(b"\0" * 1000)
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
PY
expect_status too-large "a decompression bomb is refused from its header" -- grayscale "$TMP/bomb.png"
like "$(cli identify "$TMP/bomb.png")" "*: png 100000x100000*" "identify still reads the bomb's header"
head -c 3000000 /dev/urandom >"$TMP/huge.jpg"
expect_status too-large "more bytes than --max-request-bytes" -- grayscale "$TMP/huge.jpg"
expect_status too-large "an output over --max-pixels" -- resize --width 5000 --height 5000 --enlarge "$TMP/photo.jpg"
expect_status too-large "a pipeline over --max-steps" -- process --steps 'flip,flop,flip,flop,flip' "$TMP/photo.jpg"
expect_status invalid-argument "crop outside the image" -- process --steps 'crop=400x10+0+0' "$TMP/photo.jpg"

# What the real client refuses to send, sent anyway.
like "$("$HOSTILE" $PORT $PROG zero-width "$TMP/photo.jpg")" "invalid-argument: resize: width must be 1..100000, not 0*" "resize width 0"
like "$("$HOSTILE" $PORT $PROG nan-angle "$TMP/photo.jpg")" "invalid-argument: rotate: angle must be a finite*" "rotate by NaN"
like "$("$HOSTILE" $PORT $PROG unknown-step "$TMP/photo.jpg")" "invalid-argument: unknown operation" "an unknown step"
like "$("$HOSTILE" $PORT $PROG bad-quality "$TMP/photo.jpg")" "invalid-argument: quality must be*" "quality 101"
like "$("$HOSTILE" $PORT $PROG bad-format "$TMP/photo.jpg")" "unsupported-format: unknown output format 42" "an unknown output format"
like "$("$HOSTILE" $PORT $PROG task-huge-declared)" "too-large: the image is 4611686018427387904 bytes;*" "a task declaring 4 EiB"
like "$("$HOSTILE" $PORT $PROG task-upload-gap)" "invalid-argument: chunk at offset 50, but the server holds 0 bytes*" "an upload chunk past a gap"
like "$("$HOSTILE" $PORT $PROG task-upload-past-end)" "invalid-argument: the chunk ends at byte 20, past the declared size 10" "an upload chunk past the declared size"
like "$("$HOSTILE" $PORT $PROG task-result-count)" "invalid-argument: count 16777216; a chunk is at most 1048576 bytes" "a result chunk over 1 MiB"
is "$("$HOSTILE" $PORT $PROG task-list-after-huge)" "0 tasks, more 0" \
   "a list after id 2^63 is empty (not read as a negative number)"
like "$("$HOSTILE" $PORT $PROG task-list-states)" "invalid-argument: states 0xffffffff names no such state" "a list filter with unknown states"
# Batches (TASK_SUBMIT is never replied to; TASK_COLLECT reports).
is "$("$HOSTILE" $PORT $PROG batch-no-token "$TMP/photo.jpg")" \
   "1 outcomes (0 created, 0 existing, 1 refused: invalid-argument), 0 skipped" "a batched item without a token"
is "$("$HOSTILE" $PORT $PROG batch-garbage-item "$TMP/photo.jpg")" \
   "2 outcomes (2 created, 0 existing, 0 refused), 1 skipped" \
   "an undecodable batched item is skipped, silently; the items around it are created"
is "$("$HOSTILE" $PORT $PROG batch-overflow "$TMP/photo.jpg")" \
   "1000 outcomes (0 created, 0 existing, 1000 refused: invalid-argument), 1 skipped" \
   "item 1001 of a batch is skipped, not kept"
is "$("$HOSTILE" $PORT $PROG batch-abandon "$TMP/photo.jpg")" \
   "3 outcomes (3 created, 0 existing, 0 refused), 0 skipped" \
   "a batch never collected is not stored: sent again, its items are new"
like "$("$HOSTILE" $PORT $PROG create-nul-token "$TMP/photo.jpg")" \
     "invalid-argument: the token holds control characters" \
     "a token with a NUL byte is refused (C would cut it, and two tokens would name one task)"
like "$("$HOSTILE" $PORT $PROG batch-udp)" "invalid-argument: a batch lives on a TCP connection*" \
     "TASK_COLLECT over UDP is refused (and TASK_SUBMIT over UDP ignored)"
# UDP: one serving thread, retransmitting clients.  Image work is TCP only;
# a retransmitted call is answered from the reply cache, not run twice.
vips black "$TMP/tiny.v" 8 8 && vips pngsave "$TMP/tiny.v" "$TMP/tiny.png"
like "$("$HOSTILE" $PORT $PROG udp-image "$TMP/tiny.png")" \
     "invalid-argument: GRAYSCALE is served over TCP only*use TCP*" \
     "an image procedure over UDP is refused, naming TCP"
is "$("$HOSTILE" $PORT $PROG udp-retransmit "$TMP/tiny.png")" "ok ok" \
   "a TASK_START sent twice over UDP with one xid gets the same reply twice (run once)"
like "$("$HOSTILE" $PORT $PROG no-such-proc)" "rpc: RPC: Procedure unavailable" "an unknown procedure"
like "$("$HOSTILE" $PORT $PROG garbage)" "sent * bytes" "a garbage record and a lying 2 GB fragment"

# Wrong command lines: exit 2, nothing sent.
cli blur --sigma abc "$TMP/photo.jpg" -o "$TMP/x.jpg" 2>"$TMP/err"; is "$?" 2 "a non-numeric sigma is a usage error"
like "$(cat "$TMP/err")" "imgproc: invalid --sigma: blur: sigma 'abc' is not a number, as in blur=2.5" "with a one-line message"
cli process --steps 'wobble=3' "$TMP/photo.jpg" -o "$TMP/x.jpg" 2>"$TMP/err"; is "$?" 2 "an unknown step name is a usage error"
like "$(cat "$TMP/err")" "imgproc: invalid --steps: unknown step 'wobble' (step 1, 'wobble=3', at character 1 of 'wobble=3')" "naming the step and where it is"
cli process --steps 'blur=5;grayscale' "$TMP/photo.jpg" -o "$TMP/x.jpg" 2>"$TMP/err"
is "$?" 2 "steps joined by ';' are a usage error"
like "$(cat "$TMP/err")" "imgproc: invalid --steps: 'blur=5;grayscale' is not one step: steps are separated by commas, not ';' (at character 7 of 'blur=5;grayscale')" \
     "... that shows the step, where the ';' is, and says steps are separated by commas"
cli process --steps 'crop=10x10+5+z' "$TMP/photo.jpg" -o "$TMP/x.jpg" 2>"$TMP/err"
like "$(cat "$TMP/err")" "imgproc: invalid --steps: crop*(step 1, 'crop=10x10+5+z', at character 1 of 'crop=10x10+5+z')" \
     "a '+' inside crop's own syntax is not taken for a separator"
for bad in "process --steps gamma=0" "process --steps flip,blur=0" "blur --sigma 0" \
           "process --steps threshold=300" "blur --sigma -3"; do
    # shellcheck disable=SC2086
    cli $bad "$TMP/photo.jpg" -o "$TMP/x.jpg" 2>"$TMP/err"
    is "$?" 2 "$bad: out of range, refused by the client before sending (exit 2)"
done
like "$(cat "$TMP/err")" "imgproc: blur: sigma must be > 0 and <= 1000, not -3" "... with the range's own message"
cli process --steps flip,blur=0 "$TMP/photo.jpg" -o "$TMP/x.jpg" 2>"$TMP/err"
like "$(cat "$TMP/err")" "imgproc: invalid --steps: step 2 of 2: blur: sigma must be > 0*" \
     "... naming the step when there are several"
cli process --steps 'flip,,grayscale' "$TMP/photo.jpg" -o "$TMP/x.jpg" 2>"$TMP/err"
like "$(cat "$TMP/err")" "imgproc: invalid --steps: an empty step (at character 6 of 'flip,,grayscale'): two commas in a row, or one at an end" \
     "an empty step says where"
cli rotate --sigma 3 "$TMP/photo.jpg" -o "$TMP/x.jpg" 2>/dev/null; is "$?" 2 "an option of another command"
cli grayscale "$TMP/missing.jpg" -o "$TMP/x.jpg" 2>"$TMP/err"; is "$?" 1 "a missing file"
like "$(cat "$TMP/err")" "imgproc: cannot read '*missing.jpg': No such file or directory" "is named with the system's reason"

# After all that, the same server still does real work.
cli grayscale "$TMP/photo.jpg" -o "$TMP/after.png"; ok $? "the server still serves"
is "$(hdr bands "$TMP/after.png")" "1" "and its results are right"
like "$(cli ping)" "ok:*" "and answers ping"
kill -0 "$SERVER_PID"; ok $? "the server process never died"
stop_server
is "$STOP_STATUS" 0 "and stops cleanly"
done_testing

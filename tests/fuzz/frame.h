/* frame.h - the dispatch harness's input format, shared with the seed generator. */
#ifndef IMGPROC_FUZZ_FRAME_H
#define IMGPROC_FUZZ_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include "imgproc.h"

/*
 * An input is one mode byte, then:
 *
 *   mode & FRAME_RAW: bytes written to the server's socket as they are
 *     (record marks, call headers, credentials: all the fuzzer's);
 *   otherwise: calls separated by FRAME_SEP.  Each call is a procedure
 *     byte (modulo FRAME_PROCS), a credential byte (modulo FRAME_CREDS)
 *     and the argument's XDR bytes; frame_calls() wraps each in a valid
 *     call header for IMGPROC version 1 and one record, so that every
 *     input reaches the procedure's argument decoding.
 */
#define FRAME_RAW     0x80
#define FRAME_SEP     "\xff" "CALL"
#define FRAME_SEP_LEN 5

/* Every procedure number, and one past the last (no such procedure). */
#define FRAME_PROCS (NULL_BATCHED + 2)

/* Who calls: two AUTH_SYS identities (tasks are owned) and AUTH_NONE. */
enum { FRAME_CRED_SYS, FRAME_CRED_OTHER, FRAME_CRED_NONE, FRAME_CREDS };

/* A growing byte buffer. */
typedef struct frame_bytes {
    uint8_t *p;                 /* malloc'ed; the owner frees it */
    size_t len;                 /* bytes used */
    size_t cap;                 /* bytes allocated */
} frame_bytes;

/* Appends n bytes.  0, or -1 when out of memory. */
int frame_put(frame_bytes *b, const void *p, size_t n);

/* Appends the records of the calls in data (a framed input without its
 * mode byte) to b: what the harness sends.  0, or -1 when out of memory. */
int frame_calls(frame_bytes *b, const uint8_t *data, size_t len);

#endif

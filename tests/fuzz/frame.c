/* frame.c - turns the dispatch harness's framed calls into RPC records (frame.h). */
#include <stdlib.h>
#include <string.h>

#include <rpc/rpc.h>

#include "frame.h"

int
frame_put(frame_bytes *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = (b->len + n) * 2;
        uint8_t *q = realloc(b->p, cap);
        if (!q)
            return -1;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

static int
put32(frame_bytes *b, uint32_t v)
{
    uint8_t be[4] = { v >> 24, v >> 16, v >> 8, v };

    return frame_put(b, be, 4);
}

/* The credential the call claims (frame.h). */
static int
put_cred(frame_bytes *b, unsigned cred)
{
    static const char *const machine[] = { "fuzz", "other" };
    size_t n;

    if (cred == FRAME_CRED_NONE)
        return put32(b, AUTH_NONE) || put32(b, 0);
    /* AUTH_SYS: stamp, machine name (padded to 4 bytes), uid, gid, no groups. */
    n = strlen(machine[cred]);
    return put32(b, AUTH_SYS) || put32(b, (uint32_t)(4 + 4 + (n + 3) / 4 * 4 + 4 + 4 + 4)) ||
           put32(b, 0) || put32(b, (uint32_t)n) || frame_put(b, machine[cred], n) ||
           frame_put(b, "\0\0\0", (4 - n % 4) % 4) ||
           put32(b, 1000 + cred) || put32(b, 1000) || put32(b, 0);
}

/* One call as one record of one fragment: mark, call header, argument bytes. */
static int
put_call(frame_bytes *b, uint32_t xid, const uint8_t *call, size_t len)
{
    size_t mark = b->len;
    unsigned proc = len > 0 ? call[0] % FRAME_PROCS : IP_NULL;
    unsigned cred = len > 1 ? call[1] % FRAME_CREDS : FRAME_CRED_SYS;
    uint32_t n;

    if (put32(b, 0) ||          /* the record mark, filled in below */
        put32(b, xid) || put32(b, CALL) || put32(b, RPC_MSG_VERSION) ||
        put32(b, IMGPROC) || put32(b, IMGPROC_V1) || put32(b, proc) ||
        put_cred(b, cred) ||
        put32(b, AUTH_NONE) || put32(b, 0) ||   /* no verifier */
        (len > 2 && frame_put(b, call + 2, len - 2)))
        return -1;
    n = 0x80000000u | (uint32_t)(b->len - mark - 4);    /* the last fragment */
    b->p[mark] = (uint8_t)(n >> 24);
    b->p[mark + 1] = (uint8_t)(n >> 16);
    b->p[mark + 2] = (uint8_t)(n >> 8);
    b->p[mark + 3] = (uint8_t)n;
    return 0;
}

int
frame_calls(frame_bytes *b, const uint8_t *data, size_t len)
{
    uint32_t xid = 1;

    for (;;) {
        const uint8_t *sep = memmem(data, len, FRAME_SEP, FRAME_SEP_LEN);
        size_t n = sep ? (size_t)(sep - data) : len;

        if (put_call(b, xid++, data, n))
            return -1;
        if (!sep)
            return 0;
        data += n + FRAME_SEP_LEN;
        len -= n + FRAME_SEP_LEN;
    }
}

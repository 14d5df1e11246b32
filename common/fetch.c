/* fetch.c - a task's result, chunk by chunk (TASK_RESULT): for the client and the gateway. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int
proto_fetch_result_to(CLIENT *clnt, ip_task_id id, proto_fetch_sink sink, void *sctx,
                      ip_task_chunk *facts, void (*progress)(void *, uint64_t, uint64_t),
                      void *ctx, ip_status *st, char *why, size_t whylen)
{
    uint64_t total = 1, got = 0;
    int first = 1;

    while (got < total) {
        ip_task_result_args a = { id, got, (u_int)proto_chunk_size(clnt) };
        ip_task_result_res r;
        ip_task_chunk *c = &r.ip_task_result_res_u.chunk;
        memset(&r, 0, sizeof(r));
        if (task_result_1(&a, &r, clnt) != RPC_SUCCESS)
            return PROTO_FETCH_RPC;
        if (r.status != IP_OK) {
            *st = r.status;
            snprintf(why, whylen, "%s", r.ip_task_result_res_u.message ?
                     r.ip_task_result_res_u.message : "");
            xdr_free((xdrproc_t)xdr_ip_task_result_res, (char *)&r);
            return PROTO_FETCH_REFUSED;
        }
        if (first) {
            total = c->total;
            if (facts) {
                *facts = *c;
                memset(&facts->data, 0, sizeof(facts->data));
            }
        }
        if (c->total != total || c->data.data_len > total - got ||
            (c->data.data_len == 0 && got < total)) {
            snprintf(why, whylen, "the server sent an inconsistent chunk");
            xdr_free((xdrproc_t)xdr_ip_task_result_res, (char *)&r);
            return PROTO_FETCH_BAD;
        }
        /* Each piece goes on as it comes: nothing here holds more than one. */
        if (sink(sctx, c->data.data_val, c->data.data_len, got, total, why, whylen) < 0) {
            xdr_free((xdrproc_t)xdr_ip_task_result_res, (char *)&r);
            return PROTO_FETCH_SINK;
        }
        first = 0;
        got += c->data.data_len;
        xdr_free((xdrproc_t)xdr_ip_task_result_res, (char *)&r);
        if (progress)
            progress(ctx, got, total);
    }
    return PROTO_FETCH_OK;
}

/* proto_fetch_result's sink: the whole result in one buffer, sized by the first piece. */
typedef struct in_memory {
    char *buf;
    uint64_t len;               /* bytes in it */
} in_memory;

static int
to_memory(void *p, const void *data, size_t len, uint64_t offset, uint64_t total, char *why,
          size_t whylen)
{
    in_memory *m = p;

    if (!m->buf && !(m->buf = malloc(total ? total : 1))) {
        snprintf(why, whylen, "out of memory for %llu bytes", (unsigned long long)total);
        return -1;
    }
    memcpy(m->buf + offset, data, len);
    m->len = offset + len;
    return 0;
}

int
proto_fetch_result(CLIENT *clnt, ip_task_id id, char **data, uint64_t *len,
                   ip_task_chunk *facts, void (*progress)(void *, uint64_t, uint64_t),
                   void *ctx, ip_status *st, char *why, size_t whylen)
{
    in_memory m = { NULL, 0 };
    int rc = proto_fetch_result_to(clnt, id, to_memory, &m, facts, progress, ctx, st, why,
                                   whylen);

    if (rc != PROTO_FETCH_OK) {
        free(m.buf);
        return rc == PROTO_FETCH_SINK ? PROTO_FETCH_BAD : rc;   /* out of memory */
    }
    *data = m.buf;
    *len = m.len;
    return PROTO_FETCH_OK;
}

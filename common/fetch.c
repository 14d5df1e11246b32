/* fetch.c - a task's result, chunk by chunk (TASK_RESULT): for the client and the gateway. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int
proto_fetch_result(CLIENT *clnt, ip_task_id id, char **data, uint64_t *len,
                   ip_task_chunk *facts, void (*progress)(void *, uint64_t, uint64_t),
                   void *ctx, ip_status *st, char *why, size_t whylen)
{
    char *buf = NULL;
    uint64_t total = 1, got = 0;
    int rc = PROTO_FETCH_OK;

    while (got < total) {
        ip_task_result_args a = { id, got, IP_MAX_CHUNK };
        ip_task_result_res r;
        ip_task_chunk *c = &r.ip_task_result_res_u.chunk;
        memset(&r, 0, sizeof(r));
        if (task_result_1(&a, &r, clnt) != RPC_SUCCESS) {
            rc = PROTO_FETCH_RPC;
            goto fail;
        }
        if (r.status != IP_OK) {
            *st = r.status;
            snprintf(why, whylen, "%s", r.ip_task_result_res_u.message ?
                     r.ip_task_result_res_u.message : "");
            xdr_free((xdrproc_t)xdr_ip_task_result_res, (char *)&r);
            rc = PROTO_FETCH_REFUSED;
            goto fail;
        }
        if (!buf) {
            total = c->total;
            buf = malloc(total ? total : 1);
            if (!buf) {
                snprintf(why, whylen, "out of memory for %llu bytes", (unsigned long long)total);
                xdr_free((xdrproc_t)xdr_ip_task_result_res, (char *)&r);
                rc = PROTO_FETCH_BAD;
                goto fail;
            }
            if (facts) {
                *facts = *c;
                memset(&facts->data, 0, sizeof(facts->data));
            }
        }
        if (c->total != total || c->data.data_len > total - got ||
            (c->data.data_len == 0 && got < total)) {
            snprintf(why, whylen, "the server sent an inconsistent chunk");
            xdr_free((xdrproc_t)xdr_ip_task_result_res, (char *)&r);
            rc = PROTO_FETCH_BAD;
            goto fail;
        }
        memcpy(buf + got, c->data.data_val, c->data.data_len);
        got += c->data.data_len;
        xdr_free((xdrproc_t)xdr_ip_task_result_res, (char *)&r);
        if (progress)
            progress(ctx, got, total);
    }
    *data = buf;
    *len = got;
    return PROTO_FETCH_OK;
fail:
    free(buf);
    return rc;
}

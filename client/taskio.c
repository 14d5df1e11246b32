/* taskio.c - the loops behind task calls (chunked upload and fetch), shared by task, submit and batch. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "proto.h"

int
tio_rpc_failed(CLIENT *clnt, char *why, size_t whylen)
{
    snprintf(why, whylen, "%s", cli_rpc_error(clnt));
    return EXIT_RPC;
}

int
tio_refused(ip_status st, const char *msg, char *why, size_t whylen)
{
    snprintf(why, whylen, "%s: %s", proto_status_name(st), msg ? msg : "");
    cli_error_status(st);
    return EXIT_FAILED;
}

uint64_t
tio_inline_limit(CLIENT *clnt)
{
    uint64_t limit = TIO_INLINE_MAX;
    ip_server_info_res r;

    memset(&r, 0, sizeof(r));
    if (proto_server_info(clnt, &r, (struct timeval){ 25, 0 }) == RPC_SUCCESS &&
        r.status == IP_OK && r.ip_server_info_res_u.info.info.limits.max_request_bytes < limit)
        limit = r.ip_server_info_res_u.info.info.limits.max_request_bytes;
    xdr_free((xdrproc_t)xdr_ip_server_info_res, (char *)&r);
    return limit;
}

/* The file's own SHA-256, computed on a second thread while the chunks go out. */
typedef struct own_hash {
    const char *data;           /* the file */
    uint64_t len;
    char hex[65];               /* the result; "" if it failed */
} own_hash;

static void *
own_hash_main(void *p)
{
    own_hash *h = p;

    if (proto_sha256_hex(h->data, h->len, h->hex) < 0)
        h->hex[0] = '\0';
    return NULL;
}

int
tio_upload(CLIENT *clnt, ip_task_id id, const char *data, uint64_t len,
           tio_progress_fn progress, void *ctx, char *why, size_t whylen)
{
    ip_task_info_res st;
    own_hash mine = { data, len, "" };
    pthread_t hasher;
    int hashing, rc;
    uint64_t off;

    memset(&st, 0, sizeof(st));
    if (task_status_1(&id, &st, clnt) != RPC_SUCCESS)
        return tio_rpc_failed(clnt, why, whylen);
    if (st.status != IP_OK) {
        rc = tio_refused(st.status, st.ip_task_info_res_u.message, why, whylen);
        xdr_free((xdrproc_t)xdr_ip_task_info_res, (char *)&st);
        return rc;
    }
    off = st.ip_task_info_res_u.info.received;
    if (st.ip_task_info_res_u.info.size != len) {
        snprintf(why, whylen, "the task expects %llu bytes, the file has %llu",
                 (unsigned long long)st.ip_task_info_res_u.info.size, (unsigned long long)len);
        xdr_free((xdrproc_t)xdr_ip_task_info_res, (char *)&st);
        return EXIT_FAILED;
    }
    xdr_free((xdrproc_t)xdr_ip_task_info_res, (char *)&st);
    hashing = pthread_create(&hasher, NULL, own_hash_main, &mine) == 0;
    if (!hashing)
        own_hash_main(&mine);
    /* Resumes where the server is; a complete upload sends one chunk again to learn its hash. */
    if (off == len)
        off = len > IP_MAX_CHUNK ? len - IP_MAX_CHUNK : 0;
    for (;;) {
        ip_task_upload_args a;
        ip_task_upload_res r;
        uint64_t n = len - off < IP_MAX_CHUNK ? len - off : IP_MAX_CHUNK;
        a.id = id;
        a.offset = off;
        a.data.data_len = (u_int)n;
        a.data.data_val = (char *)data + off;
        memset(&r, 0, sizeof(r));
        if (task_upload_1(&a, &r, clnt) != RPC_SUCCESS) {
            rc = tio_rpc_failed(clnt, why, whylen);
            break;
        }
        if (r.status != IP_OK) {
            rc = tio_refused(r.status, r.ip_task_upload_res_u.message, why, whylen);
            xdr_free((xdrproc_t)xdr_ip_task_upload_res, (char *)&r);
            break;
        }
        off = r.ip_task_upload_res_u.uploaded.received;
        if (progress)
            progress(ctx, off < len ? off : len, len);
        if (off >= len) {
            if (hashing)
                pthread_join(hasher, NULL);
            hashing = 0;
            rc = EXIT_OK;
            if (strcmp(r.ip_task_upload_res_u.uploaded.sha256, mine.hex) != 0) {
                snprintf(why, whylen, "the server's SHA-256 %s is not the file's %s",
                         r.ip_task_upload_res_u.uploaded.sha256, mine.hex);
                rc = EXIT_FAILED;
            } else
                snprintf(why, whylen, "sha256 %s", mine.hex);
            xdr_free((xdrproc_t)xdr_ip_task_upload_res, (char *)&r);
            break;
        }
        xdr_free((xdrproc_t)xdr_ip_task_upload_res, (char *)&r);
    }
    if (hashing)
        pthread_join(hasher, NULL);
    return rc;
}

int
tio_fetch(CLIENT *clnt, ip_task_id id, char **data, uint64_t *len, ip_task_chunk *facts,
          tio_progress_fn progress, void *ctx, char *why, size_t whylen)
{
    ip_status st;
    int rc = proto_fetch_result(clnt, id, data, len, facts, progress, ctx, &st, why, whylen);

    if (rc == PROTO_FETCH_RPC)
        return tio_rpc_failed(clnt, why, whylen);
    if (rc == PROTO_FETCH_REFUSED) {
        char msg[IP_MAX_MESSAGE];
        snprintf(msg, sizeof(msg), "%s", why);
        return tio_refused(st, msg, why, whylen);
    }
    return rc == PROTO_FETCH_OK ? EXIT_OK : EXIT_FAILED;
}

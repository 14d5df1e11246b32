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
    if (limit > proto_chunk_size(clnt))     /* Kerberos: larger images are uploaded */
        limit = proto_chunk_size(clnt);
    xdr_free((xdrproc_t)xdr_ip_server_info_res, (char *)&r);
    return limit;
}

/*
 * What an upload sends: bytes in memory (tio_upload), or a file read a
 * chunk at a time (tio_upload_input).  at() gives n bytes at off: a pointer
 * into the memory, or into buf (a chunk: proto_chunk_size) filled from the file.
 */
typedef struct source {
    const char *data;           /* the bytes, or NULL: read from in */
    const cli_input *in;
    uint64_t len;
} source;

static const char *
at(const source *s, uint64_t off, size_t n, char *buf, char *why, size_t whylen)
{
    if (s->data)
        return s->data + off;
    return cli_input_pread(s->in, off, buf, n, why, whylen) < 0 ? NULL : buf;
}

/*
 * The source's own SHA-256, computed on a second thread while the chunks
 * go out (reading the file again, a chunk at a time, with its own buffer:
 * the page cache has it, and the hash keeps pace with the sending).
 */
typedef struct own_hash {
    const source *src;
    char hex[65];               /* the result; "" if it failed */
    char why[256];              /* and why */
} own_hash;

static void *
own_hash_main(void *p)
{
    own_hash *h = p;
    proto_sha256 *sha = proto_sha256_new();
    char *buf = h->src->data ? NULL : malloc(IP_MAX_CHUNK);
    const char *piece;

    h->hex[0] = '\0';
    snprintf(h->why, sizeof(h->why), "out of memory");
    if (!sha || (!h->src->data && !buf))
        goto done;
    for (uint64_t off = 0; off < h->src->len;) {
        size_t n = h->src->len - off < IP_MAX_CHUNK ? (size_t)(h->src->len - off) : IP_MAX_CHUNK;
        if (!(piece = at(h->src, off, n, buf, h->why, sizeof(h->why))))
            goto done;
        if (proto_sha256_update(sha, piece, n) < 0) {
            snprintf(h->why, sizeof(h->why), "SHA-256 failed");
            goto done;
        }
        off += n;
    }
    if (proto_sha256_final(sha, h->hex) < 0) {
        h->hex[0] = '\0';
        snprintf(h->why, sizeof(h->why), "SHA-256 failed");
    }
done:
    proto_sha256_free(sha);
    free(buf);
    return NULL;
}

/* Sends src for task id from wherever the server has got to; checks its SHA-256. */
static int
upload(CLIENT *clnt, ip_task_id id, const source *src, tio_progress_fn progress, void *ctx,
       char *why, size_t whylen)
{
    ip_task_info_res st;
    own_hash mine;
    pthread_t hasher;
    uint64_t off, len = src->len, chunk = proto_chunk_size(clnt);
    char *buf = NULL;
    int hashing, rc;

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
    if (!src->data && !(buf = malloc(chunk))) {
        snprintf(why, whylen, "out of memory");
        return EXIT_FAILED;
    }
    memset(&mine, 0, sizeof(mine));
    mine.src = src;
    hashing = pthread_create(&hasher, NULL, own_hash_main, &mine) == 0;
    if (!hashing)
        own_hash_main(&mine);
    /* Resumes where the server is; a complete upload sends one chunk again to learn its hash. */
    if (off == len)
        off = len > chunk ? len - chunk : 0;
    for (;;) {
        ip_task_upload_args a;
        ip_task_upload_res r;
        uint64_t n = len - off < chunk ? len - off : chunk;
        const char *piece = at(src, off, (size_t)n, buf, why, whylen);
        if (!piece) {
            rc = EXIT_FAILED;
            break;
        }
        a.id = id;
        a.offset = off;
        a.data.data_len = (u_int)n;
        a.data.data_val = (char *)piece;
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
            if (!mine.hex[0]) {
                snprintf(why, whylen, "cannot compute the file's SHA-256: %s", mine.why);
                rc = EXIT_FAILED;
            } else if (strcmp(r.ip_task_upload_res_u.uploaded.sha256, mine.hex) != 0) {
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
    free(buf);
    return rc;
}

int
tio_upload(CLIENT *clnt, ip_task_id id, const char *data, uint64_t len,
           tio_progress_fn progress, void *ctx, char *why, size_t whylen)
{
    /* Never NULL: an empty upload points at something. */
    source src = { data ? data : "", NULL, len };

    return upload(clnt, id, &src, progress, ctx, why, whylen);
}

int
tio_upload_input(CLIENT *clnt, ip_task_id id, const cli_input *in,
                 tio_progress_fn progress, void *ctx, char *why, size_t whylen)
{
    source src = { NULL, in, in->size };

    return upload(clnt, id, &src, progress, ctx, why, whylen);
}

/* A fetch's PROTO_FETCH_* outcome as an exit status, why said for people. */
static int
fetch_outcome(CLIENT *clnt, int rc, ip_status st, char *why, size_t whylen)
{
    if (rc == PROTO_FETCH_RPC)
        return tio_rpc_failed(clnt, why, whylen);
    if (rc == PROTO_FETCH_REFUSED) {
        char msg[IP_MAX_MESSAGE];
        snprintf(msg, sizeof(msg), "%s", why);
        return tio_refused(st, msg, why, whylen);
    }
    return rc == PROTO_FETCH_OK ? EXIT_OK : EXIT_FAILED;
}

int
tio_fetch(CLIENT *clnt, ip_task_id id, char **data, uint64_t *len, ip_task_chunk *facts,
          tio_progress_fn progress, void *ctx, char *why, size_t whylen)
{
    ip_status st;
    int rc = proto_fetch_result(clnt, id, data, len, facts, progress, ctx, &st, why, whylen);

    return fetch_outcome(clnt, rc, st, why, whylen);
}

int
tio_fetch_file(CLIENT *clnt, ip_task_id id, const char *dest, ip_task_chunk *facts,
               tio_progress_fn progress, void *ctx, int *local, char *why, size_t whylen)
{
    cli_output w;
    ip_status st;
    int rc;

    *local = 0;
    cli_output_init(&w, dest);
    rc = proto_fetch_result_to(clnt, id, cli_output_sink, &w, facts, progress, ctx, &st, why,
                               whylen);
    if (rc == PROTO_FETCH_OK && cli_output_commit(&w, why, whylen) < 0)
        rc = PROTO_FETCH_SINK;
    if (rc != PROTO_FETCH_OK)
        cli_output_abort(&w);
    if (rc == PROTO_FETCH_SINK) {
        *local = 1;
        return EXIT_FAILED;
    }
    return fetch_outcome(clnt, rc, st, why, whylen);
}

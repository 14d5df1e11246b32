/* cmd_batch.c - imgproc batch: files and folders through the server, as batched tasks or parallel PROCESS calls. */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "proto.h"

#define DEFAULT_JOBS BATCH_DEFAULT_JOBS
#define DEFAULT_BATCH BATCH_DEFAULT_SIZE
#define MAX_JOBS BATCH_MAX_JOBS
#define WAIT_STEP 1             /* seconds one TASK_WAIT blocks: how soon Ctrl-C is seen */



/* Where an input is in its life. */
typedef enum item_state {
    IT_PENDING,                 /* not yet sent (or refused as busy: to send again) */
    IT_SENT,                    /* in a batch whose outcome is not known yet */
    IT_QUEUED,                  /* its task exists; a fetcher will take it */
    IT_FETCHING,                /* a fetcher is waiting for it or fetching it */
    IT_DONE,                    /* its result is written */
    IT_FAILED                   /* it will not be: see status and reason */
} item_state;

/* One input file. */
typedef struct item {
    char *path;                 /* as given, or found in a folder */
    char *dest;                 /* where its result went, once written */
    item_state state;           /* under run.lock */
    ip_task_id id;              /* its task, once created (task mode) */
    char token[IP_MAX_TOKEN + 1]; /* the client's name for its task */
    ip_status status;           /* why it failed (IP_OK: not a server refusal) */
    char *reason;               /* and in words */
    unsigned width, height, bands; /* of the result */
} item;

/* The command line. */
typedef struct batch_opts {
    cli_spec spec;              /* the pipeline and output options */
    const char *out;            /* -o OUTDIR */
    unsigned jobs;              /* -j */
    unsigned batch_size;        /* --batch-size */
    int sync;                   /* --sync: PROCESS calls instead of tasks */
    int no_batch;               /* --no-batch: one TASK_CREATE per image */
    int keep;                   /* --keep: leave finished tasks on the server */
} batch_opts;

/* One run, shared by every thread. */
typedef struct run {
    cli_opts *o;                /* global options */
    const batch_opts *b;        /* the command line */
    item *items;                /* the inputs, in order */
    size_t n;                   /* how many */
    pthread_mutex_t lock;       /* guards everything below */
    pthread_cond_t cond;        /* an item moved on, a thread ended, or stopping */
    size_t next;                /* sync: the next item to take */
    size_t *fetchq;             /* tasks: items whose task exists, in creation order */
    size_t fq_head, fq_tail;    /* taken, added */
    size_t ndone, nfailed;      /* items finished */
    unsigned live;              /* threads still running */
    int submitted;              /* the submitter has nothing left to send */
    unsigned credit;            /* after a busy reply: tasks we may send; UINT_MAX = any */
    int stop;                   /* Ctrl-C: finish the calls in progress, start none */
    int fatal;                  /* a connection failed (EXIT_RPC) */
    char fatal_why[2048];       /* why */
    cli_written written;        /* the results written so far */
    unsigned round_trips;       /* calls that created tasks (or batches of them) */
    unsigned busy;              /* items the server refused as busy and we sent again */
    double submit_secs;         /* time spent creating tasks */
    int tty;                    /* stderr is a terminal: draw a progress bar */
    pthread_t main_thread;      /* woken (SIGUSR1) when the last worker ends */
    uint64_t inline_limit;      /* larger images are uploaded in chunks */
} run;

static int
stopping(run *r)
{
    return __atomic_load_n(&r->stop, __ATOMIC_RELAXED) || r->fatal;
}

/* A connection failed: everything stops, and the run exits EXIT_RPC. */
static void set_fatal(run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
set_fatal(run *r, const char *fmt, ...)
{
    va_list ap;

    pthread_mutex_lock(&r->lock);
    if (!r->fatal) {
        r->fatal = 1;
        va_start(ap, fmt);
        vsnprintf(r->fatal_why, sizeof(r->fatal_why), fmt, ap);
        va_end(ap);
    }
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

/* Prints one finished item (when there is no progress bar).  Under the lock. */
static void
report_item(run *r, const item *it)
{
    size_t k = r->ndone + r->nfailed;

    /* A failure is said on stderr as every command says one (--json too:
     * stdout has the document); a bar or --quiet leaves it to the summary. */
    if (r->tty || r->o->quiet)
        return;
    if (it->state == IT_DONE && !r->o->json)
        printf("[%zu/%zu] %s -> %s (%ux%u, %u band%s)\n", k, r->n, it->path, it->dest,
               it->width, it->height, it->bands, it->bands == 1 ? "" : "s");
    else if (it->state != IT_DONE)
        cli_error("cannot process '%s' [%zu/%zu]: %s%s%s\n", it->path, k, r->n,
                  it->status != IP_OK ? proto_status_name(it->status) : "",
                  it->status != IP_OK ? ": " : "", it->reason);
    if (!r->o->json)
        fflush(stdout);
}

/* Item it is finished (IT_DONE or IT_FAILED): count it, say so, wake whoever waits. */
static void
finish(run *r, item *it, item_state st)
{
    pthread_mutex_lock(&r->lock);
    it->state = st;
    if (st == IT_DONE)
        r->ndone++;
    else
        r->nfailed++;
    if (r->credit != UINT_MAX)
        r->credit++;
    report_item(r, it);
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

/* Item it failed, for the reason fmt says (st: the server's status, IP_OK when local). */
static void fail_item(run *r, item *it, ip_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
fail_item(run *r, item *it, ip_status st, const char *fmt, ...)
{
    char buf[1400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    free(it->reason);
    it->reason = strdup(buf);
    it->status = st;
    finish(r, it, IT_FAILED);
}


/* Item it is written: what its result is, and it is done. */
static void
written(run *r, item *it, unsigned w, unsigned h, unsigned bands)
{
    it->width = w;
    it->height = h;
    it->bands = bands;
    finish(r, it, IT_DONE);
}

/*
 * Where item it's result in format fmt goes (it->dest), claimed so that no
 * other item's result is written there: 0, or -1 having failed the item.
 */
static int
claim_dest(run *r, item *it, ip_format fmt)
{
    const char *earlier;
    int taken;

    it->dest = cli_output_path(r->b->out, it->path, proto_format_ext(fmt));
    if (!it->dest) {
        fail_item(r, it, IP_OK, "%s", "out of memory");
        return -1;
    }
    pthread_mutex_lock(&r->lock);
    taken = cli_written_claim(&r->written, it->dest, it->path, &earlier);
    pthread_mutex_unlock(&r->lock);
    if (taken) {
        /* Names were checked before sending; the server chose another format. */
        if (earlier)
            fail_item(r, it, IP_OK, "would overwrite '%s', the result of '%s': not written",
                      it->dest, earlier);
        else
            fail_item(r, it, IP_OK, "%s", "out of memory");
        free(it->dest);
        it->dest = NULL;
        return -1;
    }
    return 0;
}

/* Writes a result held in memory (a PROCESS reply); the item is then done, or failed. */
static void
write_result(run *r, item *it, const char *data, size_t len, ip_format fmt, unsigned w,
             unsigned h, unsigned bands)
{
    char why[256];

    if (claim_dest(r, it, fmt) < 0)
        return;
    if (cli_write_file(it->dest, data, len, why, sizeof(why))) {
        fail_item(r, it, IP_OK, "cannot write '%s': %s", it->dest, why);
        return;
    }
    written(r, it, w, h, bands);
}

/* A worker's own connection; when there is none, the whole run stops.
 * PROCESS calls (--sync) go to the least loaded of several -H hosts. */
static CLIENT *
worker_connect(run *r)
{
    char *why = NULL;
    CLIENT *clnt = r->b->sync ? cli_connect_spread(r->o, &why) : cli_connect(r->o, &why);

    if (!clnt)
        set_fatal(r, "%s", why ? why : "cannot reach the server");
    free(why);
    return clnt;
}

/* ---------------------------------------------------------------- --sync */

/* One connection: take the next file, PROCESS it, write the result; repeat. */
static void *
sync_main(void *p)
{
    run *r = p;
    CLIENT *clnt = worker_connect(r);

    if (!clnt)
        return NULL;
    for (;;) {
        ip_process_args a;
        ip_image_res res;
        char err[256], *data = NULL;
        size_t len, i;
        item *it;

        pthread_mutex_lock(&r->lock);
        if (stopping(r) || r->next >= r->n) {
            pthread_mutex_unlock(&r->lock);
            break;
        }
        i = r->next++;
        it = &r->items[i];
        it->state = IT_FETCHING;
        pthread_mutex_unlock(&r->lock);

        if (cli_read_file(it->path, IP_MAX_IMAGE, &data, &len, err, sizeof(err))) {
            fail_item(r, it, IP_OK, "cannot read it: %s", err);
            continue;
        }
        if (proto_chunk_size(clnt) == PROTO_KRB5_CHUNK && len > PROTO_KRB5_CHUNK) {
            fail_item(r, it, IP_ETOOBIG, "%zu bytes is more than one Kerberos call carries "
                      "here (%d: libtirpc signs or encrypts each message whole); without "
                      "--sync, tasks send any size", len, PROTO_KRB5_CHUNK);
            free(data);
            continue;
        }
        memset(&a, 0, sizeof(a));
        memset(&res, 0, sizeof(res));
        a.image.ip_image_len = (u_int)len;
        a.image.ip_image_val = data;
        a.steps.steps_len = r->b->spec.nsteps;
        a.steps.steps_val = (ip_step *)r->b->spec.steps;
        a.output = cli_task_spec(&r->b->spec).output;
        if (process_1(&a, &res, clnt) != RPC_SUCCESS) {
            /* The item is not lost: it is reported as not done. */
            pthread_mutex_lock(&r->lock);
            it->state = IT_PENDING;
            pthread_mutex_unlock(&r->lock);
            set_fatal(r, "the PROCESS call failed: %s", cli_rpc_error(clnt));
            free(data);
            break;
        }
        free(data);
        if (res.status == IP_OK) {
            ip_image_ok *ok = &res.ip_image_res_u.ok;
            write_result(r, it, ok->image.ip_image_val, ok->image.ip_image_len, ok->format,
                         ok->width, ok->height, ok->bands);
        } else
            fail_item(r, it, res.status, "%s", res.ip_image_res_u.message);
        xdr_free((xdrproc_t)xdr_ip_image_res, (char *)&res);
    }
    cli_disconnect(clnt);
    return NULL;
}

/* ---------------------------------------------------------------- tasks */

/* The task of item it exists: a fetcher may take it. */
static void
created(run *r, item *it, ip_task_id id)
{
    pthread_mutex_lock(&r->lock);
    it->id = id;
    it->state = IT_QUEUED;
    r->fetchq[r->fq_tail++] = (size_t)(it - r->items);
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

/* The server said busy: the item goes back to be sent again; no item is dropped. */
static void
busy_again(run *r, item *it)
{
    pthread_mutex_lock(&r->lock);
    it->state = IT_PENDING;
    r->busy++;
    r->credit = 0;
    pthread_mutex_unlock(&r->lock);
}

/* The outcome of one create, however it was made. */
static void
outcome(run *r, item *it, const ip_task_create_res *res)
{
    if (res->status == IP_OK)
        created(r, it, res->ip_task_create_res_u.created.id);
    else if (res->status == IP_EBUSY)
        busy_again(r, it);
    else
        fail_item(r, it, res->status, "%s", res->ip_task_create_res_u.message);
}

/* A file too large for one call: an ordinary create, then chunks (TASK_UPLOAD) read as they go. */
static int
create_uploaded(run *r, CLIENT *clnt, item *it, const cli_input *in)
{
    ip_task_create_args a;
    ip_task_create_res res;
    char why[512];
    int rc;

    memset(&a, 0, sizeof(a));
    memset(&res, 0, sizeof(res));
    a.source.kind = IP_SOURCE_UPLOAD;
    a.source.ip_task_source_u.size = in->size;
    a.spec = cli_task_spec(&r->b->spec);
    a.token = it->token;
    /* Held until the upload is complete, so a busy queue refuses it now, not later. */
    r->round_trips++;
    if (task_create_1(&a, &res, clnt) != RPC_SUCCESS)
        return tio_rpc_failed(clnt, why, sizeof(why));
    if (res.status != IP_OK) {
        outcome(r, it, &res);
        xdr_free((xdrproc_t)xdr_ip_task_create_res, (char *)&res);
        return EXIT_OK;
    }
    rc = tio_upload_input(clnt, res.ip_task_create_res_u.created.id, in, NULL, NULL, why,
                          sizeof(why));
    if (rc == EXIT_OK)
        created(r, it, res.ip_task_create_res_u.created.id);
    else if (rc == EXIT_FAILED)
        fail_item(r, it, IP_OK, "cannot upload it: %s", why);
    xdr_free((xdrproc_t)xdr_ip_task_create_res, (char *)&res);
    if (rc == EXIT_RPC)
        set_fatal(r, "an upload failed: %s", why);
    return rc;
}

/*
 * Sends items[idx[0..k-1]]: each small one as a batched TASK_SUBMIT (no
 * reply, nothing waits), then one TASK_COLLECT flushes the batch and
 * brings every outcome back.  With --no-batch, one TASK_CREATE each.
 * EXIT_RPC when the connection failed.  Long (about 85 lines): the batch
 * and its collection are one exchange.
 */
static int
send_items(run *r, CLIENT *clnt, const size_t *idx, size_t k)
{
    static const struct timeval zero = { 0, 0 };
    size_t nbatched = 0;
    ip_batch_res res;
    int rc = EXIT_OK;

    for (size_t j = 0; j < k && rc == EXIT_OK; j++) {
        item *it = &r->items[idx[j]];
        ip_task_create_args a;
        char err[256], *data = NULL;
        cli_input in;
        size_t len;

        if (cli_input_open(it->path, &in, err, sizeof(err))) {
            fail_item(r, it, IP_OK, "cannot read it: %s", err);
            continue;
        }
        if (in.size > r->inline_limit) {
            /* Never read whole: its chunks are read as they are sent. */
            rc = create_uploaded(r, clnt, it, &in);
            cli_input_close(&in);
            continue;
        }
        len = (size_t)in.size;
        if (cli_input_slurp(&in, (size_t)r->inline_limit, &data, err, sizeof(err))) {
            cli_input_close(&in);
            fail_item(r, it, IP_OK, "cannot read it: %s", err);
            continue;
        }
        cli_input_close(&in);
        memset(&a, 0, sizeof(a));
        a.source.kind = IP_SOURCE_INLINE;
        a.source.ip_task_source_u.image.ip_image_len = (u_int)len;
        a.source.ip_task_source_u.image.ip_image_val = data;
        a.spec = cli_task_spec(&r->b->spec);
        a.token = it->token;
        if (r->b->no_batch) {
            ip_task_create_res one;
            memset(&one, 0, sizeof(one));
            r->round_trips++;
            if (task_create_1(&a, &one, clnt) != RPC_SUCCESS) {
                set_fatal(r, "TASK_CREATE failed: %s", cli_rpc_error(clnt));
                rc = EXIT_RPC;
            } else
                outcome(r, it, &one);
            xdr_free((xdrproc_t)xdr_ip_task_create_res, (char *)&one);
        } else {
            /* The batched call: NULL xdr_results and a zero timeout make
             * libtirpc buffer it and return at once, expecting no reply. */
            if (clnt_call(clnt, TASK_SUBMIT, (xdrproc_t)xdr_ip_task_create_args, (char *)&a,
                          NULL, NULL, zero) != RPC_SUCCESS) {
                set_fatal(r, "TASK_SUBMIT failed: %s", cli_rpc_error(clnt));
                rc = EXIT_RPC;
            } else
                nbatched++;
        }
        free(data);
    }
    if (nbatched == 0 || rc != EXIT_OK)
        return rc;

    /* The flush: an ordinary call, answered once the server has every item. */
    memset(&res, 0, sizeof(res));
    r->round_trips++;
    if (task_collect_1(NULL, &res, clnt) != RPC_SUCCESS) {
        set_fatal(r, "TASK_COLLECT failed: %s", cli_rpc_error(clnt));
        return EXIT_RPC;
    }
    if (res.status != IP_OK) {
        char why[1200];
        tio_refused(res.status, res.ip_batch_res_u.message, why, sizeof(why));
        set_fatal(r, "TASK_COLLECT was refused: %s", why);
        xdr_free((xdrproc_t)xdr_ip_batch_res, (char *)&res);
        return EXIT_RPC;
    }
    for (u_int j = 0; j < res.ip_batch_res_u.report.items.items_len; j++) {
        const ip_batch_outcome *oc = &res.ip_batch_res_u.report.items.items_val[j];
        /* Our tokens end in the item's index: "imgproc-RUN-INDEX". */
        const char *dash = strrchr(oc->token, '-');
        unsigned long i = dash ? strtoul(dash + 1, NULL, 10) : r->n;
        if (i < r->n && strcmp(r->items[i].token, oc->token) == 0 &&
            r->items[i].state == IT_SENT)
            outcome(r, &r->items[i], &oc->result);
    }
    xdr_free((xdrproc_t)xdr_ip_batch_res, (char *)&res);
    /* Any item the report does not name (skipped by the server) is sent again. */
    pthread_mutex_lock(&r->lock);
    for (size_t j = 0; j < k; j++)
        if (r->items[idx[j]].state == IT_SENT)
            r->items[idx[j]].state = IT_PENDING;
    pthread_mutex_unlock(&r->lock);
    return EXIT_OK;
}

/* Picks up to max pending items (marking them sent) into idx.  Under the lock. */
static size_t
take_pending(run *r, size_t *idx, size_t max)
{
    size_t k = 0;

    for (size_t i = 0; i < r->n && k < max; i++)
        if (r->items[i].state == IT_PENDING) {
            r->items[i].state = IT_SENT;
            idx[k++] = i;
        }
    return k;
}

static int
any_pending(const run *r)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->items[i].state == IT_PENDING)
            return 1;
    return 0;
}

/* The submitter: one connection creating every task, a batch at a time. */
static void *
submit_main(void *p)
{
    run *r = p;
    CLIENT *clnt = worker_connect(r);
    size_t *idx = calloc(r->b->batch_size, sizeof(*idx));
    double t0 = proto_seconds();

    if (!clnt || !idx) {
        set_fatal(r, "%s", "out of memory");
        goto done;
    }
    r->inline_limit = tio_inline_limit(clnt);
    for (;;) {
        size_t k, max = r->b->batch_size;
        unsigned busy;
        pthread_mutex_lock(&r->lock);
        /* After a busy reply, send only as many as have finished since (at
         * least one a second, in case others are filling the queue). */
        while (!stopping(r) && r->credit == 0 && any_pending(r)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            if (pthread_cond_timedwait(&r->cond, &r->lock, &ts) == ETIMEDOUT && r->credit == 0)
                r->credit = 1;
        }
        if (r->credit < max)
            max = r->credit;
        k = stopping(r) ? 0 : take_pending(r, idx, max);
        if (r->credit != UINT_MAX)
            r->credit -= (unsigned)k;
        pthread_mutex_unlock(&r->lock);
        if (k == 0)
            break;
        busy = r->busy;
        if (send_items(r, clnt, idx, k) == EXIT_RPC)
            break;
        pthread_mutex_lock(&r->lock);
        /* A batch without a busy reply lifts the limit. */
        if (r->busy == busy)
            r->credit = UINT_MAX;
        pthread_mutex_unlock(&r->lock);
    }
done:
    pthread_mutex_lock(&r->lock);
    r->submitted = 1;
    r->submit_secs = proto_seconds() - t0;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    free(idx);
    cli_disconnect(clnt);
    return NULL;
}

/*
 * Fetches item it's result (in format fmt) into its file in OUTDIR, written
 * as it arrives, a chunk at a time.  The item is then done or failed, or
 * EXIT_RPC (why says) when the connection failed.
 */
static int
fetch_result(run *r, CLIENT *clnt, item *it, ip_format fmt, char *why, size_t whylen)
{
    ip_task_chunk facts;
    int rc, local;

    if (claim_dest(r, it, fmt) < 0)
        return EXIT_OK;         /* the item failed: there is nowhere to put it */
    rc = tio_fetch_file(clnt, it->id, it->dest, &facts, NULL, NULL, &local, why, whylen);
    if (rc == EXIT_OK)
        written(r, it, facts.width, facts.height, facts.bands);
    else if (rc == EXIT_FAILED && local)
        fail_item(r, it, IP_OK, "cannot write '%s': %s", it->dest, why);
    else if (rc == EXIT_FAILED)
        fail_item(r, it, IP_OK, "cannot fetch the result: %s", why);
    return rc;
}

/* Waits for item it's task to end, then fetches its result.  EXIT_RPC when the connection failed. */
static int
fetch_one(run *r, CLIENT *clnt, item *it)
{
    ip_task_info_res st;
    ip_task_wait_args w = { it->id, IP_TASK_QUEUED, WAIT_STEP };
    const ip_task_info *info = &st.ip_task_info_res_u.info;
    char why[1200];
    int rc = EXIT_OK;

    memset(&st, 0, sizeof(st));
    for (;;) {
        if (task_wait_1(&w, &st, clnt) != RPC_SUCCESS)
            return tio_rpc_failed(clnt, why, sizeof(why));
        if (st.status != IP_OK) {
            fail_item(r, it, st.status, "%s", st.ip_task_info_res_u.message);
            goto cleanup;
        }
        if (proto_task_final(info->state))
            break;
        if (stopping(r)) {
            /* Ctrl-C: the task is left for the clean-up to cancel. */
            pthread_mutex_lock(&r->lock);
            it->state = IT_QUEUED;
            pthread_mutex_unlock(&r->lock);
            goto cleanup;
        }
        w.seen = info->state;
        xdr_free((xdrproc_t)xdr_ip_task_info_res, (char *)&st);
        memset(&st, 0, sizeof(st));
    }
    if (info->state == IP_TASK_DONE)
        rc = fetch_result(r, clnt, it, info->result_format, why, sizeof(why));
    else if (info->state == IP_TASK_FAILED)
        fail_item(r, it, info->error_status, "%s", info->error);
    else
        fail_item(r, it, IP_OK, "its task was %s by someone else",
                  proto_task_state_name(info->state));
    if (rc != EXIT_RPC && !r->b->keep) {
        /* Its work is done: free the server of it. */
        ip_task_res d;
        memset(&d, 0, sizeof(d));
        if (task_delete_1(&it->id, &d, clnt) != RPC_SUCCESS)
            rc = tio_rpc_failed(clnt, why, sizeof(why));
        xdr_free((xdrproc_t)xdr_ip_task_res, (char *)&d);
    }
cleanup:
    xdr_free((xdrproc_t)xdr_ip_task_info_res, (char *)&st);
    if (rc == EXIT_RPC)
        set_fatal(r, "fetching failed: %s", why);
    return rc;
}

/* A fetcher: one connection taking created tasks in order, waiting, fetching. */
static void *
fetch_main(void *p)
{
    run *r = p;
    CLIENT *clnt = worker_connect(r);

    if (!clnt)
        return NULL;
    for (;;) {
        item *it;
        pthread_mutex_lock(&r->lock);
        while (!stopping(r) && r->fq_head == r->fq_tail && !r->submitted)
            pthread_cond_wait(&r->cond, &r->lock);
        if (stopping(r) || r->fq_head == r->fq_tail) {
            pthread_mutex_unlock(&r->lock);
            break;
        }
        it = &r->items[r->fetchq[r->fq_head++]];
        it->state = IT_FETCHING;
        pthread_mutex_unlock(&r->lock);
        if (fetch_one(r, clnt, it) == EXIT_RPC)
            break;
    }
    cli_disconnect(clnt);
    return NULL;
}

/* After Ctrl-C: cancel and delete the tasks nobody will fetch. */
static size_t
cancel_leftovers(run *r)
{
    char *why = NULL;
    CLIENT *clnt;
    size_t n = 0;

    if (r->b->sync || r->b->keep)
        return 0;
    clnt = cli_connect(r->o, &why);
    free(why);
    for (size_t i = 0; clnt && i < r->n; i++) {
        item *it = &r->items[i];
        ip_task_res c;
        if (it->state != IT_QUEUED && it->state != IT_FETCHING)
            continue;
        memset(&c, 0, sizeof(c));
        if (task_delete_1(&it->id, &c, clnt) == RPC_SUCCESS && c.status == IP_OK)
            n++;
        xdr_free((xdrproc_t)xdr_ip_task_res, (char *)&c);
    }
    cli_disconnect(clnt);
    return n;
}

/* ---------------------------------------------------------------- progress */

static void
draw_bar(run *r, double t0)
{
    size_t k = r->ndone + r->nfailed, width = 30, fill = r->n ? k * width / r->n : width;
    double secs = proto_seconds() - t0, rate = secs > 0 ? (double)k / secs : 0;
    char bar[64], eta[32] = "--:--";

    for (size_t i = 0; i < width; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    if (rate > 0) {
        long left = (long)((double)(r->n - k) / rate + 0.5);
        snprintf(eta, sizeof(eta), "%ld:%02ld", left / 60, left % 60);
    }
    fprintf(stderr, "\r[%s] %zu/%zu", bar, k, r->n);
    if (r->nfailed)
        fprintf(stderr, " (%zu failed)", r->nfailed);
    fprintf(stderr, "  %.1f img/s  ETA %s\033[K", rate, eta);
    fflush(stderr);
}

/*
 * The main thread: signals are blocked everywhere and taken here with
 * sigtimedwait, so Ctrl-C never lands inside a worker's RPC call.  Draws
 * the bar; the first Ctrl-C stops cleanly, a second one at once.
 */
static int
supervise(run *r, double t0)
{
    sigset_t set;
    int interrupted = 0;

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    for (;;) {
        struct timespec tick = { 0, 200 * 1000 * 1000 };
        int sig = sigtimedwait(&set, NULL, &tick), live;
        if (sig == SIGINT || sig == SIGTERM) {
            if (interrupted) {
                fprintf(stderr, "\nimgproc: stopped at once; calls in progress were abandoned\n");
                cli_output_unlink_all();    /* no half-written result left behind */
                _exit(EXIT_INTERRUPTED);
            }
            interrupted = 1;
            __atomic_store_n(&r->stop, 1, __ATOMIC_RELAXED);
            pthread_mutex_lock(&r->lock);
            pthread_cond_broadcast(&r->cond);
            pthread_mutex_unlock(&r->lock);
            fprintf(stderr, "%simgproc: interrupted: finishing the calls in progress "
                            "(Ctrl-C again to quit now)\n", r->tty ? "\n" : "");
        }
        pthread_mutex_lock(&r->lock);
        if (r->tty && !interrupted)
            draw_bar(r, t0);
        live = (int)r->live;
        pthread_mutex_unlock(&r->lock);
        if (live == 0)
            break;
    }
    if (r->tty && !interrupted)
        fprintf(stderr, "\r\033[K");
    return interrupted;
}

/* ---------------------------------------------------------------- setup */

typedef struct thread_arg {
    run *r;                     /* the run */
    void *(*fn)(void *);        /* what the thread does */
} thread_arg;

/* Runs a worker, then says it ended. */
static void *
thread_main(void *p)
{
    thread_arg *a = p;

    a->fn(a->r);
    pthread_mutex_lock(&a->r->lock);
    if (--a->r->live == 0)
        pthread_kill(a->r->main_thread, SIGUSR1);
    pthread_cond_broadcast(&a->r->cond);
    pthread_mutex_unlock(&a->r->lock);
    return NULL;
}

static int
by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds a folder's regular files (not subfolders, not hidden ones), sorted. */
static int
add_dir(const char *dir, char ***paths, size_t *n, size_t *cap)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t first = *n;

    if (!d) {
        cli_error("cannot open folder '%s': %s\n", dir, strerror(errno));
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        char *path;
        struct stat st;
        if (e->d_name[0] == '.')
            continue;
        if (!(path = cli_path_join(dir, e->d_name)))
            break;
        if (stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
            free(path);
            continue;
        }
        if (*n == *cap) {
            char **more = realloc(*paths, (*cap = *cap * 2 + 16) * sizeof(**paths));
            if (!more) {
                free(path);
                break;
            }
            *paths = more;
        }
        (*paths)[(*n)++] = path;
    }
    closedir(d);
    qsort(*paths + first, *n - first, sizeof(**paths), by_name);
    return 0;
}

static void
batch_help(FILE *f)
{
    fprintf(f,
"usage: imgproc batch --steps S -o OUTDIR [-j N] [--sync] [options] FILE|DIR...\n\n"
"Runs the pipeline on every FILE and on the files of every DIR (not its\n"
"subfolders or hidden files), writing each result into OUTDIR under its own\n"
"name (with the output format's extension).\n\n"
"By default the images become tasks: one connection sends them as ONC RPC\n"
"batched calls (TASK_SUBMIT, no reply each) and one TASK_COLLECT per batch\n"
"brings back every task id; N more connections wait for the tasks and fetch\n"
"the results.  When the server's queue is full, refused images are sent again\n"
"as tasks finish: none is dropped.\n\n"
"On a terminal a progress bar shows done/total, images per second and the time\n"
"left; otherwise one line per image (--quiet: neither).  A summary follows\n"
"(--json: one object).\n"
"Ctrl-C finishes the calls in progress, cancels the tasks not yet fetched and\n"
"says what was done (exit 130).  Exit 0 when every image was written, 1 when\n"
"some failed, 3 when the server could not be reached.\n\nOptions:\n");
    cli_help_options(f, CMD_BATCH);
    fprintf(f, "\n");
    cli_help_global(f);
}

/* Parses the command line into b and the input list.  -1 to go on, or an exit code. */
static int
parse(cli_opts *o, batch_opts *b, int argc, char **argv)
{
    struct option opts[64];
    char shorts[64];
    unsigned long v;
    int c;

    b->jobs = DEFAULT_JOBS;
    b->batch_size = DEFAULT_BATCH;
    optind = 0;
    cli_getopt_table(opts, sizeof(opts) / sizeof(opts[0]), shorts, sizeof(shorts));
    while ((c = cli_getopt(argc, argv, shorts, opts, CMD_BATCH, "batch")) != -1) {
        int g;
        if (c == '?')
            return EXIT_USAGE;
        g = cli_global_option(o, c, optarg);
        if (g == 0)
            g = cli_spec_option(&b->spec, c, optarg);
        if (g < 0)
            return EXIT_USAGE;
        if (g > 0)
            continue;
        switch (c) {
        case 'h':
            batch_help(stdout);
            return EXIT_OK;
        case 'o':
            b->out = optarg;
            break;
        case 'j':
            if (proto_parse_uint(optarg, MAX_JOBS, &v) || v == 0) {
                cli_error("-j takes 1..%d, not '%s'\n", MAX_JOBS, optarg);
                return EXIT_USAGE;
            }
            b->jobs = (unsigned)v;
            break;
        case CLI_O_BATCH_SIZE:
            if (proto_parse_uint(optarg, IP_MAX_BATCH, &v) || v == 0) {
                cli_error("--batch-size takes 1..%d, not '%s'\n", IP_MAX_BATCH,
                          optarg);
                return EXIT_USAGE;
            }
            b->batch_size = (unsigned)v;
            break;
        case CLI_O_SYNC:
            b->sync = 1;
            break;
        case CLI_O_NO_BATCH:
            b->no_batch = 1;
            break;
        case CLI_O_KEEP:
            b->keep = 1;
            break;
        default:
            cli_usage("imgproc batch --steps S -o OUTDIR [-j N] [--sync] FILE|DIR... "
                      "(see --help)");
            return EXIT_USAGE;
        }
    }
    if (b->spec.nsteps == 0 || !b->out || optind >= argc) {
        cli_error("batch needs %s\n", b->spec.nsteps == 0 ? "--steps"
                                      : !b->out ? "-o OUTDIR"
                                                : "at least one FILE or DIR");
        return EXIT_USAGE;
    }
    if (b->sync && (b->no_batch || b->keep)) {
        cli_error("--sync makes no tasks: --no-batch and --keep do not apply\n");
        return EXIT_USAGE;
    }
    if (cli_require_tcp(o, "batch"))
        return EXIT_USAGE;
    /* Kerberos cannot batch in libtirpc 1.3.3: a call's checksum covers its
     * send buffer from the start, and a batched call leaves the one before
     * it there, so the server sees a wrong checksum (CREDPROBLEM).  One
     * TASK_CREATE per image instead. */
    if (!b->sync && cli_auth_krb5(o->auth))
        b->no_batch = 1;
    return -1;
}

static void
summary(run *r, double secs, int interrupted, size_t cancelled)
{
    size_t left = r->n - r->ndone - r->nfailed;
    double rate = secs > 0 ? (double)r->ndone / secs : 0;     /* written, not tried */
    const char *mode = r->b->sync ? "sync" : r->b->no_batch ? "tasks" : "batched";

    if (r->o->json) {
        cli_json_begin();
        printf("{\"mode\": \"%s\", \"connections\": %u, \"total\": %zu, \"written\": %zu, "
               "\"failed\": %zu, \"not_done\": %zu, \"interrupted\": %s, \"seconds\": %.3f, "
               "\"images_per_second\": %.2f", mode, r->b->jobs, r->n, r->ndone, r->nfailed,
               left, interrupted ? "true" : "false", secs, rate);
        if (!r->b->sync)
            printf(", \"round_trips\": %u, \"submit_seconds\": %.3f, \"busy\": %u",
                   r->round_trips, r->submit_secs, r->busy);
        printf(", \"items\": [");
        for (size_t i = 0; i < r->n; i++) {
            const item *it = &r->items[i];
            printf("%s\n  {\"file\": ", i ? "," : "");
            proto_json_string(stdout, it->path);
            if (it->state == IT_DONE) {
                printf(", \"ok\": true, \"output\": ");
                proto_json_string(stdout, it->dest);
                printf(", \"width\": %u, \"height\": %u, \"bands\": %u}", it->width,
                       it->height, it->bands);
            } else {
                if (it->state == IT_FAILED && it->status != IP_OK)
                    printf(", \"ok\": false, \"status\": \"%s\", \"error\": ",
                           proto_status_name(it->status));
                else
                    printf(", \"ok\": false, \"status\": null, \"error\": ");
                if (it->state == IT_FAILED)
                    proto_json_string(stdout, it->reason);
                else if (r->fatal) {
                    char why[sizeof(r->fatal_why) + 16];
                    snprintf(why, sizeof(why), "not done: %s", r->fatal_why);
                    proto_json_string(stdout, why);
                } else
                    proto_json_string(stdout, "not done");
                printf("}");
            }
        }
        printf("]}\n");
        return;
    }
    printf("batch: %zu of %zu image%s written to %s in %.2f s (%.1f images/s, %s, %u "
           "connection%s)", r->ndone, r->n, r->n == 1 ? "" : "s", r->b->out, secs, rate, mode,
           r->b->jobs, r->b->jobs == 1 ? "" : "s");
    if (r->nfailed)
        printf("; %zu failed", r->nfailed);
    if (left)
        printf("; %zu not done", left);
    printf("\n");
    if (!r->b->sync)
        printf("batch: tasks created with %u round trip%s in %.3f s%s", r->round_trips,
               r->round_trips == 1 ? "" : "s", r->submit_secs,
               r->busy ? "" : "\n");
    if (!r->b->sync && r->busy)
        printf("; the server was busy %u time%s (those images were sent again)\n", r->busy,
               r->busy == 1 ? "" : "s");
    if (interrupted)
        printf("batch: interrupted%s\n",
               cancelled ? "; the tasks not yet fetched were cancelled" : "");
    for (size_t i = 0; i < r->n; i++)
        if (r->items[i].state == IT_FAILED)
            printf("  failed: %s: %s%s%s\n", r->items[i].path,
                   r->items[i].status != IP_OK ? proto_status_name(r->items[i].status) : "",
                   r->items[i].status != IP_OK ? ": " : "", r->items[i].reason);
}

/* The files named, and those in the folders named, into *paths (malloc'ed).  0 or -1. */
static int
collect_inputs(char **args, int nargs, char ***paths, size_t *npaths)
{
    size_t cap = 0;
    int rc = 0;

    for (int i = 0; i < nargs; i++) {
        if (cli_is_dir(args[i])) {
            if (add_dir(args[i], paths, npaths, &cap) < 0)
                rc = -1;
            continue;
        }
        if (*npaths == cap) {
            char **more = realloc(*paths, (cap = cap * 2 + 16) * sizeof(**paths));
            if (!more)
                return -1;
            *paths = more;
        }
        (*paths)[(*npaths)++] = strdup(args[i]);
    }
    return rc;
}

/* The run's threads: PROCESS callers (--sync), or one submitter and the fetchers.  How many started. */
static unsigned
start_threads(run *r, pthread_t *threads, thread_arg *targs)
{
    unsigned n = 0;

    for (unsigned i = 0; i < r->b->jobs + (r->b->sync ? 0 : 1); i++) {
        targs[i].r = r;
        targs[i].fn = r->b->sync ? sync_main : i == 0 ? submit_main : fetch_main;
        pthread_mutex_lock(&r->lock);
        r->live++;
        pthread_mutex_unlock(&r->lock);
        if (pthread_create(&threads[i], NULL, thread_main, &targs[i]) != 0) {
            pthread_mutex_lock(&r->lock);
            r->live--;
            pthread_mutex_unlock(&r->lock);
            set_fatal(r, "cannot start a thread: %s", strerror(errno));
            break;
        }
        n++;
    }
    return n;
}

/*
 * batch: inputs, their names and tokens, the threads, the supervision, the
 * summary.  Long (about 95 lines) for its clean-up: one cleanup label frees
 * what every earlier step took.
 */
int
cmd_batch(cli_opts *o, int argc, char **argv)
{
    batch_opts b;
    run r;
    char **paths = NULL;
    size_t npaths = 0, cancelled = 0;
    pthread_t threads[MAX_JOBS + 1];
    thread_arg targs[MAX_JOBS + 1];
    unsigned nthreads, runid[2] = { 0, 0 };
    sigset_t set, old;
    double t0;
    int rc, interrupted;

    memset(&b, 0, sizeof(b));
    memset(&r, 0, sizeof(r));
    rc = parse(o, &b, argc, argv);
    if (rc >= 0)
        return rc;
    if (collect_inputs(argv + optind, argc - optind, &paths, &npaths) < 0)
        rc = EXIT_FAILED;
    if (npaths == 0) {
        cli_error("batch: no files to process\n");
        free(paths);
        return rc >= 0 ? rc : EXIT_FAILED;
    }
    r.o = o;
    r.b = &b;
    r.n = npaths;
    r.items = calloc(npaths, sizeof(*r.items));
    r.fetchq = calloc(npaths, sizeof(*r.fetchq));
    r.credit = UINT_MAX;
    r.tty = isatty(STDERR_FILENO) && !o->json && !o->quiet;
    pthread_mutex_init(&r.lock, NULL);
    pthread_cond_init(&r.cond, NULL);
    if (!r.items || !r.fetchq) {
        cli_error("out of memory\n");
        rc = EXIT_FAILED;
        goto cleanup;
    }
    if (cli_check_outputs(b.out, paths, npaths,
                          b.spec.have_format ? b.spec.output.format : IP_FMT_AUTO) < 0) {
        rc = EXIT_USAGE;
        goto cleanup;
    }
    /* Tokens make a retried batch safe: "imgproc-RUN-INDEX", RUN random per run. */
    if (getrandom(runid, sizeof(runid), 0) < 0)
        runid[0] = (unsigned)getpid() ^ (unsigned)time(NULL);
    for (size_t i = 0; i < npaths; i++) {
        r.items[i].path = paths[i];
        paths[i] = NULL;
        snprintf(r.items[i].token, sizeof(r.items[i].token), "imgproc-%08x%08x-%zu",
                 runid[0], runid[1], i);
    }
    if (!cli_is_dir(b.out) && mkdir(b.out, 0777) < 0) {
        cli_error("cannot create folder '%s': %s\n", b.out, strerror(errno));
        rc = EXIT_FAILED;
        goto cleanup;
    }

    /* Workers never see SIGINT: the main thread takes it (supervise). */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    r.main_thread = pthread_self();
    t0 = proto_seconds();
    nthreads = start_threads(&r, threads, targs);
    interrupted = supervise(&r, t0);
    for (unsigned i = 0; i < nthreads; i++)
        pthread_join(threads[i], NULL);
    if (interrupted || r.fatal)
        cancelled = cancel_leftovers(&r);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    summary(&r, proto_seconds() - t0, interrupted, cancelled);
    if (r.fatal)
        cli_error("%s\n", r.fatal_why);
    rc = r.fatal ? EXIT_RPC
       : interrupted ? EXIT_INTERRUPTED
       : (r.nfailed || rc == EXIT_FAILED) ? EXIT_FAILED : EXIT_OK;

cleanup:
    for (size_t i = 0; r.items && i < r.n; i++) {
        free(r.items[i].path);
        free(r.items[i].dest);
        free(r.items[i].reason);
    }
    for (size_t i = 0; i < npaths; i++)
        free(paths[i]);
    free(paths);
    free(r.items);
    free(r.fetchq);
    cli_written_free(&r.written);
    pthread_mutex_destroy(&r.lock);
    pthread_cond_destroy(&r.cond);
    return rc;
}

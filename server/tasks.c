/* tasks.c - durable background tasks: the procedures on a task, and the module's life. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <rpc/rpc.h>

#include "log.h"
#include "proto.h"
#include "store.h"
#include "tasks_int.h"

double
tk_wall_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

struct timespec
tk_to_timespec(double s)
{
    struct timespec ts;

    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    return ts;
}

void
tk_set_fail(failure *f, ip_status st, char *message)
{
    if (f->status != IP_OK)
        free(f->message);
    f->status = st;
    f->message = message ? message : strdup("out of memory");
}

/* A store error: logged in full, reported as internal. */
void
tk_store_fail(failure *f, char *why)
{
    srv_log(SRV_LOG_ERROR, "%s\n", why ? why : "task database error");
    tk_set_fail(f, IP_EINTERNAL, proto_strdupf("the task store failed: %s", why ? why : "unknown error"));
    free(why);
}

double
tk_expiry(const tasks *t, double now)
{
    return now + (double)t->cfg.result_ttl;
}

worker *
tk_worker_of(tasks *t, uint64_t id)
{
    for (unsigned i = 0; i < t->nworkers; i++)
        if (t->workers[i].task_id == id)
            return &t->workers[i];
    return NULL;
}

/* ---- upload digests (under the lock) */

upload_hash *
tk_hash_find(tasks *t, uint64_t id)
{
    for (unsigned i = 0; i < UPLOAD_HASHES; i++)
        if (t->hashes[i].id == id)
            return &t->hashes[i];
    return NULL;
}

void
tk_hash_drop(upload_hash *h)
{
    if (!h)
        return;
    proto_sha256_free(h->sha);
    memset(h, 0, sizeof(*h));
}

/*
 * Hashes bytes [from, from + n) of task id's upload.  A digest starts with
 * byte 0; when bytes arrive out of line (a restart lost the digest, or
 * more than UPLOAD_HASHES uploads run at once) it is dropped, and the
 * finished file is read back instead.
 */
void
tk_hash_feed(tasks *t, uint64_t id, uint64_t from, const void *data, size_t n)
{
    upload_hash *h = tk_hash_find(t, id);

    if (!h && from == 0) {
        h = tk_hash_find(t, 0);
        if (!h) {
            h = &t->hashes[t->next_hash++ % UPLOAD_HASHES];
            tk_hash_drop(h);
        }
        h->sha = proto_sha256_new();
        h->id = h->sha ? id : 0;
        if (!h->sha)
            return;
    }
    if (!h)
        return;
    if (h->hashed != from || proto_sha256_update(h->sha, data, n) < 0) {
        tk_hash_drop(h);
        return;
    }
    h->hashed += n;
}

/* Reads task id for owner (NULL: anyone's, for an admin).  0, or -1 with f filled.  Under the lock. */
int
tk_load_owned(tasks *t, const char *owner, uint64_t id, store_task *rec, failure *f)
{
    char *why = NULL;

    switch (store_get(t->st, id, rec, &why)) {
    case 1:
        if (!owner || strcmp(rec->owner, owner) == 0)
            return 0;
        tk_set_fail(f, IP_EDENIED, proto_strdupf("task %llu belongs to another caller",
                                       (unsigned long long)id));
        return -1;
    case 0:
        tk_set_fail(f, IP_ENOTFOUND, proto_strdupf("no task %llu (never created, deleted or expired)",
                                         (unsigned long long)id));
        return -1;
    default:
        tk_store_fail(f, why);
        return -1;
    }
}

void
tk_fill_info(tasks *t, const store_task *rec, ip_task_info *info)
{
    worker *w;

    memset(info, 0, sizeof(*info));
    info->id = rec->id;
    info->state = rec->state;
    if (rec->state == IP_TASK_DONE)
        info->progress = 100;
    else if (rec->state == IP_TASK_RUNNING && (w = tk_worker_of(t, rec->id)) != NULL)
        info->progress = (u_int)__atomic_load_n(&w->progress, __ATOMIC_RELAXED);
    info->created = (uint64_t)(rec->created * 1000);
    info->started = (uint64_t)(rec->started * 1000);
    info->finished = (uint64_t)(rec->finished * 1000);
    info->size = rec->size;
    info->received = rec->received;
    info->sha256 = strdup(rec->sha256);
    info->steps = strdup(rec->steps);
    info->token = strdup(rec->token);
    info->owner = strdup(rec->owner);
    info->result_size = rec->result_size;
    info->result_format = rec->result_format;
    info->width = rec->width;
    info->height = rec->height;
    info->bands = rec->bands;
    info->error_status = rec->error_status;
    info->error = strdup(rec->error);
}

/*
 * Raises the kill flag of the worker running task id, if one is, and waits
 * until it lets go (STOP_WAIT seconds at most: libvips checks the flag
 * between tiles, and a decode may run a while before the first one).  So
 * when CANCEL or DELETE returns, no core is still busy with the task.
 * Under the lock, which the wait releases.
 */
void
tk_stop_worker(tasks *t, uint64_t id)
{
    worker *w = tk_worker_of(t, id);
    struct timespec until;

    if (!w)
        return;
    __atomic_store_n(&w->cancel, 1, __ATOMIC_RELAXED);
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += STOP_WAIT;
    while (tk_worker_of(t, id) && !__atomic_load_n(&t->stopping, __ATOMIC_RELAXED))
        if (pthread_cond_timedwait(&t->changed, &t->lock, &until) == ETIMEDOUT)
            break;
}

/* "task 5 is queued" and what was wrong with that. */
char *
tk_state_msg(const store_task *rec, const char *why)
{
    return proto_strdupf("task %llu is %s; %s", (unsigned long long)rec->id,
                  proto_task_state_name(rec->state), why);
}

void
tk_changed(tasks *t)
{
    pthread_cond_broadcast(&t->changed);
}

/* Is there room for one more QUEUED task?  0, or -1 with f.  Under the lock. */
int
tk_queue_room(tasks *t, failure *f)
{
    long n = store_count(t->st, IP_TASK_QUEUED);

    if (n < 0) {
        tk_store_fail(f, strdup("cannot count the queue"));
        return -1;
    }
    if ((unsigned long)n >= t->cfg.max_queued) {
        tk_set_fail(f, IP_EBUSY, proto_strdupf("the queue is full (%ld tasks waiting); try again later", n));
        return -1;
    }
    return 0;
}

/*
 * The shape of START, CANCEL and DELETE: task id, read for owner under the
 * lock, goes to act, which changes it (res's state) or says why not in f;
 * a failure becomes res's status and message.
 */
typedef void (*task_act)(tasks *t, store_task *rec, ip_task_res *res, failure *f);

static void
on_owned_task(tasks *t, const char *owner, ip_task_id id, ip_task_res *res, task_act act)
{
    store_task *rec = malloc(sizeof(*rec));
    failure f = { IP_OK, NULL };

    memset(res, 0, sizeof(*res));
    if (!rec)
        tk_set_fail(&f, IP_EINTERNAL, NULL);
    else {
        pthread_mutex_lock(&t->lock);
        if (tk_load_owned(t, owner, id, rec, &f) == 0)
            act(t, rec, res, &f);
        pthread_mutex_unlock(&t->lock);
    }
    if (f.status != IP_OK) {
        res->status = f.status;
        res->ip_task_res_u.message = f.message;
    }
    free(rec);
}

/*
 * TASK_UPLOAD.  Long (about 90 lines): the checks on a chunk, the append,
 * and the completion (hash, rename, queue) are one sequence under one lock.
 */
void
tasks_upload(tasks *t, const char *owner, const ip_task_upload_args *a,
             ip_task_upload_res *res)
{
    store_task *rec = malloc(sizeof(*rec));
    ip_task_uploaded *up = &res->ip_task_upload_res_u.uploaded;
    failure f = { IP_OK, NULL };
    uint64_t len = a->data.data_len, got;
    ip_status st;
    char *why = NULL;

    memset(res, 0, sizeof(*res));
    if (!rec) {
        tk_set_fail(&f, IP_EINTERNAL, NULL);
        goto done;
    }
    pthread_mutex_lock(&t->lock);
    if (tk_load_owned(t, owner, a->id, rec, &f))
        goto unlock;
    if (!rec->upload) {
        tk_set_fail(&f, IP_ESTATE, proto_strdupf("task %llu came with its image; there is nothing to "
                                       "upload", (unsigned long long)a->id));
        goto unlock;
    }
    if (rec->sha256[0]) {
        /* Complete already: a retried chunk (its reply was lost) is fine. */
        if (a->offset <= rec->size && len <= rec->size - a->offset)
            goto ok;
        tk_set_fail(&f, IP_ESTATE, proto_strdupf("task %llu has its whole image (%llu bytes) already",
                                       (unsigned long long)a->id,
                                       (unsigned long long)rec->size));
        goto unlock;
    }
    if (rec->state != IP_TASK_CREATED) {
        tk_set_fail(&f, IP_ESTATE, tk_state_msg(rec, "an upload needs a created task"));
        goto unlock;
    }
    /* The chunk that completes an unheld task queues it: is there room? */
    if (!rec->hold && a->offset <= rec->received && a->offset + len == rec->size &&
        tk_queue_room(t, &f))
        goto unlock;
    if (store_append(t->st, a->id, rec->size, a->offset, a->data.data_val, len, &got, &st,
                     &why)) {
        if (st == IP_EINTERNAL)
            tk_store_fail(&f, why);
        else
            tk_set_fail(&f, st, why);
        goto unlock;
    }
    /* The bytes this chunk added to the file: [received, got). */
    if (got > rec->received)
        tk_hash_feed(t, a->id, rec->received, a->data.data_val + (rec->received - a->offset),
                  (size_t)(got - rec->received));
    rec->received = got;
    if (got == rec->size) {
        upload_hash *h = tk_hash_find(t, a->id);
        char known[65] = "";
        if (h && h->hashed == got && proto_sha256_final(h->sha, known) < 0)
            known[0] = '\0';
        tk_hash_drop(h);
        if (store_upload_done(t->st, a->id, known[0] ? known : NULL, rec->sha256, &why)) {
            tk_store_fail(&f, why);
            goto unlock;
        }
        if (!rec->hold) {
            if (store_move(t->st, a->id, 1u << IP_TASK_CREATED, IP_TASK_QUEUED, tk_wall_now(), 0,
                           &why) < 0) {
                tk_store_fail(&f, why);
                goto unlock;
            }
            rec->state = IP_TASK_QUEUED;
            pthread_cond_signal(&t->work);
        }
        tk_changed(t);
        srv_log(SRV_LOG_VERBOSE, "task %llu uploaded (%llu bytes, sha256 %s)\n",
                    (unsigned long long)a->id, (unsigned long long)got, rec->sha256);
    }
ok:
    res->status = IP_OK;
    up->received = rec->received;
    up->size = rec->size;
    up->state = rec->state;
    up->sha256 = strdup(rec->sha256);
unlock:
    pthread_mutex_unlock(&t->lock);
done:
    if (f.status != IP_OK) {
        res->status = f.status;
        res->ip_task_upload_res_u.message = f.message;
    }
    free(rec);
}

/* START: a created task, its image all there, joins the queue. */
static void
start_task(tasks *t, store_task *rec, ip_task_res *res, failure *f)
{
    char *why = NULL;

    if (rec->state != IP_TASK_CREATED) {
        tk_set_fail(f, IP_ESTATE, tk_state_msg(rec, "only a created task can be started"));
        return;
    }
    if (rec->upload && !rec->sha256[0]) {
        tk_set_fail(f, IP_ESTATE, proto_strdupf("task %llu has %llu of its %llu bytes; upload the "
                                                "rest before starting it",
                                                (unsigned long long)rec->id,
                                                (unsigned long long)rec->received,
                                                (unsigned long long)rec->size));
        return;
    }
    if (tk_queue_room(t, f))
        return;
    if (store_move(t->st, rec->id, 1u << IP_TASK_CREATED, IP_TASK_QUEUED, tk_wall_now(), 0,
                   &why) < 0) {
        tk_store_fail(f, why);
        return;
    }
    res->status = IP_OK;
    res->ip_task_res_u.state = IP_TASK_QUEUED;
    pthread_cond_signal(&t->work);
    tk_changed(t);
}

void
tasks_start(tasks *t, const char *owner, ip_task_id id, ip_task_res *res)
{
    on_owned_task(t, owner, id, res, start_task);
}

void
tasks_status(tasks *t, const char *owner, ip_task_id id, ip_task_info_res *res)
{
    ip_task_wait_args a = { id, IP_TASK_CREATED, 0 };

    tasks_wait(t, owner, &a, 0, res);
}

void
tasks_wait(tasks *t, const char *owner, const ip_task_wait_args *a, int may_block,
           ip_task_info_res *res)
{
    store_task *rec = malloc(sizeof(*rec));
    failure f = { IP_OK, NULL };
    struct timespec now;
    double deadline;
    unsigned secs = a->timeout < IP_MAX_WAIT ? a->timeout : IP_MAX_WAIT;

    memset(res, 0, sizeof(*res));
    if (!rec) {
        tk_set_fail(&f, IP_EINTERNAL, NULL);
        goto done;
    }
    clock_gettime(CLOCK_MONOTONIC, &now);
    deadline = (double)now.tv_sec + now.tv_nsec / 1e9 + (may_block ? secs : 0);
    pthread_mutex_lock(&t->lock);
    for (;;) {
        struct timespec until = tk_to_timespec(deadline);
        if (tk_load_owned(t, owner, a->id, rec, &f))
            break;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (rec->state != a->seen || __atomic_load_n(&t->stopping, __ATOMIC_RELAXED) ||
            (double)now.tv_sec + now.tv_nsec / 1e9 >= deadline) {
            res->status = IP_OK;
            tk_fill_info(t, rec, &res->ip_task_info_res_u.info);
            break;
        }
        pthread_cond_timedwait(&t->changed, &t->lock, &until);
    }
    pthread_mutex_unlock(&t->lock);
done:
    if (f.status != IP_OK) {
        res->status = f.status;
        res->ip_task_info_res_u.message = f.message;
    }
    free(rec);
}

/*
 * TASK_RESULT: a chunk of a done task's result.  Long (about 80 lines): the
 * checks under the lock, then the read outside it.
 */
void
tasks_result(tasks *t, const char *owner, const ip_task_result_args *a,
             ip_task_result_res *res)
{
    store_task *rec = malloc(sizeof(*rec));
    ip_task_chunk *c = &res->ip_task_result_res_u.chunk;
    failure f = { IP_OK, NULL };
    char *why = NULL;
    size_t want, have;
    long got;
    int ok = 0;

    memset(res, 0, sizeof(*res));
    if (!rec) {
        tk_set_fail(&f, IP_EINTERNAL, NULL);
        goto done;
    }
    if (a->count > IP_MAX_CHUNK) {
        tk_set_fail(&f, IP_EINVAL, proto_strdupf("count %u; a chunk is at most %d bytes", a->count,
                                       IP_MAX_CHUNK));
        goto done;
    }
    pthread_mutex_lock(&t->lock);
    if (tk_load_owned(t, owner, a->id, rec, &f))
        goto unlock;
    if (rec->state == IP_TASK_FAILED) {
        tk_set_fail(&f, IP_ESTATE, proto_strdupf("task %llu failed (%s: %s); it has no result",
                                       (unsigned long long)a->id,
                                       proto_status_name(rec->error_status), rec->error));
        goto unlock;
    }
    if (rec->state != IP_TASK_DONE) {
        tk_set_fail(&f, IP_ESTATE, tk_state_msg(rec, "a result exists once it is done"));
        goto unlock;
    }
    if (a->offset > rec->result_size) {
        tk_set_fail(&f, IP_EINVAL, proto_strdupf("offset %llu is past the end of the result (%llu bytes)",
                                       (unsigned long long)a->offset,
                                       (unsigned long long)rec->result_size));
        goto unlock;
    }
    ok = 1;
unlock:
    pthread_mutex_unlock(&t->lock);
    if (!ok)
        goto done;
    /* Read outside the lock: a copy of the row says what to read. */
    want = a->count;
    if (want > rec->result_size - a->offset)
        want = (size_t)(rec->result_size - a->offset);
    c->data.data_val = malloc(want ? want : 1);
    got = c->data.data_val ? store_read_result(t->st, rec, a->offset, c->data.data_val, want,
                                               &why) : -1;
    if (got < 0 || (size_t)got != want) {
        free(c->data.data_val);
        c->data.data_val = NULL;
        if (got == -2)          /* deleted between the check and the read: said so */
            tk_set_fail(&f, IP_ENOTFOUND, why);
        else
            tk_store_fail(&f, why ? why : proto_strdupf("cannot read the result of task %llu",
                                                       (unsigned long long)a->id));
        goto done;
    }
    have = (size_t)got;
    res->status = IP_OK;
    c->data.data_len = (u_int)have;
    c->total = rec->result_size;
    c->format = rec->result_format;
    c->width = rec->width;
    c->height = rec->height;
    c->bands = rec->bands;
done:
    if (f.status != IP_OK) {
        res->status = f.status;
        res->ip_task_result_res_u.message = f.message;
    }
    free(rec);
}

/* CANCEL: a task not yet final stops; a running one is stopped before the reply. */
static void
cancel_task(tasks *t, store_task *rec, ip_task_res *res, failure *f)
{
    char *why = NULL;
    double now = tk_wall_now();

    if (proto_task_final(rec->state)) {
        tk_set_fail(f, IP_ESTATE, tk_state_msg(rec, "only a created, queued or running task "
                                               "can be cancelled"));
        return;
    }
    if (store_move(t->st, rec->id, (1u << IP_TASK_CREATED) | (1u << IP_TASK_QUEUED) |
                   (1u << IP_TASK_RUNNING), IP_TASK_CANCELLED, now, tk_expiry(t, now),
                   &why) < 0) {
        tk_store_fail(f, why);
        return;
    }
    res->status = IP_OK;
    res->ip_task_res_u.state = IP_TASK_CANCELLED;
    pthread_cond_signal(&t->sweep);
    tk_changed(t);
    tk_stop_worker(t, rec->id);
}

void
tasks_cancel(tasks *t, const char *owner, ip_task_id id, ip_task_res *res)
{
    on_owned_task(t, owner, id, res, cancel_task);
}

/* DELETE: the task, its image and its result go, in any state. */
static void
delete_task(tasks *t, store_task *rec, ip_task_res *res, failure *f)
{
    char *why = NULL;

    if (store_delete(t->st, rec->id, &why) < 0) {
        tk_store_fail(f, why);
        return;
    }
    tk_hash_drop(tk_hash_find(t, rec->id));
    res->status = IP_OK;
    res->ip_task_res_u.state = rec->state;
    tk_changed(t);
    tk_stop_worker(t, rec->id);
}

void
tasks_delete(tasks *t, const char *owner, ip_task_id id, ip_task_res *res)
{
    on_owned_task(t, owner, id, res, delete_task);
}

void
tasks_list(tasks *t, const char *owner, const ip_task_list_args *a, ip_task_list_res *res)
{
    unsigned limit = a->limit == 0 || a->limit > IP_MAX_LIST ? IP_MAX_LIST : a->limit;
    store_task *recs = calloc(limit, sizeof(*recs));
    ip_task_page *page = &res->ip_task_list_res_u.page;
    failure f = { IP_OK, NULL };
    char *why = NULL;
    int n, more = 0;

    memset(res, 0, sizeof(*res));
    if (!recs) {
        tk_set_fail(&f, IP_EINTERNAL, NULL);
        goto done;
    }
    if (a->states >> PROTO_NSTATES) {
        tk_set_fail(&f, IP_EINVAL, proto_strdupf("states 0x%x names no such state", a->states));
        goto done;
    }
    /* Ids are SQLite's signed 64-bit rowids: none lies past INT64_MAX, and a
     * larger `after` must not wrap to a negative one (the first page again). */
    if (a->after > INT64_MAX) {
        page->tasks.tasks_val = calloc(1, sizeof(ip_task_info));
        res->status = IP_OK;
        goto done;
    }
    pthread_mutex_lock(&t->lock);
    n = store_list(t->st, owner, a->states, a->after, recs, (int)limit, &more, &why);
    if (n < 0)
        tk_store_fail(&f, why);
    else {
        page->tasks.tasks_val = calloc((size_t)n + 1, sizeof(ip_task_info));
        page->tasks.tasks_len = (u_int)n;
        for (int i = 0; i < n; i++)
            tk_fill_info(t, &recs[i], &page->tasks.tasks_val[i]);
        page->more = more ? TRUE : FALSE;
        res->status = IP_OK;
    }
    pthread_mutex_unlock(&t->lock);
done:
    if (f.status != IP_OK) {
        res->status = f.status;
        res->ip_task_list_res_u.message = f.message;
    }
    free(recs);
}

void
tasks_load(tasks *t, unsigned *queued, unsigned *running)
{
    long n;

    pthread_mutex_lock(&t->lock);
    n = store_count(t->st, IP_TASK_QUEUED);
    *queued = n > 0 ? (unsigned)n : 0;
    *running = 0;
    for (unsigned i = 0; i < t->nworkers; i++)
        if (t->workers[i].task_id)
            (*running)++;
    pthread_mutex_unlock(&t->lock);
}

void
tasks_counts(tasks *t, uint64_t by_state[IP_TASK_STATES], unsigned *workers, unsigned *busy)
{
    pthread_mutex_lock(&t->lock);
    for (int st = 0; st < IP_TASK_STATES; st++) {
        long n = store_count(t->st, st);
        by_state[st] = n > 0 ? (uint64_t)n : 0;
    }
    *workers = t->nworkers;
    *busy = 0;
    for (unsigned i = 0; i < t->nworkers; i++)
        if (t->workers[i].task_id)
            (*busy)++;
    pthread_mutex_unlock(&t->lock);
}

/* ------------------------------------------------------------- life */

char *
tasks_store_text(tasks *t, int detail)
{
    char *s;

    if (!t)                     /* no task module (the fuzz harness's server) */
        return strdup("");
    /* PQdb() and the like read the main connection: under the lock. */
    pthread_mutex_lock(&t->lock);
    s = store_describe(t->st, detail);
    pthread_mutex_unlock(&t->lock);
    return s;
}

/* Another server changed a task in the shared store: wake whoever it concerns here. */
static void
on_store_changed(void *arg, int queued)
{
    tasks *t = arg;

    pthread_mutex_lock(&t->lock);
    if (queued)
        pthread_cond_broadcast(&t->work);
    pthread_cond_broadcast(&t->changed);
    pthread_mutex_unlock(&t->lock);
}

/* The store --store names; a shared one knows this server by machine and pid. */
static store *
tk_store_open(tasks *t, char **why)
{
    char host[256] = "", me[300];
    store_config sc = { t->cfg.store_url, t->cfg.state_dir, t->cfg.lease, me,
                        on_store_changed, t };

    gethostname(host, sizeof(host) - 1);
    snprintf(me, sizeof(me), "%s/%ld", host, (long)getpid());
    return store_connect(&sc, why);
}

tasks *
tasks_open(const tasks_config *cfg, const ops_limits *lim, char **why)
{
    tasks *t = calloc(1, sizeof(*t));
    pthread_condattr_t ca;
    int requeued, failed;
    double now = tk_wall_now();

    if (!t) {
        *why = strdup("out of memory");
        return NULL;
    }
    t->cfg = *cfg;
    t->lim = *lim;
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->work, NULL);
    pthread_cond_init(&t->sweep, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->changed, &ca);
    pthread_condattr_destroy(&ca);

    if (!(t->st = tk_store_open(t, why)))
        goto fail;
    if (store_recover(t->st, MAX_ATTEMPTS, now, tk_expiry(t, now), &requeued, &failed, why))
        goto fail;
    if (requeued || failed)
        srv_log(SRV_LOG_NOTICE, "recovered: %d interrupted task%s queued again, %d failed\n",
                requeued, requeued == 1 ? "" : "s", failed);
    t->workers = calloc(cfg->workers, sizeof(worker));
    if (!t->workers) {
        *why = strdup("out of memory");
        goto fail;
    }
    for (unsigned i = 0; i < cfg->workers; i++) {
        t->workers[i].t = t;
        if (pthread_create(&t->workers[i].thread, NULL, tk_worker_main, &t->workers[i]) != 0) {
            *why = strdup("cannot start a worker thread");
            goto fail;
        }
        t->nworkers++;
    }
    if (pthread_create(&t->sweeper, NULL, tk_sweeper_main, t) != 0) {
        *why = strdup("cannot start the sweeper thread");
        goto fail;
    }
    t->sweeper_started = 1;
    return t;

fail:
    tasks_stopping(t);
    tasks_close(t);
    return NULL;
}

void
tasks_stopping(tasks *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->lock);
    __atomic_store_n(&t->stopping, 1, __ATOMIC_RELAXED);
    pthread_cond_broadcast(&t->work);
    pthread_cond_broadcast(&t->sweep);
    pthread_cond_broadcast(&t->changed);
    pthread_mutex_unlock(&t->lock);
}

void
tasks_close(tasks *t)
{
    if (!t)
        return;
    for (unsigned i = 0; i < t->nworkers; i++)
        pthread_join(t->workers[i].thread, NULL);
    if (t->sweeper_started)
        pthread_join(t->sweeper, NULL);
    store_close(t->st);
    for (unsigned i = 0; i < UPLOAD_HASHES; i++)
        tk_hash_drop(&t->hashes[i]);
    free(t->workers);
    pthread_cond_destroy(&t->work);
    pthread_cond_destroy(&t->sweep);
    pthread_cond_destroy(&t->changed);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

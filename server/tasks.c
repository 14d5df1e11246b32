/* tasks.c - durable background tasks: the state machine, the worker pool, waiting, expiry. */
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
#include "tasks.h"

#define MAX_ATTEMPTS 3          /* runs a task may crash the server before it is failed */
#define SWEEP_MAX_SLEEP 60      /* seconds the sweeper sleeps at most */
#define STOP_WAIT 10            /* seconds CANCEL and DELETE wait for a worker to let go */

#define UPLOAD_HASHES 64        /* uploads hashed as their chunks arrive, at most */

/* An upload hashed chunk by chunk, so that its last chunk needs no read-back. */
typedef struct upload_hash {
    uint64_t id;                /* the task; 0 = a free slot */
    uint64_t hashed;            /* bytes hashed, from the first */
    proto_sha256 *sha;          /* the running digest */
} upload_hash;

/* One background thread and the task it runs. */
typedef struct worker {
    pthread_t thread;           /* the thread */
    struct tasks *t;            /* back to the pool */
    uint64_t task_id;           /* task being run, 0 when idle (under lock) */
    int progress;               /* percent done (atomic) */
    int cancel;                 /* stop the task being run (atomic) */
    double deadline;            /* proto_seconds() by which the task must be done */
    int stopped;                /* why on_progress stopped the pipeline, STOP_* (atomic) */
} worker;

struct tasks {
    tasks_config cfg;           /* settings */
    ops_limits lim;             /* what a task's pipeline may do */
    store *st;                  /* the database and files */
    pthread_mutex_t lock;       /* guards the store and everything below */
    pthread_cond_t work;        /* a task was queued, or stopping */
    pthread_cond_t changed;     /* a task changed state, or stopping (monotonic clock) */
    pthread_cond_t sweep;       /* an expiry was set, or stopping (real-time clock) */
    int stopping;               /* set once by tasks_stopping (atomic) */
    worker *workers;            /* the pool */
    unsigned nworkers;          /* threads started */
    pthread_t sweeper;          /* removes expired tasks */
    int sweeper_started;        /* sweeper was started */
    upload_hash hashes[UPLOAD_HASHES]; /* uploads in progress (under lock) */
    unsigned next_hash;         /* the slot taken next when none is free */
};

static double
wall_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct timespec
to_timespec(double s)
{
    struct timespec ts;

    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    return ts;
}

/* Why a call failed, before it is put into whichever result union. */
typedef struct failure {
    ip_status status;           /* IP_OK while nothing failed */
    char *message;              /* malloc'ed */
} failure;

static void
set_fail(failure *f, ip_status st, char *message)
{
    if (f->status != IP_OK)
        free(f->message);
    f->status = st;
    f->message = message ? message : strdup("out of memory");
}

/* A store error: logged in full, reported as internal. */
static void
store_fail(failure *f, char *why)
{
    srv_log(SRV_LOG_ERROR, "%s\n", why ? why : "task database error");
    set_fail(f, IP_EINTERNAL, proto_strdupf("the task store failed: %s", why ? why : "unknown error"));
    free(why);
}

static double
expiry(const tasks *t, double now)
{
    return now + (double)t->cfg.result_ttl;
}

static worker *
worker_of(tasks *t, uint64_t id)
{
    for (unsigned i = 0; i < t->nworkers; i++)
        if (t->workers[i].task_id == id)
            return &t->workers[i];
    return NULL;
}

/* ---- upload digests (under the lock) */

static upload_hash *
hash_find(tasks *t, uint64_t id)
{
    for (unsigned i = 0; i < UPLOAD_HASHES; i++)
        if (t->hashes[i].id == id)
            return &t->hashes[i];
    return NULL;
}

static void
hash_drop(upload_hash *h)
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
static void
hash_feed(tasks *t, uint64_t id, uint64_t from, const void *data, size_t n)
{
    upload_hash *h = hash_find(t, id);

    if (!h && from == 0) {
        h = hash_find(t, 0);
        if (!h) {
            h = &t->hashes[t->next_hash++ % UPLOAD_HASHES];
            hash_drop(h);
        }
        h->sha = proto_sha256_new();
        h->id = h->sha ? id : 0;
        if (!h->sha)
            return;
    }
    if (!h)
        return;
    if (h->hashed != from || proto_sha256_update(h->sha, data, n) < 0) {
        hash_drop(h);
        return;
    }
    h->hashed += n;
}

/* Reads task id for owner.  0, or -1 with f filled.  Under the lock. */
static int
load_owned(tasks *t, const char *owner, uint64_t id, store_task *rec, failure *f)
{
    char *why = NULL;

    switch (store_get(t->st, id, rec, &why)) {
    case 1:
        if (strcmp(rec->owner, owner) == 0)
            return 0;
        set_fail(f, IP_EDENIED, proto_strdupf("task %llu belongs to another caller",
                                       (unsigned long long)id));
        return -1;
    case 0:
        set_fail(f, IP_ENOTFOUND, proto_strdupf("no task %llu (never created, deleted or expired)",
                                         (unsigned long long)id));
        return -1;
    default:
        store_fail(f, why);
        return -1;
    }
}

static void
fill_info(tasks *t, const store_task *rec, ip_task_info *info)
{
    worker *w;

    memset(info, 0, sizeof(*info));
    info->id = rec->id;
    info->state = rec->state;
    if (rec->state == IP_TASK_DONE)
        info->progress = 100;
    else if (rec->state == IP_TASK_RUNNING && (w = worker_of(t, rec->id)) != NULL)
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
static void
stop_worker(tasks *t, uint64_t id)
{
    worker *w = worker_of(t, id);
    struct timespec until;

    if (!w)
        return;
    __atomic_store_n(&w->cancel, 1, __ATOMIC_RELAXED);
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += STOP_WAIT;
    while (worker_of(t, id) && !__atomic_load_n(&t->stopping, __ATOMIC_RELAXED))
        if (pthread_cond_timedwait(&t->changed, &t->lock, &until) == ETIMEDOUT)
            break;
}

/* "task 5 is queued" and what was wrong with that. */
static char *
state_msg(const store_task *rec, const char *why)
{
    return proto_strdupf("task %llu is %s; %s", (unsigned long long)rec->id,
                  proto_task_state_name(rec->state), why);
}

static void
changed(tasks *t)
{
    pthread_cond_broadcast(&t->changed);
}

/* A printable token: no control bytes to confuse a log or a terminal. */
static int
token_ok(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

/* The pipeline in --steps syntax. */
static void
steps_text(const ip_task_spec *spec, char *buf, size_t len)
{
    size_t used = 0;

    buf[0] = '\0';
    for (u_int i = 0; i < spec->steps.steps_len && used + 1 < len; i++) {
        char one[128];
        proto_step_format(&spec->steps.steps_val[i], one, sizeof(one));
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? "," : "", one);
    }
}

/* Checks a create request and fills rec from it.  0, or -1 with f. */
static int
prepare_create(tasks *t, const char *owner, const ip_task_create_args *a, store_task *rec,
               failure *f)
{
    const ip_task_spec *spec = &a->spec;
    char why[IP_MAX_MESSAGE];
    ip_status st;
    XDR x;

    if (spec->steps.steps_len > t->cfg.max_steps) {
        set_fail(f, IP_ETOOBIG, proto_strdupf("%u steps; this server runs at most %u",
                                       spec->steps.steps_len, t->cfg.max_steps));
        return -1;
    }
    if (ops_validate(spec->steps.steps_val, spec->steps.steps_len, &spec->output, &st,
                     why, sizeof(why))) {
        set_fail(f, st, strdup(why));
        return -1;
    }
    if (!token_ok(a->token)) {
        set_fail(f, IP_EINVAL, strdup("the token holds control characters"));
        return -1;
    }
    memset(rec, 0, sizeof(*rec));
    if (a->source.kind == IP_SOURCE_INLINE) {
        const ip_image *im = &a->source.ip_task_source_u.image;
        ip_info_res info;
        if (im->ip_image_len == 0) {
            set_fail(f, IP_EINVAL, strdup("empty image: no bytes were sent"));
            return -1;
        }
        if (im->ip_image_len > t->cfg.max_inline_bytes) {
            set_fail(f, IP_ETOOBIG, proto_strdupf("the image is %u bytes; this server accepts at "
                                           "most %llu in one call (use an upload)",
                                           im->ip_image_len,
                                           (unsigned long long)t->cfg.max_inline_bytes));
            return -1;
        }
        /* Refuse what is not an image now, not after a trip through the queue. */
        memset(&info, 0, sizeof(info));
        ops_info(&t->lim, im->ip_image_val, im->ip_image_len, &info);
        if (info.status != IP_OK) {
            set_fail(f, info.status, strdup(info.ip_info_res_u.message));
            xdr_free((xdrproc_t)xdr_ip_info_res, (char *)&info);
            return -1;
        }
        if ((uint64_t)info.ip_info_res_u.info.width * info.ip_info_res_u.info.height >
            t->lim.max_pixels) {
            set_fail(f, IP_ETOOBIG, proto_strdupf("the image is %ux%u pixels; this server accepts "
                                           "at most %llu", info.ip_info_res_u.info.width,
                                           info.ip_info_res_u.info.height,
                                           (unsigned long long)t->lim.max_pixels));
            xdr_free((xdrproc_t)xdr_ip_info_res, (char *)&info);
            return -1;
        }
        xdr_free((xdrproc_t)xdr_ip_info_res, (char *)&info);
        rec->size = im->ip_image_len;
        proto_sha256_hex(im->ip_image_val, im->ip_image_len, rec->sha256);
    } else if (a->source.kind == IP_SOURCE_UPLOAD) {
        uint64_t size = a->source.ip_task_source_u.size;
        if (size == 0) {
            set_fail(f, IP_EINVAL, strdup("an upload of 0 bytes: declare the image's size"));
            return -1;
        }
        if (size > t->cfg.max_upload_bytes) {
            set_fail(f, IP_ETOOBIG, proto_strdupf("the image is %llu bytes; this server accepts "
                                           "at most %llu", (unsigned long long)size,
                                           (unsigned long long)t->cfg.max_upload_bytes));
            return -1;
        }
        rec->upload = 1;
        rec->size = size;
    } else {
        set_fail(f, IP_EINVAL, proto_strdupf("unknown image source %d", (int)a->source.kind));
        return -1;
    }
    xdrmem_create(&x, (char *)rec->spec, sizeof(rec->spec), XDR_ENCODE);
    if (!xdr_ip_task_spec(&x, (ip_task_spec *)spec)) {
        xdr_destroy(&x);
        set_fail(f, IP_EINVAL, strdup("the pipeline cannot be stored"));
        return -1;
    }
    rec->spec_len = xdr_getpos(&x);
    xdr_destroy(&x);
    snprintf(rec->owner, sizeof(rec->owner), "%s", owner);
    snprintf(rec->token, sizeof(rec->token), "%s", a->token);
    steps_text(spec, rec->steps, sizeof(rec->steps));
    rec->hold = a->hold ? 1 : 0;
    return 0;
}

/* Is there room for one more QUEUED task?  0, or -1 with f.  Under the lock. */
static int
queue_room(tasks *t, failure *f)
{
    long n = store_count(t->st, IP_TASK_QUEUED);

    if (n < 0) {
        store_fail(f, strdup("cannot count the queue"));
        return -1;
    }
    if ((unsigned long)n >= t->cfg.max_queued) {
        set_fail(f, IP_EBUSY, proto_strdupf("the queue is full (%ld tasks waiting); try again later", n));
        return -1;
    }
    return 0;
}

/*
 * A create that has been checked and whose image is in tmp/: what is left
 * is the commit that makes it a task.  TASK_CREATE commits one at a time;
 * a batch commits up to BATCH_GROUP together, for one disk sync.
 */
typedef struct create_item {
    store_task *rec;            /* the row to insert; NULL once refused or done */
    char *temp;                 /* its image in tmp/, or NULL (upload tasks) */
    int synced;                 /* temp is already on disk (fsync) */
    ip_task_create_res *res;    /* where the outcome goes */
} create_item;

#define BATCH_GROUP 64          /* checked batch items waiting for one commit, at most */

/* A batch in progress on one connection (see TASK_SUBMIT in imgproc.x). */
struct tasks_batch {
    ip_batch_outcome *out;      /* outcomes in the order sent; IP_MAX_BATCH entries */
    u_int n;                    /* entries used */
    unsigned skipped;           /* items past IP_MAX_BATCH */
    create_item pending[BATCH_GROUP]; /* checked, not yet committed */
    size_t npending;            /* entries used */
};

static void
item_fail(create_item *it, failure *f)
{
    it->res->status = f->status;
    it->res->ip_task_create_res_u.message = f->message;
    f->status = IP_OK;
    f->message = NULL;
}

/* Drops what the item still holds: its row and its temporary file. */
static void
item_release(create_item *it)
{
    if (it->temp) {
        unlink(it->temp);
        free(it->temp);
    }
    free(it->rec);
    it->rec = NULL;
    it->temp = NULL;
}

/*
 * Checks a create request and writes its image to tmp/ (fsynced when
 * sync).  0 with it->rec ready to commit, or -1 with the refusal in
 * it->res.  Needs no lock: the slow parts (reading the image header,
 * writing the file) keep other calls waiting for nothing.
 */
static int
prepare_item(tasks *t, const char *owner, const ip_task_create_args *a, int sync,
             create_item *it)
{
    failure f = { IP_OK, NULL };
    char path[4096], *why = NULL;

    it->temp = NULL;
    it->synced = sync;
    it->rec = malloc(sizeof(*it->rec));
    if (!it->rec)
        set_fail(&f, IP_EINTERNAL, NULL);
    else if (prepare_create(t, owner, a, it->rec, &f) == 0 && !it->rec->upload) {
        const ip_image *im = &a->source.ip_task_source_u.image;
        if (store_write_temp(t->st, im->ip_image_val, im->ip_image_len, sync, path,
                             sizeof(path), &why))
            store_fail(&f, why);
        else if (!(it->temp = strdup(path))) {
            unlink(path);
            set_fail(&f, IP_EINTERNAL, NULL);
        }
    }
    if (f.status == IP_OK)
        return 0;
    item_release(it);
    item_fail(it, &f);
    return -1;
}

/*
 * Decides one checked item inside the open transaction: the task its token
 * already names, a refusal, or a new row.  *total and *queued count the
 * tasks as they grow.  1 when a row was added (its id in rec), 0 when not,
 * -1 when the store failed (f says why).
 */
static int
add_item(tasks *t, create_item *it, long *total, long *queued, double now, failure *f)
{
    store_task *rec = it->rec, *old;
    ip_task_create_res *res = it->res;
    char *why = NULL;
    int queue_now, found;

    if (rec->token[0]) {
        if (!(old = malloc(sizeof(*old)))) {
            set_fail(f, IP_EINTERNAL, NULL);
            return -1;
        }
        found = store_by_token(t->st, rec->owner, rec->token, old, &why);
        if (found > 0) {
            /* A retry of a create that worked: the same task, not a second one. */
            if (old->upload != rec->upload || old->size != rec->size ||
                old->spec_len != rec->spec_len ||
                memcmp(old->spec, rec->spec, rec->spec_len) ||
                (!rec->upload && strcmp(old->sha256, rec->sha256) != 0)) {
                set_fail(f, IP_EINVAL, proto_strdupf("token '%s' already names task %llu, "
                                                     "which has another image or pipeline",
                                                     rec->token, (unsigned long long)old->id));
                item_fail(it, f);
            } else {
                res->status = IP_OK;
                res->ip_task_create_res_u.created.id = old->id;
                res->ip_task_create_res_u.created.state = old->state;
                res->ip_task_create_res_u.created.existing = TRUE;
            }
        }
        free(old);
        if (found < 0) {
            store_fail(f, why);
            return -1;
        }
        if (found)
            return 0;
    }
    if ((unsigned long)*total >= t->cfg.max_tasks) {
        set_fail(f, IP_EBUSY, proto_strdupf("the server holds %ld tasks, its limit; delete "
                                            "finished ones or try later", *total));
        item_fail(it, f);
        return 0;
    }
    queue_now = !rec->hold && !rec->upload;
    if (queue_now && (unsigned long)*queued >= t->cfg.max_queued) {
        set_fail(f, IP_EBUSY, proto_strdupf("the queue is full (%ld tasks waiting); try again "
                                            "later", *queued));
        item_fail(it, f);
        return 0;
    }
    rec->created = now;
    rec->state = queue_now ? IP_TASK_QUEUED : IP_TASK_CREATED;
    rec->queued = queue_now ? now : 0;
    /* Waiting for an upload or a start does not keep a task forever. */
    rec->expires = queue_now ? 0 : expiry(t, now);
    if (store_add(t->st, rec, it->temp, &why)) {
        store_fail(f, why);
        return -1;
    }
    (*total)++;
    *queued += queue_now;
    res->status = IP_OK;
    res->ip_task_create_res_u.created.id = rec->id;
    res->ip_task_create_res_u.created.state = rec->state;
    return 1;
}

/*
 * Commits the checked items[0..n-1] in one transaction; each gets its
 * outcome.  A store failure fails every item that was to be added.
 */
static void
commit_items(tasks *t, create_item *items, size_t n)
{
    failure f = { IP_OK, NULL };
    uint64_t *added = calloc(n ? n : 1, sizeof(*added));
    size_t nadded = 0, i;
    long total, queued;
    int renamed = 0, rc = 0;
    char *why = NULL;
    double now;

    if (!added) {
        set_fail(&f, IP_EINTERNAL, NULL);
        goto fail_all;
    }
    for (i = 0; i < n; i++)
        if (items[i].temp && !items[i].synced)
            break;
    /* Outside the lock: the disk wait holds up no other call. */
    if (i < n && store_sync_temps(t->st, &why)) {
        store_fail(&f, why);
        goto fail_all;
    }
    pthread_mutex_lock(&t->lock);
    if (store_begin(t->st, &why)) {
        store_fail(&f, why);
        pthread_mutex_unlock(&t->lock);
        goto fail_all;
    }
    total = store_count(t->st, -1);
    queued = store_count(t->st, IP_TASK_QUEUED);
    if (total < 0 || queued < 0) {
        store_fail(&f, strdup("cannot count the tasks"));
        rc = -1;
    }
    now = wall_now();
    for (i = 0; i < n && rc >= 0; i++) {
        rc = add_item(t, &items[i], &total, &queued, now, &f);
        if (rc > 0) {
            added[nadded++] = items[i].rec->id;
            if (items[i].temp) {
                renamed = 1;
                free(items[i].temp);
                items[i].temp = NULL;
            }
        }
    }
    if (rc >= 0 && store_commit(t->st, renamed, &why)) {
        store_fail(&f, why);
        rc = -1;
    }
    if (rc < 0) {
        store_rollback(t->st, added, nadded);
        pthread_mutex_unlock(&t->lock);
        goto fail_all;
    }
    for (i = 0; i < n; i++) {
        const store_task *rec = items[i].rec;
        if (!rec || items[i].res->status != IP_OK || items[i].res->ip_task_create_res_u.created.existing)
            continue;
        srv_log(SRV_LOG_VERBOSE, "task %llu created (%s, %llu bytes, %s) by %s\n",
                    (unsigned long long)rec->id, proto_task_state_name(rec->state),
                    (unsigned long long)rec->size, rec->steps, rec->owner);
    }
    if (nadded) {
        pthread_cond_broadcast(&t->work);
        pthread_cond_signal(&t->sweep);
        changed(t);
    }
    pthread_mutex_unlock(&t->lock);
    for (i = 0; i < n; i++)
        item_release(&items[i]);
    free(added);
    return;

fail_all:
    /* Every item still waiting shares the reason. */
    for (i = 0; i < n; i++) {
        if (!items[i].rec)
            continue;
        xdr_free((xdrproc_t)xdr_ip_task_create_res, (char *)items[i].res);
        memset(items[i].res, 0, sizeof(*items[i].res));
        items[i].res->status = f.status;
        items[i].res->ip_task_create_res_u.message = strdup(f.message ? f.message : "failed");
        item_release(&items[i]);
    }
    free(f.message);
    free(added);
}

void
tasks_create(tasks *t, const char *owner, const ip_task_create_args *a,
             ip_task_create_res *res)
{
    create_item it = { NULL, NULL, 0, res };

    memset(res, 0, sizeof(*res));
    /* One task: its own fsync is cheaper than syncing the whole file system. */
    if (prepare_item(t, owner, a, 1, &it) == 0)
        commit_items(t, &it, 1);
}

/* ---- batches */

tasks_batch *
tasks_batch_new(void)
{
    return calloc(1, sizeof(tasks_batch));
}

static void
batch_flush(tasks *t, tasks_batch *b)
{
    if (b->npending)
        commit_items(t, b->pending, b->npending);
    b->npending = 0;
}

void
tasks_batch_add(tasks *t, tasks_batch *b, const char *owner, const ip_task_create_args *a)
{
    ip_batch_outcome *o;

    if (!b->out && !(b->out = calloc(IP_MAX_BATCH, sizeof(*b->out)))) {
        b->skipped++;
        return;
    }
    if (b->n >= IP_MAX_BATCH) {
        b->skipped++;
        return;
    }
    o = &b->out[b->n++];
    memset(o, 0, sizeof(*o));
    o->token = strdup(a->token);
    if (!o->token || !a->token[0]) {
        o->result.status = o->token ? IP_EINVAL : IP_EINTERNAL;
        o->result.ip_task_create_res_u.message =
            strdup(o->token ? "a batched item needs a token, to tell its outcome apart"
                            : "out of memory");
        if (!o->token)
            o->token = strdup("");
        return;
    }
    b->pending[b->npending].res = &o->result;
    if (prepare_item(t, owner, a, 0, &b->pending[b->npending]) == 0 &&
        ++b->npending == BATCH_GROUP)
        batch_flush(t, b);
}

void
tasks_batch_skip(tasks_batch *b)
{
    b->skipped++;
}

void
tasks_batch_collect(tasks *t, tasks_batch *b, ip_batch_res *res)
{
    memset(res, 0, sizeof(*res));
    batch_flush(t, b);
    res->status = IP_OK;
    res->ip_batch_res_u.report.items.items_len = b->n;
    res->ip_batch_res_u.report.items.items_val = b->out;
    res->ip_batch_res_u.report.skipped = b->skipped;
    /* The outcomes now belong to the result. */
    b->out = NULL;
    b->n = 0;
    b->skipped = 0;
}

void
tasks_batch_free(tasks *t, tasks_batch *b)
{
    ip_batch_report r;

    if (!b)
        return;
    (void)t;
    /* Never collected: nothing was acknowledged, so nothing is committed. */
    for (size_t i = 0; i < b->npending; i++)
        item_release(&b->pending[i]);
    r.items.items_len = b->n;
    r.items.items_val = b->out;
    r.skipped = 0;
    xdr_free((xdrproc_t)xdr_ip_batch_report, (char *)&r);
    free(b);
}

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
        set_fail(&f, IP_EINTERNAL, NULL);
        goto done;
    }
    pthread_mutex_lock(&t->lock);
    if (load_owned(t, owner, a->id, rec, &f))
        goto unlock;
    if (!rec->upload) {
        set_fail(&f, IP_ESTATE, proto_strdupf("task %llu came with its image; there is nothing to "
                                       "upload", (unsigned long long)a->id));
        goto unlock;
    }
    if (rec->sha256[0]) {
        /* Complete already: a retried chunk (its reply was lost) is fine. */
        if (a->offset <= rec->size && len <= rec->size - a->offset)
            goto ok;
        set_fail(&f, IP_ESTATE, proto_strdupf("task %llu has its whole image (%llu bytes) already",
                                       (unsigned long long)a->id,
                                       (unsigned long long)rec->size));
        goto unlock;
    }
    if (rec->state != IP_TASK_CREATED) {
        set_fail(&f, IP_ESTATE, state_msg(rec, "an upload needs a created task"));
        goto unlock;
    }
    /* The chunk that completes an unheld task queues it: is there room? */
    if (!rec->hold && a->offset <= rec->received && a->offset + len == rec->size &&
        queue_room(t, &f))
        goto unlock;
    if (store_append(t->st, a->id, rec->size, a->offset, a->data.data_val, len, &got, &st,
                     &why)) {
        if (st == IP_EINTERNAL)
            store_fail(&f, why);
        else
            set_fail(&f, st, why);
        goto unlock;
    }
    /* The bytes this chunk added to the file: [received, got). */
    if (got > rec->received)
        hash_feed(t, a->id, rec->received, a->data.data_val + (rec->received - a->offset),
                  (size_t)(got - rec->received));
    rec->received = got;
    if (got == rec->size) {
        upload_hash *h = hash_find(t, a->id);
        char known[65] = "";
        if (h && h->hashed == got && proto_sha256_final(h->sha, known) < 0)
            known[0] = '\0';
        hash_drop(h);
        if (store_upload_done(t->st, a->id, known[0] ? known : NULL, rec->sha256, &why)) {
            store_fail(&f, why);
            goto unlock;
        }
        if (!rec->hold) {
            if (store_move(t->st, a->id, 1u << IP_TASK_CREATED, IP_TASK_QUEUED, wall_now(), 0,
                           &why) < 0) {
                store_fail(&f, why);
                goto unlock;
            }
            rec->state = IP_TASK_QUEUED;
            pthread_cond_signal(&t->work);
        }
        changed(t);
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

void
tasks_start(tasks *t, const char *owner, ip_task_id id, ip_task_res *res)
{
    store_task *rec = malloc(sizeof(*rec));
    failure f = { IP_OK, NULL };
    char *why = NULL;
    int moved;

    memset(res, 0, sizeof(*res));
    if (!rec) {
        set_fail(&f, IP_EINTERNAL, NULL);
        goto done;
    }
    pthread_mutex_lock(&t->lock);
    if (load_owned(t, owner, id, rec, &f))
        goto unlock;
    if (rec->state != IP_TASK_CREATED) {
        set_fail(&f, IP_ESTATE, state_msg(rec, "only a created task can be started"));
        goto unlock;
    }
    if (rec->upload && !rec->sha256[0]) {
        set_fail(&f, IP_ESTATE, proto_strdupf("task %llu has %llu of its %llu bytes; upload the "
                                       "rest before starting it", (unsigned long long)id,
                                       (unsigned long long)rec->received,
                                       (unsigned long long)rec->size));
        goto unlock;
    }
    if (queue_room(t, &f))
        goto unlock;
    moved = store_move(t->st, id, 1u << IP_TASK_CREATED, IP_TASK_QUEUED, wall_now(), 0, &why);
    if (moved < 0) {
        store_fail(&f, why);
        goto unlock;
    }
    res->status = IP_OK;
    res->ip_task_res_u.state = IP_TASK_QUEUED;
    pthread_cond_signal(&t->work);
    changed(t);
unlock:
    pthread_mutex_unlock(&t->lock);
done:
    if (f.status != IP_OK) {
        res->status = f.status;
        res->ip_task_res_u.message = f.message;
    }
    free(rec);
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
        set_fail(&f, IP_EINTERNAL, NULL);
        goto done;
    }
    clock_gettime(CLOCK_MONOTONIC, &now);
    deadline = (double)now.tv_sec + now.tv_nsec / 1e9 + (may_block ? secs : 0);
    pthread_mutex_lock(&t->lock);
    for (;;) {
        struct timespec until = to_timespec(deadline);
        if (load_owned(t, owner, a->id, rec, &f))
            break;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (rec->state != a->seen || __atomic_load_n(&t->stopping, __ATOMIC_RELAXED) ||
            (double)now.tv_sec + now.tv_nsec / 1e9 >= deadline) {
            res->status = IP_OK;
            fill_info(t, rec, &res->ip_task_info_res_u.info);
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

void
tasks_result(tasks *t, const char *owner, const ip_task_result_args *a,
             ip_task_result_res *res)
{
    store_task *rec = malloc(sizeof(*rec));
    ip_task_chunk *c = &res->ip_task_result_res_u.chunk;
    failure f = { IP_OK, NULL };
    char path[4096];
    size_t want, have = 0;
    int fd = -1;

    memset(res, 0, sizeof(*res));
    if (!rec) {
        set_fail(&f, IP_EINTERNAL, NULL);
        goto done;
    }
    if (a->count > IP_MAX_CHUNK) {
        set_fail(&f, IP_EINVAL, proto_strdupf("count %u; a chunk is at most %d bytes", a->count,
                                       IP_MAX_CHUNK));
        goto done;
    }
    pthread_mutex_lock(&t->lock);
    if (load_owned(t, owner, a->id, rec, &f))
        goto unlock;
    if (rec->state == IP_TASK_FAILED) {
        set_fail(&f, IP_ESTATE, proto_strdupf("task %llu failed (%s: %s); it has no result",
                                       (unsigned long long)a->id,
                                       proto_status_name(rec->error_status), rec->error));
        goto unlock;
    }
    if (rec->state != IP_TASK_DONE) {
        set_fail(&f, IP_ESTATE, state_msg(rec, "a result exists once it is done"));
        goto unlock;
    }
    if (a->offset > rec->result_size) {
        set_fail(&f, IP_EINVAL, proto_strdupf("offset %llu is past the end of the result (%llu bytes)",
                                       (unsigned long long)a->offset,
                                       (unsigned long long)rec->result_size));
        goto unlock;
    }
    /* Opened under the lock; read outside it.  A delete meanwhile unlinks
     * the name, not the open file. */
    store_path(t->st, STORE_RESULT, a->id, path, sizeof(path));
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        store_fail(&f, proto_strdupf("cannot open '%s': %s", path, strerror(errno)));
unlock:
    pthread_mutex_unlock(&t->lock);
    if (fd < 0)
        goto done;
    want = a->count;
    if (want > rec->result_size - a->offset)
        want = (size_t)(rec->result_size - a->offset);
    c->data.data_val = malloc(want ? want : 1);
    while (c->data.data_val && have < want) {
        ssize_t n = pread(fd, c->data.data_val + have, want - have, (off_t)(a->offset + have));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        have += (size_t)n;
    }
    close(fd);
    if (!c->data.data_val || have != want) {
        free(c->data.data_val);
        c->data.data_val = NULL;
        store_fail(&f, proto_strdupf("cannot read the result of task %llu",
                                 (unsigned long long)a->id));
        goto done;
    }
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

void
tasks_cancel(tasks *t, const char *owner, ip_task_id id, ip_task_res *res)
{
    store_task *rec = malloc(sizeof(*rec));
    failure f = { IP_OK, NULL };
    char *why = NULL;
    double now;

    memset(res, 0, sizeof(*res));
    if (!rec) {
        set_fail(&f, IP_EINTERNAL, NULL);
        goto done;
    }
    pthread_mutex_lock(&t->lock);
    if (load_owned(t, owner, id, rec, &f))
        goto unlock;
    if (proto_task_final(rec->state)) {
        set_fail(&f, IP_ESTATE, state_msg(rec, "only a created, queued or running task can "
                                               "be cancelled"));
        goto unlock;
    }
    now = wall_now();
    if (store_move(t->st, id, (1u << IP_TASK_CREATED) | (1u << IP_TASK_QUEUED) |
                   (1u << IP_TASK_RUNNING), IP_TASK_CANCELLED, now, expiry(t, now), &why) < 0) {
        store_fail(&f, why);
        goto unlock;
    }
    res->status = IP_OK;
    res->ip_task_res_u.state = IP_TASK_CANCELLED;
    pthread_cond_signal(&t->sweep);
    changed(t);
    stop_worker(t, id);
unlock:
    pthread_mutex_unlock(&t->lock);
done:
    if (f.status != IP_OK) {
        res->status = f.status;
        res->ip_task_res_u.message = f.message;
    }
    free(rec);
}

void
tasks_delete(tasks *t, const char *owner, ip_task_id id, ip_task_res *res)
{
    store_task *rec = malloc(sizeof(*rec));
    failure f = { IP_OK, NULL };
    char *why = NULL;

    memset(res, 0, sizeof(*res));
    if (!rec) {
        set_fail(&f, IP_EINTERNAL, NULL);
        goto done;
    }
    pthread_mutex_lock(&t->lock);
    if (load_owned(t, owner, id, rec, &f))
        goto unlock;
    if (store_delete(t->st, id, &why) < 0) {
        store_fail(&f, why);
        goto unlock;
    }
    hash_drop(hash_find(t, id));
    res->status = IP_OK;
    res->ip_task_res_u.state = rec->state;
    changed(t);
    stop_worker(t, id);
unlock:
    pthread_mutex_unlock(&t->lock);
done:
    if (f.status != IP_OK) {
        res->status = f.status;
        res->ip_task_res_u.message = f.message;
    }
    free(rec);
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
        set_fail(&f, IP_EINTERNAL, NULL);
        goto done;
    }
    if (a->states >> PROTO_NSTATES) {
        set_fail(&f, IP_EINVAL, proto_strdupf("states 0x%x names no such state", a->states));
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
        store_fail(&f, why);
    else {
        page->tasks.tasks_val = calloc((size_t)n + 1, sizeof(ip_task_info));
        page->tasks.tasks_len = (u_int)n;
        for (int i = 0; i < n; i++)
            fill_info(t, &recs[i], &page->tasks.tasks_val[i]);
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

/* ------------------------------------------------------------- workers */

/* Why a worker stopped its task's pipeline. */
enum { STOP_NONE, STOP_ASKED, STOP_TIME };

static int
on_progress(void *ctx, int percent)
{
    worker *w = ctx;
    int why = STOP_NONE;

    __atomic_store_n(&w->progress, percent, __ATOMIC_RELAXED);
    if (__atomic_load_n(&w->cancel, __ATOMIC_RELAXED) ||
        __atomic_load_n(&w->t->stopping, __ATOMIC_RELAXED))
        why = STOP_ASKED;
    else if (proto_seconds() > w->deadline)
        why = STOP_TIME;
    if (why != STOP_NONE)
        __atomic_store_n(&w->stopped, why, __ATOMIC_RELAXED);
    return why != STOP_NONE;
}

/* A task over its time budget fails for good; a cancel or a shutdown is not a failure. */
static int
on_stopped(void *ctx, ip_status *st, char *msg, size_t len)
{
    worker *w = ctx;

    switch (__atomic_load_n(&w->stopped, __ATOMIC_RELAXED)) {
    case STOP_ASKED:
        *st = IP_ESTATE;
        snprintf(msg, len, "stopped before the end");
        return 1;
    case STOP_TIME:
        *st = IP_ETOOBIG;
        snprintf(msg, len, "stopped after %u s: the work exceeds this server's budget for "
                 "a task (--max-task-seconds %u)", w->t->cfg.max_task_seconds,
                 w->t->cfg.max_task_seconds);
        return 1;
    default:
        return 0;
    }
}

/*
 * Runs rec's pipeline on its input file.  On success the result is in a
 * temporary file (path in temp) and rec holds DONE and the result's facts;
 * otherwise rec holds FAILED and why.  Returns 1 when it was stopped from
 * outside (cancel, delete, shutdown), else 0.
 */
static int
run_task(tasks *t, worker *w, store_task *rec, char *temp, size_t templen)
{
    ops_watch watch = { on_progress, on_stopped, w };
    ip_task_spec spec;
    ip_image_res res;
    char path[4096];
    char *why = NULL;
    void *map = MAP_FAILED;
    int fd, stopped = 0;
    XDR x;

    memset(&spec, 0, sizeof(spec));
    memset(&res, 0, sizeof(res));
    temp[0] = '\0';
    rec->state = IP_TASK_FAILED;
    rec->error_status = IP_EINTERNAL;
    store_path(t->st, STORE_INPUT, rec->id, path, sizeof(path));
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0 && rec->size > 0)
        map = mmap(NULL, rec->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        snprintf(rec->error, sizeof(rec->error), "cannot read the stored image: %s",
                 strerror(errno));
        goto cleanup;
    }
    xdrmem_create(&x, (char *)rec->spec, (u_int)rec->spec_len, XDR_DECODE);
    if (!xdr_ip_task_spec(&x, &spec)) {
        xdr_destroy(&x);
        snprintf(rec->error, sizeof(rec->error), "the stored pipeline is damaged");
        goto cleanup;
    }
    xdr_destroy(&x);
    w->deadline = proto_seconds() + t->cfg.max_task_seconds;
    __atomic_store_n(&w->stopped, STOP_NONE, __ATOMIC_RELAXED);
    ops_process(&t->lim, map, rec->size, spec.steps.steps_val, spec.steps.steps_len,
                &spec.output, &watch, &res);
    if (res.status != IP_OK) {
        /* Asked to stop (cancel, delete, shutdown), not over its budget. */
        stopped = __atomic_load_n(&w->stopped, __ATOMIC_RELAXED) == STOP_ASKED;
        rec->error_status = res.status;
        snprintf(rec->error, sizeof(rec->error), "%s", res.ip_image_res_u.message);
        goto cleanup;
    }
    if (store_write_temp(t->st, res.ip_image_res_u.ok.image.ip_image_val,
                         res.ip_image_res_u.ok.image.ip_image_len, 1, temp, templen,
                         &why)) {
        snprintf(rec->error, sizeof(rec->error), "cannot store the result: %s",
                 why ? why : "?");
        free(why);
        goto cleanup;
    }
    rec->state = IP_TASK_DONE;
    rec->error_status = IP_OK;
    rec->error[0] = '\0';
    rec->result_size = res.ip_image_res_u.ok.image.ip_image_len;
    rec->result_format = res.ip_image_res_u.ok.format;
    rec->width = res.ip_image_res_u.ok.width;
    rec->height = res.ip_image_res_u.ok.height;
    rec->bands = res.ip_image_res_u.ok.bands;

cleanup:
    if (res.status == IP_OK)
        ops_free_image_res(&res);
    else
        xdr_free((xdrproc_t)xdr_ip_image_res, (char *)&res);
    xdr_free((xdrproc_t)xdr_ip_task_spec, (char *)&spec);
    if (map != MAP_FAILED)
        munmap(map, rec->size);
    if (fd >= 0)
        close(fd);
    return stopped;
}

static void *
worker_main(void *p)
{
    worker *w = p;
    tasks *t = w->t;
    store_task *rec = malloc(sizeof(*rec));
    char temp[4096];
    char *why = NULL;

    pthread_mutex_lock(&t->lock);
    while (rec && !t->stopping) {
        double t0, now;
        int r = store_claim(t->st, wall_now(), rec, &why), stopped;
        if (r < 0) {
            srv_log(SRV_LOG_ERROR, "worker: %s\n", why ? why : "cannot read the queue");
            free(why);
            why = NULL;
            struct timespec ts = to_timespec(wall_now() + 1);
            pthread_cond_timedwait(&t->sweep, &t->lock, &ts);
            continue;
        }
        if (r == 0) {
            pthread_cond_wait(&t->work, &t->lock);
            continue;
        }
        w->task_id = rec->id;
        __atomic_store_n(&w->progress, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&w->cancel, 0, __ATOMIC_RELAXED);
        changed(t);
        pthread_mutex_unlock(&t->lock);

        t0 = wall_now();
        stopped = run_task(t, w, rec, temp, sizeof(temp));
        now = wall_now();

        pthread_mutex_lock(&t->lock);
        if (stopped && t->stopping && !w->cancel) {
            /* Shutdown, not the task's fault: it runs again at the next start. */
            if (store_requeue(t->st, rec->id, &why) < 0)
                srv_log(SRV_LOG_ERROR, "task %llu: %s\n", (unsigned long long)rec->id, why);
            if (temp[0])
                unlink(temp);
        } else {
            int r2 = store_finish(t->st, rec->id, rec, temp[0] ? temp : NULL, now,
                                  expiry(t, now), &why);
            if (r2 < 0)
                srv_log(SRV_LOG_ERROR, "task %llu: %s\n", (unsigned long long)rec->id, why);
            else
                srv_log(SRV_LOG_VERBOSE, "task %llu %s in %.2fs%s%s\n",
                        (unsigned long long)rec->id,
                        r2 == 0 ? "stopped" : proto_task_state_name(rec->state), now - t0,
                        rec->state == IP_TASK_FAILED && r2 ? ": " : "",
                        rec->state == IP_TASK_FAILED && r2 ? rec->error : "");
            pthread_cond_signal(&t->sweep);
        }
        free(why);
        why = NULL;
        w->task_id = 0;
        changed(t);
    }
    pthread_mutex_unlock(&t->lock);
    free(rec);
    ops_thread_done();
    return NULL;
}

/* ------------------------------------------------------------- sweeper */

static void *
sweeper_main(void *p)
{
    tasks *t = p;
    char *why = NULL;

    pthread_mutex_lock(&t->lock);
    while (!t->stopping) {
        double now = wall_now(), next = now + SWEEP_MAX_SLEEP, when;
        struct timespec until;
        int n = store_sweep(t->st, now, &why);

        if (n < 0) {
            srv_log(SRV_LOG_ERROR, "sweeper: %s\n", why ? why : "failed");
            free(why);
            why = NULL;
        } else if (n > 0) {
            srv_log(SRV_LOG_VERBOSE, "%d expired task%s removed\n", n, n == 1 ? "" : "s");
            changed(t);
        }
        if (n >= 0 && store_next_expiry(t->st, &when) && when < next)
            next = when;
        /* Never spin: at least 10 ms apart, 1 s after an error. */
        if (next < now + (n < 0 ? 1.0 : 0.01))
            next = now + (n < 0 ? 1.0 : 0.01);
        until = to_timespec(next);
        pthread_cond_timedwait(&t->sweep, &t->lock, &until);
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

/* ------------------------------------------------------------- life */

tasks *
tasks_open(const tasks_config *cfg, const ops_limits *lim, char **why)
{
    tasks *t = calloc(1, sizeof(*t));
    pthread_condattr_t ca;
    int requeued, failed;
    double now = wall_now();

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

    if (!(t->st = store_open(cfg->state_dir, why)))
        goto fail;
    if (store_recover(t->st, MAX_ATTEMPTS, now, expiry(t, now), &requeued, &failed, why))
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
        if (pthread_create(&t->workers[i].thread, NULL, worker_main, &t->workers[i]) != 0) {
            *why = strdup("cannot start a worker thread");
            goto fail;
        }
        t->nworkers++;
    }
    if (pthread_create(&t->sweeper, NULL, sweeper_main, t) != 0) {
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
        hash_drop(&t->hashes[i]);
    free(t->workers);
    pthread_cond_destroy(&t->work);
    pthread_cond_destroy(&t->sweep);
    pthread_cond_destroy(&t->changed);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

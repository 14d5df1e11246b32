/* tasks_create.c - making tasks: checks, the image to disk, and batches committed together. */
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

/*
 * Checks a create request and fills rec from it.  0, or -1 with f.  Long
 * (about 90 lines): one check after another, each with its own message.
 */
static int
prepare_create(tasks *t, const char *owner, const ip_task_create_args *a, store_task *rec,
               failure *f)
{
    const ip_task_spec *spec = &a->spec;
    char why[IP_MAX_MESSAGE];
    ip_status st;
    XDR x;

    if (spec->steps.steps_len > t->cfg.max_steps) {
        tk_set_fail(f, IP_ETOOBIG, proto_strdupf("%u steps; this server runs at most %u",
                                       spec->steps.steps_len, t->cfg.max_steps));
        return -1;
    }
    if (ops_validate(spec->steps.steps_val, spec->steps.steps_len, &spec->output, &st,
                     why, sizeof(why))) {
        tk_set_fail(f, st, strdup(why));
        return -1;
    }
    if (!token_ok(a->token)) {
        tk_set_fail(f, IP_EINVAL, strdup("the token holds control characters"));
        return -1;
    }
    memset(rec, 0, sizeof(*rec));
    if (a->source.kind == IP_SOURCE_INLINE) {
        const ip_image *im = &a->source.ip_task_source_u.image;
        ip_info_res info;
        if (im->ip_image_len == 0) {
            tk_set_fail(f, IP_EINVAL, strdup("empty image: no bytes were sent"));
            return -1;
        }
        if (im->ip_image_len > t->cfg.max_inline_bytes) {
            tk_set_fail(f, IP_ETOOBIG, proto_strdupf("the image is %u bytes; this server accepts at "
                                           "most %llu in one call (use an upload)",
                                           im->ip_image_len,
                                           (unsigned long long)t->cfg.max_inline_bytes));
            return -1;
        }
        /* Refuse what is not an image now, not after a trip through the queue. */
        memset(&info, 0, sizeof(info));
        ops_info(&t->lim, im->ip_image_val, im->ip_image_len, &info);
        if (info.status != IP_OK) {
            tk_set_fail(f, info.status, strdup(info.ip_info_res_u.message));
            xdr_free((xdrproc_t)xdr_ip_info_res, (char *)&info);
            return -1;
        }
        if ((uint64_t)info.ip_info_res_u.info.width * info.ip_info_res_u.info.height >
            t->lim.max_pixels) {
            tk_set_fail(f, IP_ETOOBIG, proto_strdupf("the image is %ux%u pixels; this server accepts "
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
            tk_set_fail(f, IP_EINVAL, strdup("an upload of 0 bytes: declare the image's size"));
            return -1;
        }
        if (size > t->cfg.max_upload_bytes) {
            tk_set_fail(f, IP_ETOOBIG, proto_strdupf("the image is %llu bytes; this server accepts "
                                           "at most %llu", (unsigned long long)size,
                                           (unsigned long long)t->cfg.max_upload_bytes));
            return -1;
        }
        rec->upload = 1;
        rec->size = size;
    } else {
        tk_set_fail(f, IP_EINVAL, proto_strdupf("unknown image source %d", (int)a->source.kind));
        return -1;
    }
    xdrmem_create(&x, (char *)rec->spec, sizeof(rec->spec), XDR_ENCODE);
    if (!xdr_ip_task_spec(&x, (ip_task_spec *)spec)) {
        xdr_destroy(&x);
        tk_set_fail(f, IP_EINVAL, strdup("the pipeline cannot be stored"));
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
        tk_set_fail(&f, IP_EINTERNAL, NULL);
    else if (prepare_create(t, owner, a, it->rec, &f) == 0 && !it->rec->upload) {
        const ip_image *im = &a->source.ip_task_source_u.image;
        if (store_write_temp(t->st, im->ip_image_val, im->ip_image_len, sync, path,
                             sizeof(path), &why))
            tk_store_fail(&f, why);
        else if (!(it->temp = strdup(path))) {
            unlink(path);
            tk_set_fail(&f, IP_EINTERNAL, NULL);
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
            tk_set_fail(f, IP_EINTERNAL, NULL);
            return -1;
        }
        found = store_by_token(t->st, rec->owner, rec->token, old, &why);
        if (found > 0) {
            /* A retry of a create that worked: the same task, not a second one. */
            if (old->upload != rec->upload || old->size != rec->size ||
                old->spec_len != rec->spec_len ||
                memcmp(old->spec, rec->spec, rec->spec_len) ||
                (!rec->upload && strcmp(old->sha256, rec->sha256) != 0)) {
                tk_set_fail(f, IP_EINVAL, proto_strdupf("token '%s' already names task %llu, "
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
            tk_store_fail(f, why);
            return -1;
        }
        if (found)
            return 0;
    }
    if ((unsigned long)*total >= t->cfg.max_tasks) {
        tk_set_fail(f, IP_EBUSY, proto_strdupf("the server holds %ld tasks, its limit; delete "
                                            "finished ones or try later", *total));
        item_fail(it, f);
        return 0;
    }
    queue_now = !rec->hold && !rec->upload;
    if (queue_now && (unsigned long)*queued >= t->cfg.max_queued) {
        tk_set_fail(f, IP_EBUSY, proto_strdupf("the queue is full (%ld tasks waiting); try again "
                                            "later", *queued));
        item_fail(it, f);
        return 0;
    }
    rec->created = now;
    rec->state = queue_now ? IP_TASK_QUEUED : IP_TASK_CREATED;
    rec->queued = queue_now ? now : 0;
    /* Waiting for an upload or a start does not keep a task forever. */
    rec->expires = queue_now ? 0 : tk_expiry(t, now);
    if (store_add(t->st, rec, it->temp, &why)) {
        tk_store_fail(f, why);
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
 * outcome.  A store failure fails every item that was to be added.  Long
 * (about 85 lines): the transaction's steps and its rollback read together.
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
        tk_set_fail(&f, IP_EINTERNAL, NULL);
        goto fail_all;
    }
    for (i = 0; i < n; i++)
        if (items[i].temp && !items[i].synced)
            break;
    /* Outside the lock: the disk wait holds up no other call. */
    if (i < n && store_sync_temps(t->st, &why)) {
        tk_store_fail(&f, why);
        goto fail_all;
    }
    pthread_mutex_lock(&t->lock);
    if (store_begin(t->st, &why)) {
        tk_store_fail(&f, why);
        pthread_mutex_unlock(&t->lock);
        goto fail_all;
    }
    total = store_count(t->st, -1);
    queued = store_count(t->st, IP_TASK_QUEUED);
    if (total < 0 || queued < 0) {
        tk_store_fail(&f, strdup("cannot count the tasks"));
        rc = -1;
    }
    now = tk_wall_now();
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
        tk_store_fail(&f, why);
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
        tk_changed(t);
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


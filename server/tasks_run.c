/* tasks_run.c - the worker pool that runs queued tasks, and the sweeper that expires them. */
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

/* ------------------------------------------------------------- workers */

/* Why a worker stopped its task's pipeline. */
enum { STOP_NONE, STOP_ASKED, STOP_TIME };

#define IDLE_LOOK_SECONDS 10   /* a shared store's idle worker looks at the queue this often */
#define RUN_AGAIN 2             /* run_task(): not run; give the task back to the queue */

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
 * outside (cancel, delete, shutdown), RUN_AGAIN when its input could not be
 * read (a shared store out of reach), else 0.
 */
static int
run_task(tasks *t, worker *w, store_task *rec, char *temp, size_t templen)
{
    ops_watch watch = { on_progress, on_stopped, w };
    ip_task_spec spec;
    ops_file_res res;
    char path[4096];
    char *why = NULL;
    int stopped = 0, copy = 0;
    XDR x;

    memset(&spec, 0, sizeof(spec));
    temp[0] = '\0';
    rec->state = IP_TASK_FAILED;
    rec->error_status = IP_EINTERNAL;
    xdrmem_create(&x, (char *)rec->spec, (u_int)rec->spec_len, XDR_DECODE);
    if (!xdr_ip_task_spec(&x, &spec)) {
        xdr_destroy(&x);
        snprintf(rec->error, sizeof(rec->error), "the stored pipeline is damaged");
        goto cleanup;
    }
    xdr_destroy(&x);
    /* The result is encoded straight into a file of tmp/, renamed into out/
     * when the task is marked done: neither image is held whole in memory. */
    if (store_write_temp(t->st, NULL, 0, 0, temp, templen, &why)) {
        snprintf(rec->error, sizeof(rec->error), "cannot store the result: %s",
                 why ? why : "?");
        free(why);
        goto cleanup;
    }
    if (store_input(t->st, rec->id, path, sizeof(path), &copy, &why)) {
        /* The database out of reach is not the task's fault: it runs later. */
        srv_log(SRV_LOG_ERROR, "task %llu: cannot read the input: %s\n",
                (unsigned long long)rec->id, why ? why : "?");
        free(why);
        unlink(temp);
        temp[0] = '\0';
        stopped = RUN_AGAIN;
        goto cleanup;
    }
    w->deadline = proto_seconds() + t->cfg.max_task_seconds;
    __atomic_store_n(&w->stopped, STOP_NONE, __ATOMIC_RELAXED);
    if (ops_process_file(&t->lim, path, temp, spec.steps.steps_val, spec.steps.steps_len,
                         &spec.output, &watch, &res)) {
        /* Asked to stop (cancel, delete, shutdown), not over its budget. */
        stopped = __atomic_load_n(&w->stopped, __ATOMIC_RELAXED) == STOP_ASKED;
        rec->error_status = res.status;
        snprintf(rec->error, sizeof(rec->error), "%s", res.msg);
        unlink(temp);
        temp[0] = '\0';
        goto cleanup;
    }
    /* ops_process_file synced it: on disk before the database says done. */
    rec->state = IP_TASK_DONE;
    rec->error_status = IP_OK;
    rec->error[0] = '\0';
    rec->result_size = res.size;
    rec->result_format = res.format;
    rec->width = res.width;
    rec->height = res.height;
    rec->bands = res.bands;

cleanup:
    if (copy)
        unlink(path);
    xdr_free((xdrproc_t)xdr_ip_task_spec, (char *)&spec);
    return stopped;
}

/*
 * Records what run_task() made of rec (temp: its result file, or "").
 * Called under the lock, which it lets go while a shared store copies the
 * result.  A store out of reach is tried again each second, while the claim
 * may still be ours: a late result is refused by the store itself (its
 * fencing token), so trying costs nothing.  The store_finish() answer.
 */
static int
record_result(tasks *t, worker *w, store_task *rec, char *temp, double now)
{
    char *why = NULL;
    int r = -1;

    for (int tries = 0;; tries++) {
        pthread_mutex_unlock(&t->lock);
        r = temp[0] ? store_put_result(t->st, rec, temp, &why) : 0;
        pthread_mutex_lock(&t->lock);
        if (r == 0)
            r = store_finish(t->st, rec->id, rec, temp[0] ? temp : NULL, now,
                             tk_expiry(t, now), &why);
        if (r == 0 && why)     /* refused: the store says why */
            srv_log(SRV_LOG_NOTICE, "task %llu: %s\n", (unsigned long long)rec->id, why);
        if (r >= 0)
            break;
        srv_log(tries ? SRV_LOG_VERBOSE : SRV_LOG_ERROR, "task %llu: %s%s\n",
                (unsigned long long)rec->id, why ? why : "cannot record the result",
                store_shared(t->st) ? "; its result is kept and sent again each second" : "");
        free(why);
        why = NULL;
        if (!store_shared(t->st) || w->lost || t->stopping)
            break;
        struct timespec ts = tk_to_timespec(tk_wall_now() + 1);
        pthread_cond_timedwait(&t->sweep, &t->lock, &ts);
    }
    free(why);
    /* A shared store holds a copy; SQLite's store_finish() renamed or removed it. */
    if (temp[0] && store_shared(t->st))
        unlink(temp);
    return r;
}

void *
tk_worker_main(void *p)
{
    worker *w = p;
    tasks *t = w->t;
    store_task *rec = malloc(sizeof(*rec));
    char temp[4096];
    char *why = NULL;

    pthread_mutex_lock(&t->lock);
    while (rec && !t->stopping) {
        double t0, now;
        int r = store_claim(t->st, tk_wall_now(), rec, &why), stopped;
        if (r < 0) {
            srv_log(SRV_LOG_ERROR, "worker: %s\n", why ? why : "cannot read the queue");
            free(why);
            why = NULL;
            struct timespec ts = tk_to_timespec(tk_wall_now() + 1);
            pthread_cond_timedwait(&t->sweep, &t->lock, &ts);
            continue;
        }
        if (r == 0) {
            if (store_shared(t->st)) {
                /* Another server's task is announced by NOTIFY; a listener
                 * that lost its connection may miss one: look now and then. */
                struct timespec ts = tk_to_timespec(tk_wall_now() + IDLE_LOOK_SECONDS);
                pthread_cond_timedwait(&t->work, &t->lock, &ts);
            } else
                pthread_cond_wait(&t->work, &t->lock);
            continue;
        }
        w->task_id = rec->id;
        w->attempt = rec->attempts;
        w->lost = 0;
        __atomic_store_n(&w->progress, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&w->cancel, 0, __ATOMIC_RELAXED);
        tk_changed(t);
        pthread_mutex_unlock(&t->lock);

        t0 = tk_wall_now();
        stopped = run_task(t, w, rec, temp, sizeof(temp));
        now = tk_wall_now();

        pthread_mutex_lock(&t->lock);
        if ((stopped && t->stopping && !w->cancel) || stopped == RUN_AGAIN) {
            /* Shutdown, or its input out of reach: not the task's fault.  It
             * runs again (if the store cannot take it back now either, its
             * claim lapses and another server's renewal does). */
            if (store_requeue(t->st, rec, &why) < 0)
                srv_log(SRV_LOG_ERROR, "task %llu: %s\n", (unsigned long long)rec->id, why);
            if (temp[0])
                unlink(temp);
            if (stopped == RUN_AGAIN && !t->stopping) {
                /* A second before the next claim: no loop at full speed. */
                struct timespec ts = tk_to_timespec(tk_wall_now() + 1);
                w->task_id = 0;
                pthread_cond_timedwait(&t->sweep, &t->lock, &ts);
            }
        } else {
            int r2 = record_result(t, w, rec, temp, now);
            if (r2 >= 0)
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
        tk_changed(t);
    }
    pthread_mutex_unlock(&t->lock);
    free(rec);
    ops_thread_done();
    return NULL;
}

/* ------------------------------------------------------------- sweeper */

/*
 * Shared store: renews the claims of the tasks this server runs, stops the
 * ones another server took meanwhile, and puts back into the queue the
 * tasks of servers that stopped renewing theirs.  Called under the lock,
 * which it lets go while the database answers.
 */
static void
renew_claims(tasks *t)
{
    uint64_t ids[t->nworkers + 1];
    size_t lost[t->nworkers + 1], n = 0;
    int attempts[t->nworkers + 1], requeued = 0, nlost;
    double snapshot = tk_wall_now();
    char *why = NULL;

    for (unsigned i = 0; i < t->nworkers; i++)
        if (t->workers[i].task_id) {
            ids[n] = t->workers[i].task_id;
            attempts[n++] = t->workers[i].attempt;
        }
    /* Its own connection: the lock is not held while the database answers. */
    pthread_mutex_unlock(&t->lock);
    nlost = store_renew(t->st, ids, attempts, n, snapshot, lost, &requeued, &why);
    pthread_mutex_lock(&t->lock);
    if (nlost < 0) {
        srv_log(SRV_LOG_ERROR, "cannot renew the claims of running tasks: %s\n",
                why ? why : "?");
        free(why);
        return;
    }
    for (int i = 0; i < nlost; i++) {
        /* The worker running that attempt, if it still does. */
        for (unsigned k = 0; k < t->nworkers; k++) {
            worker *w = &t->workers[k];
            if (w->task_id != ids[lost[i]] || w->attempt != attempts[lost[i]])
                continue;
            srv_log(SRV_LOG_NOTICE, "task %llu: attempt %d is no longer this server's "
                    "(cancelled, deleted, or its claim lapsed); stopping it\n",
                    (unsigned long long)w->task_id, w->attempt);
            w->lost = 1;
            __atomic_store_n(&w->cancel, 1, __ATOMIC_RELAXED);
        }
    }
    if (requeued > 0) {
        srv_log(SRV_LOG_NOTICE, "%d task%s whose server stopped renewing %s claim queued "
                "again\n", requeued, requeued == 1 ? "" : "s", requeued == 1 ? "its" : "their");
        pthread_cond_broadcast(&t->work);
        tk_changed(t);
    }
}

/*
 * Expiry, and with a shared store the renewals.  A shared store's expiry
 * round costs a transaction: it runs when an expiry is due, and a wake-up
 * (a task finished, an expiry set) brings it forward to a second later, not
 * at once, so a burst of finishes makes one round, not one each.
 */
void *
tk_sweeper_main(void *p)
{
    tasks *t = p;
    int shared = store_shared(t->st);
    double renew_at = 0, sweep_at = 0;
    char *why = NULL;

    pthread_mutex_lock(&t->lock);
    while (!t->stopping) {
        double now = tk_wall_now(), next = now + SWEEP_MAX_SLEEP, when;
        struct timespec until;
        int n = 0;

        if (shared) {
            /* A third of a lease apart: two renewals may fail before a claim lapses. */
            double mono = proto_seconds(), every = t->cfg.lease / 3.0;
            if (mono >= renew_at) {
                renew_claims(t);
                renew_at = mono + every;
            }
            if (now + (renew_at - mono) < next)
                next = now + (renew_at - mono);
        }
        if (now >= sweep_at) {
            n = store_sweep(t->st, now, &why);
            if (n < 0) {
                srv_log(SRV_LOG_ERROR, "sweeper: %s\n", why ? why : "failed");
                free(why);
                why = NULL;
            } else if (n > 0) {
                srv_log(SRV_LOG_VERBOSE, "%d expired task%s removed\n", n, n == 1 ? "" : "s");
                tk_changed(t);
            }
            sweep_at = now + SWEEP_MAX_SLEEP;
            if (n >= 0 && store_next_expiry(t->st, &when) && when < sweep_at)
                sweep_at = when;
            /* Never spin: at least 10 ms apart (a second, shared), 1 s after an error. */
            if (sweep_at < now + (n < 0 || shared ? 1.0 : 0.01))
                sweep_at = now + (n < 0 || shared ? 1.0 : 0.01);
        }
        if (sweep_at < next)
            next = sweep_at;
        until = tk_to_timespec(next);
        if (pthread_cond_timedwait(&t->sweep, &t->lock, &until) != ETIMEDOUT)
            sweep_at = shared ? (sweep_at < now + 1.0 ? sweep_at : tk_wall_now() + 1.0) : 0;
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

/* tasks_int.h - what the task module's files share: its state, and the helpers they
 * call (tasks.c: the procedures and the module's life; tasks_create.c: creation and
 * batches; tasks_run.c: the workers and the sweeper).  Not for other modules. */
#ifndef IMGPROC_TASKS_INT_H
#define IMGPROC_TASKS_INT_H

#include <pthread.h>
#include <time.h>

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
    int attempt;                /* its attempt: the claim's fencing token (under lock) */
    int lost;                   /* a shared store says the claim is no longer ours (under lock) */
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


/* Why a call failed, before it is put into whichever result union. */
typedef struct failure {
    ip_status status;           /* IP_OK while nothing failed */
    char *message;              /* malloc'ed */
} failure;

double tk_wall_now(void);
struct timespec tk_to_timespec(double s);
void tk_set_fail(failure *f, ip_status st, char *message);
void tk_store_fail(failure *f, char *why);
double tk_expiry(const tasks *t, double now);
worker *tk_worker_of(tasks *t, uint64_t id);
upload_hash *tk_hash_find(tasks *t, uint64_t id);
void tk_hash_drop(upload_hash *h);
void tk_hash_feed(tasks *t, uint64_t id, uint64_t from, const void *data, size_t n);
int tk_load_owned(tasks *t, const char *owner, uint64_t id, store_task *rec, failure *f);
void tk_fill_info(tasks *t, const store_task *rec, ip_task_info *info);
void tk_stop_worker(tasks *t, uint64_t id);
char *tk_state_msg(const store_task *rec, const char *why);
void tk_changed(tasks *t);
int tk_queue_room(tasks *t, failure *f);
void *tk_worker_main(void *p);
void *tk_sweeper_main(void *p);

#endif

/* store.h - where tasks live: an SQLite database (WAL) and the image files beside it
 * (store_sqlite.c, the default), or a PostgreSQL database that several servers share
 * (store_pg.c).  store.c picks the backend and holds what both use. */
#ifndef IMGPROC_STORE_H
#define IMGPROC_STORE_H

#include <stddef.h>
#include <stdint.h>
#include "imgproc.h"

#define STORE_MAX_SPEC 4096     /* bytes of an XDR-encoded ip_task_spec */

typedef struct store store;

/* One task as the database holds it.  Times are Unix seconds, 0 = not yet. */
typedef struct store_task {
    uint64_t id;                        /* primary key, never reused */
    char owner[IP_MAX_NAME + 1];        /* "uid@machine" or "anonymous" */
    char token[IP_MAX_TOKEN + 1];       /* the client's name for it, or "" */
    ip_task_state state;                /* where it is in its life */
    int hold;                           /* waits for TASK_START */
    int upload;                         /* its image comes through TASK_UPLOAD */
    uint64_t size;                      /* bytes of the input image */
    uint64_t received;                  /* bytes of it on disk (filled by store_get) */
    char sha256[65];                    /* of the input once complete, else "" */
    char steps[IP_MAX_TEXT + 1];        /* the pipeline in --steps syntax, for people */
    unsigned char spec[STORE_MAX_SPEC]; /* XDR ip_task_spec: what a worker runs */
    size_t spec_len;                    /* bytes used in spec */
    double created, queued, started, finished; /* when it entered those states */
    double expires;                     /* the sweeper removes it after this; 0 = never */
    int attempts;                       /* times a worker has taken it */
    uint64_t result_size;               /* bytes of the result */
    ip_format result_format;            /* its encoding */
    unsigned width, height, bands;      /* its size */
    ip_status error_status;             /* why it failed */
    char error[IP_MAX_MESSAGE + 1];     /* and in words */
} store_task;

/* Files of a task, under the state folder. */
typedef enum store_file {
    STORE_INPUT,                /* in/ID: the complete input image */
    STORE_PART,                 /* in/ID.part: an upload in progress */
    STORE_RESULT                /* out/ID: the result */
} store_file;

/* How to open a store. */
typedef struct store_config {
    const char *url;            /* NULL or "sqlite:" (the state folder), or a libpq URL */
    const char *dir;            /* the state folder: the database, or temporary files only */
    double lease;               /* shared stores: seconds a running task's claim lasts */
    const char *worker;         /* shared stores: this server's name in the tasks it runs */
    /* Shared stores: another server changed a task (queued: a task was queued).
     * Called from the store's own thread, holding no lock of the store's. */
    void (*changed)(void *arg, int queued);
    void *arg;                  /* for changed */
} store_config;

/*
 * Opens (creating when needed) the state folder and the database the
 * config names, bringing its schema up to date.  NULL with a malloc'ed
 * reason in *why.  Not thread-safe by itself: every call below must be
 * made under one lock (tasks.c holds it), unless it says it needs none.
 */
store *store_connect(const store_config *cfg, char **why);
/* store_connect() of the SQLite database in the state folder dir. */
store *store_open(const char *dir, char **why);
void store_close(store *st);

/* "SQLite" or "PostgreSQL". */
const char *store_name(const store *st);
/*
 * Where the tasks live, in words (malloc'ed): the kind; with detail, the
 * database and this server's name in a shared queue.
 */
char *store_describe(store *st, int detail);
/* 1 when other servers share the queue: running tasks must then be renewed (store_renew). */
int store_shared(const store *st);

/*
 * After a crash: tasks left RUNNING go back to QUEUED (or FAILED after
 * max_attempts, expiring then), temporary and orphaned files are removed.  Counts what it
 * did into *requeued and *failed.  0 or -1.
 */
int store_recover(store *st, int max_attempts, double now, double expires, int *requeued,
                  int *failed, char **why);

/* The path of one of a task's files, into buf. */
void store_path(const store *st, store_file f, uint64_t id, char *buf, size_t len);

/*
 * Writes data to a new temporary file in the state folder, fsynced when
 * sync is set; its path goes into path.  0, or -1 with *why and path empty
 * (nothing is left behind).  Needs no lock.
 */
int store_write_temp(const store *st, const void *data, size_t len, int sync, char *path,
                     size_t pathlen, char **why);
/* Syncs every temporary file at once (syncfs).  0, or -1 with *why.  Needs no lock. */
int store_sync_temps(const store *st, char **why);

/*
 * Adding tasks: store_begin(), store_add() for each, then store_commit(),
 * or store_rollback() when any step failed.  Many tasks in one transaction
 * cost one disk sync.
 */
int store_begin(store *st, char **why);
/* Inserts t (its id is filled in); temp, when given, becomes its input file.  0 or -1. */
int store_add(store *st, store_task *t, const char *temp, char **why);
/* Commits; renamed says whether any store_add() renamed a file (its folder is synced first). */
int store_commit(store *st, int renamed, char **why);
/* Rolls back, removing the input files of the tasks ids[0..n-1] that were added. */
void store_rollback(store *st, const uint64_t *ids, size_t n);

/* Reads task id into t.  1 found, 0 no such task, -1 error. */
int store_get(store *st, uint64_t id, store_task *t, char **why);
/* The task owner has named token.  1, 0 or -1. */
int store_by_token(store *st, const char *owner, const char *token, store_task *t,
                   char **why);

/* Tasks in state (or all, when state < 0). -1 on error. */
long store_count(store *st, int state);

/*
 * Moves task id from one of the states in from_mask (bits 1 << state) to
 * to, setting the matching time to now and expires as given (0 clears).
 * 1 when it moved, 0 when it was not in such a state, -1 on error.
 */
int store_move(store *st, uint64_t id, unsigned from_mask, ip_task_state to,
               double now, double expires, char **why);

/*
 * Appends an upload chunk: offset must be the bytes held so far (or
 * earlier, for a retried chunk, which is then not written again).
 * *received is what the file holds afterwards.  0, or -1 with *why and
 * *st_out set to the status to report.
 */
int store_append(store *st, uint64_t id, uint64_t size, uint64_t offset, const void *data,
                 size_t len, uint64_t *received, ip_status *st_out, char **why);

/*
 * The upload is complete: fsync, name it the input, record its SHA-256
 * (hex into sha): known when the caller hashed the chunks as they came,
 * else (NULL) read back from the file.
 */
int store_upload_done(store *st, uint64_t id, const char *known, char sha[65], char **why);

/*
 * Takes the oldest QUEUED task for a worker: it becomes RUNNING, and
 * t->attempts is the attempt this claim is (the fencing token: only this
 * attempt may finish it).  1, 0 or -1.
 */
int store_claim(store *st, double now, store_task *t, char **why);

/*
 * A file holding task id's complete input, path into path.  *temp says
 * whether it is a copy the caller removes when done.  Needs no lock.
 */
int store_input(store *st, uint64_t id, char *path, size_t len, int *temp, char **why);
/*
 * Before store_finish() of a done task: makes the result in temp readable
 * by every server (a shared store copies it into the database, under the
 * claimed attempt).  0 or -1.  Needs no lock.
 */
int store_put_result(store *st, const store_task *t, const char *temp, char **why);
/*
 * Up to len bytes of done task t's result from offset, into buf.  The
 * bytes read (len unless the end comes first), -2 when the task was deleted
 * meanwhile, or -1.  Needs no lock.
 */
long store_read_result(store *st, const store_task *t, uint64_t offset, void *buf, size_t len,
                       char **why);

/*
 * A worker is done with task id: DONE (t's result fields, temp renamed to
 * the result file) or FAILED (t's error fields).  Only a task still RUNNING
 * in the attempt t->attempts is changed: 1, or 0 when it was cancelled or
 * deleted meanwhile, or (shared stores) its claim lapsed and another
 * attempt took it.
 */
int store_finish(store *st, uint64_t id, const store_task *t, const char *temp,
                 double now, double expires, char **why);
/* A worker stopped by shutdown gives task t back: RUNNING -> QUEUED, the attempt uncounted. */
int store_requeue(store *st, const store_task *t, char **why);

/*
 * Shared stores: renews the claims of this server's running tasks ids[i]
 * in attempts[i], read under the lock at time snapshot (tk_wall_now), for
 * another lease.  The indexes i whose claim is no longer theirs (cancelled,
 * deleted, or lapsed and taken again) go into lost: its count, or -1 when
 * the database cannot be reached.  Then puts back into the queue the tasks
 * of any server whose claim lapsed (FAILED after max_attempts, as
 * store_recover() does), and this server's claims made before snapshot that
 * no worker holds (an answer lost), counted in *requeued.  Needs no lock
 * (its own connection), but one caller at a time.
 */
int store_renew(store *st, const uint64_t *ids, const int *attempts, size_t n, double snapshot,
                size_t *lost, int *requeued, char **why);

/* Removes task id and its files.  1, 0 when absent, -1. */
int store_delete(store *st, uint64_t id, char **why);

/*
 * Up to max of owner's tasks with id > after and state in mask (0 = all),
 * oldest first, into out; *more says whether others follow.  Count or -1.
 */
int store_list(store *st, const char *owner, unsigned mask, uint64_t after,
               store_task *out, int max, int *more, char **why);

/* Deletes every task whose expiry is <= now.  The number deleted, or -1. */
int store_sweep(store *st, double now, char **why);
/* The earliest expiry of any task: 1 and *when, or 0 when none expires. */
int store_next_expiry(store *st, double *when);

#endif

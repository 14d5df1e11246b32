/* tasks.h - durable background tasks: the state machine, the worker pool, waiting, expiry. */
#ifndef IMGPROC_TASKS_H
#define IMGPROC_TASKS_H

#include <stdint.h>
#include "imgproc.h"
#include "ops.h"

/* Settings from the command line. */
typedef struct tasks_config {
    const char *state_dir;      /* where the database and images live (or, with a
                                 * shared store, the temporary files) */
    const char *store_url;      /* --store: NULL/"sqlite:" or a PostgreSQL URL */
    unsigned lease;             /* shared store: seconds a running task's claim lasts */
    unsigned workers;           /* threads running tasks */
    unsigned max_queued;        /* QUEUED tasks at most; more are refused as busy */
    unsigned max_tasks;         /* tasks kept at most, in any state */
    unsigned result_ttl;        /* seconds a finished task is kept */
    uint64_t max_upload_bytes;  /* largest image a task may declare */
    uint64_t max_inline_bytes;  /* largest image sent inside TASK_CREATE */
    unsigned max_steps;         /* longest pipeline */
    unsigned max_task_seconds;  /* a task's pipeline is stopped, and fails, after this */
} tasks_config;

typedef struct tasks tasks;

/*
 * Opens the state folder, recovers from a crash (RUNNING tasks are queued
 * again) and starts the workers and the sweeper.  NULL with *why (caller
 * frees) on failure.  lim bounds what a task's pipeline may do.
 */
tasks *tasks_open(const tasks_config *cfg, const ops_limits *lim, char **why);
/* Wakes every waiter and stops the workers; running tasks go back to QUEUED. */
void tasks_stopping(tasks *t);
/* Joins the threads and closes the store. */
void tasks_close(tasks *t);

/*
 * Where the tasks live, in words, for SERVER_INFO (malloc'ed); detail adds
 * the database's address and this server's name in a shared queue.
 */
char *tasks_store_text(tasks *t, int detail);
/* Queue figures for SERVER_INFO. */
void tasks_load(tasks *t, unsigned *queued, unsigned *running);
/* Tasks kept in each state (index: ip_task_state), the workers, the busy ones. */
void tasks_counts(tasks *t, uint64_t by_state[IP_TASK_STATES], unsigned *workers,
                  unsigned *busy);

/*
 * The procedures.  owner is the owner label of the caller's tasks (caller.c:
 * "1000@machine", "krb5:alice@REALM", "anon-...", "anonymous"); status,
 * wait, cancel, delete and list take NULL for an admin: every caller's.  Each fills its result completely: on failure a status and
 * a malloc'ed message; xdr_free releases either.
 */
void tasks_create(tasks *t, const char *owner, const ip_task_create_args *a,
                  ip_task_create_res *res);
void tasks_upload(tasks *t, const char *owner, const ip_task_upload_args *a,
                  ip_task_upload_res *res);
void tasks_start(tasks *t, const char *owner, ip_task_id id, ip_task_res *res);
void tasks_status(tasks *t, const char *owner, ip_task_id id, ip_task_info_res *res);
/* may_block is 0 on UDP, where one waiting call would stall every other. */
void tasks_wait(tasks *t, const char *owner, const ip_task_wait_args *a, int may_block,
                ip_task_info_res *res);
void tasks_result(tasks *t, const char *owner, const ip_task_result_args *a,
                  ip_task_result_res *res);
void tasks_cancel(tasks *t, const char *owner, ip_task_id id, ip_task_res *res);
void tasks_delete(tasks *t, const char *owner, ip_task_id id, ip_task_res *res);
void tasks_list(tasks *t, const char *owner, const ip_task_list_args *a,
                ip_task_list_res *res);

/*
 * Batched creates (TASK_SUBMIT, TASK_COLLECT), one batch per TCP
 * connection.  tasks_batch_add() checks an item at once and commits items
 * in groups; tasks_batch_collect() commits the rest and moves every
 * outcome into res (free with xdr_free).  tasks_batch_free() drops what
 * was never collected.
 */
typedef struct tasks_batch tasks_batch;
tasks_batch *tasks_batch_new(void);
void tasks_batch_add(tasks *t, tasks_batch *b, const char *owner, const ip_task_create_args *a);
void tasks_batch_collect(tasks *t, tasks_batch *b, ip_batch_res *res);
void tasks_batch_free(tasks *t, tasks_batch *b);
/* An item that could not even be decoded: reported as skipped. */
void tasks_batch_skip(tasks_batch *b);

#endif

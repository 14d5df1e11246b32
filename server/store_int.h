/* store_int.h - what the store's backends share: the table of their functions, the
 * common part of a store, and the helpers of store.c.  Not for other modules. */
#ifndef IMGPROC_STORE_INT_H
#define IMGPROC_STORE_INT_H

#include "store.h"

/* One backend: its version of each function of store.h (same arguments, same meaning). */
typedef struct store_ops {
    const char *name;                                   /* "SQLite", "PostgreSQL" */
    int shared;                                         /* other hosts share its queue */
    void (*close)(store *st);
    char *(*describe)(store *st, int detail);
    int (*recover)(store *st, int max_attempts, double now, double expires, int *requeued,
                   int *failed, char **why);
    int (*begin)(store *st, char **why);
    int (*add)(store *st, store_task *t, const char *temp, char **why);
    int (*commit)(store *st, int renamed, char **why);
    void (*rollback)(store *st, const uint64_t *ids, size_t n);
    int (*get)(store *st, uint64_t id, store_task *t, char **why);
    int (*by_token)(store *st, const char *owner, const char *token, store_task *t,
                    char **why);
    long (*count)(store *st, int state);
    int (*move)(store *st, uint64_t id, unsigned from_mask, ip_task_state to, double now,
                double expires, char **why);
    int (*append)(store *st, uint64_t id, uint64_t size, uint64_t offset, const void *data,
                  size_t len, uint64_t *received, ip_status *st_out, char **why);
    int (*upload_done)(store *st, uint64_t id, const char *known, char sha[65], char **why);
    int (*claim)(store *st, double now, store_task *t, char **why);
    int (*input)(store *st, uint64_t id, char *path, size_t len, char **why);
    int (*put_result)(store *st, const store_task *t, const char *temp, char **why);
    long (*read_result)(store *st, const store_task *t, uint64_t offset, void *buf,
                        size_t len, char **why);
    int (*finish)(store *st, uint64_t id, const store_task *t, const char *temp, double now,
                  double expires, char **why);
    int (*requeue)(store *st, const store_task *t, char **why);
    int (*renew)(store *st, const uint64_t *ids, const int *attempts, size_t n, double snapshot,
                 size_t *lost, int *requeued, char **why);
    int (*delete)(store *st, uint64_t id, char **why);
    int (*list)(store *st, const char *owner, unsigned mask, uint64_t after, store_task *out,
                int max, int *more, char **why);
    int (*sweep)(store *st, double now, char **why);
    int (*next_expiry)(store *st, double *when);
} store_ops;

/* What every store has; each backend's struct begins with it. */
struct store {
    const store_ops *ops;       /* its backend */
    char *dir;                  /* the state folder (tmp/ at least) */
    int lock_fd;                /* its lock file, held (flock) while open */
};

/* Sets *why (freeing what it held) from fmt; returns -1. */
int store_fail(char **why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* fsync of a folder, so a rename in it survives a power cut.  0 or -1. */
int store_sync_dir(const char *dir);
/*
 * Fills the common part: the state folder made (with sub, a NULL-ended list
 * of its subfolders) and locked for this server alone.  0 or -1.
 */
int store_base_open(store *st, const store_ops *ops, const char *dir,
                    const char *const *sub, char **why);
/* Lets the folder go (the lock with it). */
void store_base_close(store *st);

/*
 * An upload chunk of len bytes at offset, for an image of size bytes of
 * which held are stored: it must start within what is held and end within
 * size.  0, or -1 with *st_out and *why.
 */
int store_check_chunk(uint64_t size, uint64_t offset, size_t len, uint64_t held,
                      ip_status *st_out, char **why);
/* The column holding the time a task entered state s, or NULL. */
const char *store_time_column(ip_task_state s);
/* "'created','queued'": the states in mask, for SQL's IN (...). */
void store_state_list(unsigned mask, char *buf, size_t len);

/* The backends. */
store *store_sqlite_open(const char *dir, char **why);
store *store_pg_open(const store_config *cfg, char **why);

#endif

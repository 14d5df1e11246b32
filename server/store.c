/* store.c - the store's front: picks the backend a --store URL names, passes each call to
 * it, and holds what the backends share (the state folder, its lock, temporary files). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto.h"
#include "store_int.h"

int
store_fail(char **why, const char *fmt, ...)
{
    va_list ap;

    if (why) {
        free(*why);
        va_start(ap, fmt);
        if (vasprintf(why, fmt, ap) < 0)
            *why = NULL;
        va_end(ap);
    }
    return -1;
}

int
store_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc;

    if (fd < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

/* mkdir -p, private to its owner. */
static int
make_dir(const char *path, char **why)
{
    char buf[4096];

    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) < 0 && errno != EEXIST)
            return store_fail(why, "cannot create '%s': %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0700) < 0 && errno != EEXIST)
        return store_fail(why, "cannot create '%s': %s", path, strerror(errno));
    return 0;
}

/*
 * One server per state folder: two would both recover, run and write the
 * same tasks.  The lock is flock(2) on DIR/lock, which holds our pid for the
 * message; the kernel lets it go however we end (kill -9 included).
 */
static int
lock_dir(store *st, char **why)
{
    char path[4096], pid[32] = "";
    ssize_t n;

    snprintf(path, sizeof(path), "%s/lock", st->dir);
    if ((st->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0)
        return store_fail(why, "cannot open '%s': %s", path, strerror(errno));
    if (flock(st->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        int err = errno;
        n = pread(st->lock_fd, pid, sizeof(pid) - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        if (err == EWOULDBLOCK)
            return store_fail(why, "the state folder '%s' is in use by another imgprocd%s%s%s: "
                              "give each server its own --state-dir", st->dir,
                              *pid ? " (pid " : "", pid, *pid ? ")" : "");
        return store_fail(why, "cannot lock '%s': %s", path, strerror(err));
    }
    n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(st->lock_fd, 0) < 0 || pwrite(st->lock_fd, pid, (size_t)n, 0) != n)
        return store_fail(why, "cannot write '%s': %s", path, strerror(errno));
    return 0;
}

int
store_base_open(store *st, const store_ops *ops, const char *dir, const char *const *sub,
                char **why)
{
    char path[4096];

    st->ops = ops;
    st->lock_fd = -1;
    if (!(st->dir = strdup(dir)))
        return store_fail(why, "out of memory");
    if (make_dir(dir, why) || lock_dir(st, why))
        return -1;
    for (; *sub; sub++) {
        snprintf(path, sizeof(path), "%s/%s", dir, *sub);
        if (make_dir(path, why))
            return -1;
    }
    return 0;
}

void
store_base_close(store *st)
{
    if (st->lock_fd >= 0)
        close(st->lock_fd);     /* and the lock goes with it */
    st->lock_fd = -1;
    free(st->dir);
    st->dir = NULL;
}

/* "postgres://..." and "postgresql://..." are libpq's URL forms. */
static int
is_postgres(const char *url)
{
    return strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0;
}

store *
store_connect(const store_config *cfg, char **why)
{
    const char *url = cfg->url;

    if (!url || !*url || strcmp(url, "sqlite:") == 0 || strcmp(url, "sqlite") == 0)
        return store_sqlite_open(cfg->dir, why);
    if (is_postgres(url))
        return store_pg_open(cfg, why);
    store_fail(why, "--store '%s': expected sqlite: (the state folder) or a PostgreSQL URL "
               "(postgres://user@host:port/database)", url);
    return NULL;
}

store *
store_open(const char *dir, char **why)
{
    return store_sqlite_open(dir, why);
}

void
store_close(store *st)
{
    if (st)
        st->ops->close(st);
}

const char *
store_name(const store *st)
{
    return st->ops->name;
}

char *
store_describe(store *st, int detail)
{
    return st->ops->describe(st, detail);
}

int
store_shared(const store *st)
{
    return st->ops->shared;
}

void
store_path(const store *st, store_file f, uint64_t id, char *buf, size_t len)
{
    switch (f) {
    case STORE_INPUT:
        snprintf(buf, len, "%s/in/%llu", st->dir, (unsigned long long)id);
        break;
    case STORE_PART:
        snprintf(buf, len, "%s/in/%llu.part", st->dir, (unsigned long long)id);
        break;
    case STORE_RESULT:
        snprintf(buf, len, "%s/out/%llu", st->dir, (unsigned long long)id);
        break;
    }
}

int
store_write_temp(const store *st, const void *data, size_t len, int sync, char *path,
                 size_t pathlen, char **why)
{
    int fd;

    snprintf(path, pathlen, "%s/tmp/XXXXXX", st->dir);
    fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0) {
        path[0] = '\0';        /* no file: nothing for the caller to rename or remove */
        return store_fail(why, "cannot create a file in '%s/tmp': %s", st->dir,
                          strerror(errno));
    }
    if (proto_write_all(fd, data, len) || (sync && fsync(fd))) {
        int e = errno;
        close(fd);
        unlink(path);
        store_fail(why, "cannot write '%s': %s", path, strerror(e));
        path[0] = '\0';        /* removed: the caller must not rename it */
        return -1;
    }
    close(fd);
    return 0;
}

int
store_sync_temps(const store *st, char **why)
{
    char path[4096];
    int fd, rc;

    /* One syncfs() writes every file of the batch: one disk wait, not one per file. */
    snprintf(path, sizeof(path), "%s/tmp", st->dir);
    fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return store_fail(why, "cannot open '%s': %s", path, strerror(errno));
    rc = syncfs(fd);
    if (rc < 0)
        store_fail(why, "cannot sync '%s': %s", path, strerror(errno));
    close(fd);
    return rc;
}

/* The column holding the time a task entered state s, or NULL. */
const char *
store_time_column(ip_task_state s)
{
    switch (s) {
    case IP_TASK_QUEUED:
        return "queued_at";
    case IP_TASK_RUNNING:
        return "started_at";
    case IP_TASK_DONE:
    case IP_TASK_FAILED:
    case IP_TASK_CANCELLED:
        return "finished_at";
    default:
        return NULL;
    }
}

/* "'created','queued'" for the states in mask. */
void
store_state_list(unsigned mask, char *buf, size_t len)
{
    size_t used = 0;

    buf[0] = '\0';
    for (unsigned s = 0; s < PROTO_NSTATES; s++)
        if (mask & (1u << s))
            used += (size_t)snprintf(buf + used, used < len ? len - used : 0, "%s'%s'",
                                     used ? "," : "", proto_task_state_name((ip_task_state)s));
}

int
store_check_chunk(uint64_t size, uint64_t offset, size_t len, uint64_t held, ip_status *st_out,
                  char **why)
{
    if (offset > held) {
        *st_out = IP_EINVAL;
        return store_fail(why, "chunk at offset %llu, but the server holds %llu bytes: send "
                          "from there", (unsigned long long)offset, (unsigned long long)held);
    }
    if (len > size || offset > size - len) {
        *st_out = IP_EINVAL;
        return store_fail(why, "the chunk ends at byte %llu, past the declared size %llu",
                          (unsigned long long)(offset + len), (unsigned long long)size);
    }
    return 0;
}

/* ---------------------------------------------- each call, to the backend */

int
store_recover(store *st, int max_attempts, double now, double expires, int *requeued,
              int *failed, char **why)
{
    return st->ops->recover(st, max_attempts, now, expires, requeued, failed, why);
}

int
store_begin(store *st, char **why)
{
    return st->ops->begin(st, why);
}

int
store_add(store *st, store_task *t, const char *temp, char **why)
{
    return st->ops->add(st, t, temp, why);
}

int
store_commit(store *st, int renamed, char **why)
{
    return st->ops->commit(st, renamed, why);
}

void
store_rollback(store *st, const uint64_t *ids, size_t n)
{
    st->ops->rollback(st, ids, n);
}

int
store_get(store *st, uint64_t id, store_task *t, char **why)
{
    return st->ops->get(st, id, t, why);
}

int
store_by_token(store *st, const char *owner, const char *token, store_task *t, char **why)
{
    return st->ops->by_token(st, owner, token, t, why);
}

long
store_count(store *st, int state)
{
    return st->ops->count(st, state);
}

int
store_move(store *st, uint64_t id, unsigned from_mask, ip_task_state to, double now,
           double expires, char **why)
{
    return st->ops->move(st, id, from_mask, to, now, expires, why);
}

int
store_append(store *st, uint64_t id, uint64_t size, uint64_t offset, const void *data,
             size_t len, uint64_t *received, ip_status *st_out, char **why)
{
    return st->ops->append(st, id, size, offset, data, len, received, st_out, why);
}

int
store_upload_done(store *st, uint64_t id, const char *known, char sha[65], char **why)
{
    return st->ops->upload_done(st, id, known, sha, why);
}

int
store_claim(store *st, double now, store_task *t, char **why)
{
    return st->ops->claim(st, now, t, why);
}

int
store_input(store *st, uint64_t id, char *path, size_t len, int *temp, char **why)
{
    *temp = st->ops->shared;
    return st->ops->input(st, id, path, len, why);
}

int
store_put_result(store *st, const store_task *t, const char *temp, char **why)
{
    return st->ops->put_result(st, t, temp, why);
}

long
store_read_result(store *st, const store_task *t, uint64_t offset, void *buf, size_t len,
                  char **why)
{
    return st->ops->read_result(st, t, offset, buf, len, why);
}

int
store_finish(store *st, uint64_t id, const store_task *t, const char *temp, double now,
             double expires, char **why)
{
    return st->ops->finish(st, id, t, temp, now, expires, why);
}

int
store_requeue(store *st, const store_task *t, char **why)
{
    return st->ops->requeue(st, t, why);
}

int
store_renew(store *st, const uint64_t *ids, const int *attempts, size_t n, double snapshot,
            size_t *lost, int *requeued, char **why)
{
    *requeued = 0;
    return st->ops->renew(st, ids, attempts, n, snapshot, lost, requeued, why);
}

int
store_delete(store *st, uint64_t id, char **why)
{
    return st->ops->delete(st, id, why);
}

int
store_list(store *st, const char *owner, unsigned mask, uint64_t after, store_task *out,
           int max, int *more, char **why)
{
    return st->ops->list(st, owner, mask, after, out, max, more, why);
}

int
store_sweep(store *st, double now, char **why)
{
    return st->ops->sweep(st, now, why);
}

int
store_next_expiry(store *st, double *when)
{
    return st->ops->next_expiry(st, when);
}

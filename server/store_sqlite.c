/* store_sqlite.c - the embedded store: one SQLite database in WAL mode, images in in/ and
 * out/ beside it.  The default; one machine, one server. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "proto.h"
#include "store_int.h"

typedef struct sq_store {
    store base;                 /* the common part; first, so a store * is a sq_store * */
    sqlite3 *db;                /* its tasks.db */
} sq_store;

#define DB(st) (((sq_store *)(st))->db)

/*
 * The schema.  Names are meant to be read with the sqlite3 shell (see
 * scripts/05-task-database.sh): states and statuses are words, times are
 * Unix seconds (datetime(finished_at, 'unixepoch') shows them).
 */
static const char schema[] =
"CREATE TABLE IF NOT EXISTS tasks (\n"
"  id            INTEGER PRIMARY KEY AUTOINCREMENT,\n"
"  owner         TEXT NOT NULL,             -- 'uid@machine' or 'anonymous'\n"
"  token         TEXT NOT NULL DEFAULT '',  -- the client's name for it\n"
"  state         TEXT NOT NULL CHECK (state IN\n"
"                ('created','queued','running','done','failed','cancelled')),\n"
"  hold          INTEGER NOT NULL,          -- waits for TASK_START\n"
"  upload        INTEGER NOT NULL,          -- image sent with TASK_UPLOAD\n"
"  size          INTEGER NOT NULL,          -- bytes of the input image\n"
"  sha256        TEXT NOT NULL DEFAULT '',  -- of the input, once complete\n"
"  steps         TEXT NOT NULL,             -- the pipeline, --steps syntax\n"
"  spec          BLOB NOT NULL,             -- XDR ip_task_spec, what a worker runs\n"
"  created_at    REAL NOT NULL,             -- Unix seconds\n"
"  queued_at     REAL,\n"
"  started_at    REAL,\n"
"  finished_at   REAL,\n"
"  expires_at    REAL,                      -- removed by the sweeper after this\n"
"  attempts      INTEGER NOT NULL DEFAULT 0,\n"
"  result_size   INTEGER NOT NULL DEFAULT 0,\n"
"  result_format TEXT NOT NULL DEFAULT '',\n"
"  width         INTEGER NOT NULL DEFAULT 0,\n"
"  height        INTEGER NOT NULL DEFAULT 0,\n"
"  bands         INTEGER NOT NULL DEFAULT 0,\n"
"  error_status  TEXT NOT NULL DEFAULT '',  -- 'corrupt-image', 'too-large'...\n"
"  error         TEXT NOT NULL DEFAULT ''\n"
");\n"
"CREATE UNIQUE INDEX IF NOT EXISTS tasks_token ON tasks(owner, token) WHERE token <> '';\n"
"CREATE INDEX IF NOT EXISTS tasks_queue ON tasks(state, queued_at, id);\n"
"CREATE INDEX IF NOT EXISTS tasks_owner ON tasks(owner, id);\n"
"CREATE INDEX IF NOT EXISTS tasks_expiry ON tasks(expires_at) WHERE expires_at IS NOT NULL;\n"
"PRAGMA user_version = 1;\n";

#define COLUMNS "id, owner, token, state, hold, upload, size, sha256, steps, spec, " \
                "created_at, queued_at, started_at, finished_at, expires_at, attempts, " \
                "result_size, result_format, width, height, bands, error_status, error"

static int
db_fail(store *st, char **why, const char *what)
{
    return store_fail(why, "task database: %s: %s", what, sqlite3_errmsg(DB(st)));
}

static int
exec(store *st, const char *sql, char **why)
{
    char *err = NULL;

    if (sqlite3_exec(DB(st), sql, NULL, NULL, &err) != SQLITE_OK) {
        store_fail(why, "task database: %s", err ? err : "failed");
        sqlite3_free(err);
        return -1;
    }
    return 0;
}

static sqlite3_stmt *
prepare(store *st, const char *sql, char **why)
{
    sqlite3_stmt *q = NULL;

    if (sqlite3_prepare_v2(DB(st), sql, -1, &q, NULL) != SQLITE_OK) {
        db_fail(st, why, "prepare");
        return NULL;
    }
    return q;
}

static const store_ops sqlite_ops;

static void
sq_close(store *st)
{
    if (DB(st))
        sqlite3_close(DB(st));
    store_base_close(st);
    free(st);
}

store *
store_sqlite_open(const char *dir, char **why)
{
    static const char *const sub[] = { "in", "out", "tmp", NULL };
    sq_store *sq = calloc(1, sizeof(*sq));
    store *st = &sq->base;
    char path[4096];

    if (!sq) {
        store_fail(why, "out of memory");
        return NULL;
    }
    if (store_base_open(st, &sqlite_ops, dir, sub, why))
        goto fail;
    snprintf(path, sizeof(path), "%s/tasks.db", dir);
    if (sqlite3_open_v2(path, &sq->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                        SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        store_fail(why, "cannot open '%s': %s", path,
                   sq->db ? sqlite3_errmsg(sq->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(sq->db, 5000);
    /*
     * WAL: readers (the sqlite3 shell, say) never block the server.
     * synchronous=FULL: a commit is on disk before TASK_CREATE is answered.
     */
    if (exec(st, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", why) ||
        exec(st, schema, why))
        goto fail;
    return st;

fail:
    sq_close(st);
    return NULL;
}

static void
unlink_files(store *st, uint64_t id)
{
    char path[4096];

    store_path(st, STORE_INPUT, id, path, sizeof(path));
    unlink(path);
    store_path(st, STORE_PART, id, path, sizeof(path));
    unlink(path);
    store_path(st, STORE_RESULT, id, path, sizeof(path));
    unlink(path);
}

static double
col_time(sqlite3_stmt *q, int i)
{
    return sqlite3_column_type(q, i) == SQLITE_NULL ? 0 : sqlite3_column_double(q, i);
}

static void
col_text(sqlite3_stmt *q, int i, char *buf, size_t len)
{
    const unsigned char *t = sqlite3_column_text(q, i);

    snprintf(buf, len, "%s", t ? (const char *)t : "");
}

/* One row (in COLUMNS order) into t. */
static void
read_row(sqlite3_stmt *q, store_task *t)
{
    char word[IP_MAX_NAME + 1];
    int n;

    memset(t, 0, sizeof(*t));
    t->id = (uint64_t)sqlite3_column_int64(q, 0);
    col_text(q, 1, t->owner, sizeof(t->owner));
    col_text(q, 2, t->token, sizeof(t->token));
    col_text(q, 3, word, sizeof(word));
    proto_task_state_parse(word, &t->state);
    t->hold = sqlite3_column_int(q, 4);
    t->upload = sqlite3_column_int(q, 5);
    t->size = (uint64_t)sqlite3_column_int64(q, 6);
    col_text(q, 7, t->sha256, sizeof(t->sha256));
    col_text(q, 8, t->steps, sizeof(t->steps));
    n = sqlite3_column_bytes(q, 9);
    if (n > 0 && (size_t)n <= sizeof(t->spec)) {
        memcpy(t->spec, sqlite3_column_blob(q, 9), (size_t)n);
        t->spec_len = (size_t)n;
    }
    t->created = col_time(q, 10);
    t->queued = col_time(q, 11);
    t->started = col_time(q, 12);
    t->finished = col_time(q, 13);
    t->expires = col_time(q, 14);
    t->attempts = sqlite3_column_int(q, 15);
    t->result_size = (uint64_t)sqlite3_column_int64(q, 16);
    col_text(q, 17, word, sizeof(word));
    proto_format_parse(word, &t->result_format);
    t->width = (unsigned)sqlite3_column_int(q, 18);
    t->height = (unsigned)sqlite3_column_int(q, 19);
    t->bands = (unsigned)sqlite3_column_int(q, 20);
    col_text(q, 21, word, sizeof(word));
    if (proto_status_parse(word, &t->error_status))
        t->error_status = IP_OK;
    col_text(q, 22, t->error, sizeof(t->error));
}

/* Bytes of the input on disk: all of it once complete, else the part file. */
static uint64_t
received(store *st, const store_task *t)
{
    char path[4096];
    struct stat sb;

    if (!t->upload || t->sha256[0])
        return t->size;
    store_path(st, STORE_PART, t->id, path, sizeof(path));
    return stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

/* Steps q (bound already) for at most one row into t, and finalizes it.  1, 0 or -1. */
static int
get_one(store *st, sqlite3_stmt *q, store_task *t, char **why)
{
    int rc = sqlite3_step(q);

    if (rc == SQLITE_ROW) {
        read_row(q, t);
        t->received = received(st, t);
        rc = 1;
    } else
        rc = rc == SQLITE_DONE ? 0 : db_fail(st, why, "read");
    sqlite3_finalize(q);
    return rc;
}

static int
sq_get(store *st, uint64_t id, store_task *t, char **why)
{
    sqlite3_stmt *q = prepare(st, "SELECT " COLUMNS " FROM tasks WHERE id = ?", why);

    if (!q)
        return -1;
    sqlite3_bind_int64(q, 1, (sqlite3_int64)id);
    return get_one(st, q, t, why);
}

static int
sq_by_token(store *st, const char *owner, const char *token, store_task *t, char **why)
{
    sqlite3_stmt *q = prepare(st, "SELECT " COLUMNS " FROM tasks WHERE owner = ? AND token = ?",
                              why);

    if (!q)
        return -1;
    sqlite3_bind_text(q, 1, owner, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, token, -1, SQLITE_STATIC);
    return get_one(st, q, t, why);
}

static long
sq_count(store *st, int state)
{
    sqlite3_stmt *q = prepare(st, state < 0 ? "SELECT count(*) FROM tasks"
                                            : "SELECT count(*) FROM tasks WHERE state = ?",
                              NULL);
    long n = -1;

    if (!q)
        return -1;
    if (state >= 0)
        sqlite3_bind_text(q, 1, proto_task_state_name((ip_task_state)state), -1, SQLITE_STATIC);
    if (sqlite3_step(q) == SQLITE_ROW)
        n = (long)sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return n;
}

static void
bind_time(sqlite3_stmt *q, int i, double t)
{
    if (t > 0)
        sqlite3_bind_double(q, i, t);
    else
        sqlite3_bind_null(q, i);
}

static int
sq_begin(store *st, char **why)
{
    return exec(st, "BEGIN IMMEDIATE", why);
}

static int
sq_add(store *st, store_task *t, const char *temp, char **why)
{
    sqlite3_stmt *q;
    char path[4096];
    int rc = -1;

    q = prepare(st, "INSERT INTO tasks (owner, token, state, hold, upload, size, sha256, "
                    "steps, spec, created_at, queued_at, expires_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", why);
    if (!q)
        return -1;
    sqlite3_bind_text(q, 1, t->owner, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, t->token, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, proto_task_state_name(t->state), -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 4, t->hold);
    sqlite3_bind_int(q, 5, t->upload);
    sqlite3_bind_int64(q, 6, (sqlite3_int64)t->size);
    sqlite3_bind_text(q, 7, t->sha256, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 8, t->steps, -1, SQLITE_STATIC);
    sqlite3_bind_blob(q, 9, t->spec, (int)t->spec_len, SQLITE_STATIC);
    sqlite3_bind_double(q, 10, t->created);
    bind_time(q, 11, t->queued);
    bind_time(q, 12, t->expires);
    if (sqlite3_step(q) != SQLITE_DONE) {
        db_fail(st, why, "insert");
        goto cleanup;
    }
    t->id = (uint64_t)sqlite3_last_insert_rowid(DB(st));
    /* The file takes its final name before the commit: a task row never
     * exists without its image.  A crash in between leaves an orphan file,
     * which sq_recover() removes; a rollback, sq_rollback(). */
    store_path(st, STORE_INPUT, t->id, path, sizeof(path));
    if (temp && rename(temp, path) < 0) {
        store_fail(why, "cannot rename '%s': %s", temp, strerror(errno));
        goto cleanup;
    }
    rc = 0;

cleanup:
    sqlite3_finalize(q);
    return rc;
}

static int
sq_commit(store *st, int renamed, char **why)
{
    char path[4096];

    if (renamed) {
        /* The renames must be on disk before the rows that name the files. */
        snprintf(path, sizeof(path), "%s/in", st->dir);
        if (store_sync_dir(path) < 0)
            return store_fail(why, "cannot sync '%s': %s", path, strerror(errno));
    }
    return exec(st, "COMMIT", why);
}

static void
sq_rollback(store *st, const uint64_t *ids, size_t n)
{
    char path[4096];

    exec(st, "ROLLBACK", NULL);
    for (size_t i = 0; i < n; i++) {
        store_path(st, STORE_INPUT, ids[i], path, sizeof(path));
        unlink(path);
    }
}

static int
sq_move(store *st, uint64_t id, unsigned from_mask, ip_task_state to, double now,
        double expires, char **why)
{
    char states[128], sql[512];
    const char *tc = store_time_column(to);
    sqlite3_stmt *q;
    int rc;

    store_state_list(from_mask, states, sizeof(states));
    snprintf(sql, sizeof(sql), "UPDATE tasks SET state = ?, expires_at = ?%s%s%s "
             "WHERE id = ? AND state IN (%s)", tc ? ", " : "", tc ? tc : "",
             tc ? " = ?" : "", states);
    if (!(q = prepare(st, sql, why)))
        return -1;
    sqlite3_bind_text(q, 1, proto_task_state_name(to), -1, SQLITE_STATIC);
    bind_time(q, 2, expires);
    if (tc) {
        sqlite3_bind_double(q, 3, now);
        sqlite3_bind_int64(q, 4, (sqlite3_int64)id);
    } else
        sqlite3_bind_int64(q, 3, (sqlite3_int64)id);
    rc = sqlite3_step(q) == SQLITE_DONE ? (sqlite3_changes(DB(st)) > 0) : db_fail(st, why, "update");
    sqlite3_finalize(q);
    return rc;
}

static int
sq_append(store *st, uint64_t id, uint64_t size, uint64_t offset, const void *data,
          size_t len, uint64_t *got, ip_status *st_out, char **why)
{
    char path[4096];
    struct stat sb;
    int fd;

    store_path(st, STORE_PART, id, path, sizeof(path));
    fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || fstat(fd, &sb) < 0) {
        *st_out = IP_EINTERNAL;
        store_fail(why, "cannot open '%s': %s", path, strerror(errno));
        goto fail;
    }
    *got = (uint64_t)sb.st_size;
    if (store_check_chunk(size, offset, len, *got, st_out, why))
        goto fail;
    if (offset + len > *got) {
        /* Only the part not held yet: a retried chunk is not written twice. */
        size_t skip = (size_t)(*got - offset);
        const char *p = (const char *)data + skip;
        size_t left = len - skip;
        off_t at = (off_t)*got;
        while (left > 0) {
            ssize_t n = pwrite(fd, p, left, at);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                *st_out = IP_EINTERNAL;
                store_fail(why, "cannot write '%s': %s", path, n < 0 ? strerror(errno) : "disk full");
                /* Leave no half chunk behind: the client resends from *got. */
                if (ftruncate(fd, (off_t)*got) < 0)
                    *got = 0;
                goto fail;
            }
            p += n;
            left -= (size_t)n;
            at += n;
        }
        /* Start writing these pages to disk now: the fsync at the end of
         * the upload then has little left to wait for. */
        sync_file_range(fd, (off_t)*got, (off_t)(len - skip), SYNC_FILE_RANGE_WRITE);
        *got = offset + len;
    }
    close(fd);
    return 0;

fail:
    if (fd >= 0)
        close(fd);
    return -1;
}

/* Records the checksum; 0 or -1. */
static int
sq_set_sha(store *st, uint64_t id, const char *sha, char **why)
{
    sqlite3_stmt *q = prepare(st, "UPDATE tasks SET sha256 = ? WHERE id = ?", why);
    int rc;

    if (!q)
        return -1;
    sqlite3_bind_text(q, 1, sha, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, (sqlite3_int64)id);
    rc = sqlite3_step(q) == SQLITE_DONE ? 0 : db_fail(st, why, "update");
    sqlite3_finalize(q);
    return rc;
}

static int
sq_upload_done(store *st, uint64_t id, const char *known, char sha[65], char **why)
{
    char part[4096], final[4096];
    int fd;

    store_path(st, STORE_PART, id, part, sizeof(part));
    store_path(st, STORE_INPUT, id, final, sizeof(final));
    fd = open(part, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return store_fail(why, "cannot open '%s': %s", part, strerror(errno));
    if (known)
        snprintf(sha, 65, "%s", known);
    if (fsync(fd) < 0 || (!known && proto_sha256_fd(fd, sha) < 0)) {
        int e = errno;
        close(fd);
        return store_fail(why, "cannot read back '%s': %s", part, strerror(e));
    }
    close(fd);
    if (rename(part, final) < 0)
        return store_fail(why, "cannot rename '%s': %s", part, strerror(errno));
    snprintf(part, sizeof(part), "%s/in", st->dir);
    store_sync_dir(part);
    return sq_set_sha(st, id, sha, why);
}


static int
sq_claim(store *st, double now, store_task *t, char **why)
{
    sqlite3_stmt *q = prepare(st, "SELECT " COLUMNS " FROM tasks WHERE state = 'queued' "
                                  "ORDER BY queued_at, id LIMIT 1", why);
    int rc;

    if (!q)
        return -1;
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        read_row(q, t);
    sqlite3_finalize(q);
    if (rc != SQLITE_ROW)
        return rc == SQLITE_DONE ? 0 : db_fail(st, why, "read");
    q = prepare(st, "UPDATE tasks SET state = 'running', started_at = ?, "
                    "attempts = attempts + 1 WHERE id = ?", why);
    if (!q)
        return -1;
    sqlite3_bind_double(q, 1, now);
    sqlite3_bind_int64(q, 2, (sqlite3_int64)t->id);
    rc = sqlite3_step(q) == SQLITE_DONE ? 1 : db_fail(st, why, "update");
    sqlite3_finalize(q);
    t->state = IP_TASK_RUNNING;
    t->started = now;
    t->attempts++;
    return rc;
}

static int
sq_finish(store *st, uint64_t id, const store_task *t, const char *temp, double now,
          double expires, char **why)
{
    sqlite3_stmt *q = NULL;
    char path[4096];
    int rc = -1;

    if (exec(st, "BEGIN IMMEDIATE", why))
        return -1;
    q = prepare(st, "UPDATE tasks SET state = ?, finished_at = ?, expires_at = ?, "
                    "result_size = ?, result_format = ?, width = ?, height = ?, bands = ?, "
                    "error_status = ?, error = ? WHERE id = ? AND state = 'running'", why);
    if (!q)
        goto cleanup;
    sqlite3_bind_text(q, 1, proto_task_state_name(t->state), -1, SQLITE_STATIC);
    sqlite3_bind_double(q, 2, now);
    bind_time(q, 3, expires);
    sqlite3_bind_int64(q, 4, (sqlite3_int64)t->result_size);
    sqlite3_bind_text(q, 5, t->state == IP_TASK_DONE ? proto_format_name(t->result_format) : "",
                      -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 6, (int)t->width);
    sqlite3_bind_int(q, 7, (int)t->height);
    sqlite3_bind_int(q, 8, (int)t->bands);
    sqlite3_bind_text(q, 9, t->state == IP_TASK_DONE ? "" : proto_status_name(t->error_status),
                      -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 10, t->error, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 11, (sqlite3_int64)id);
    if (sqlite3_step(q) != SQLITE_DONE) {
        db_fail(st, why, "update");
        goto cleanup;
    }
    rc = sqlite3_changes(DB(st)) > 0;
    if (rc == 1 && temp) {
        store_path(st, STORE_RESULT, id, path, sizeof(path));
        if (rename(temp, path) < 0) {
            rc = store_fail(why, "cannot rename '%s': %s", temp, strerror(errno));
            goto cleanup;
        }
        snprintf(path, sizeof(path), "%s/out", st->dir);
        store_sync_dir(path);
    }
    if (exec(st, "COMMIT", why))
        rc = -1;

cleanup:
    sqlite3_finalize(q);
    if (rc < 0)
        exec(st, "ROLLBACK", NULL);
    if (rc != 1 && temp)
        unlink(temp);
    return rc;
}

static int
sq_requeue(store *st, const store_task *t, char **why)
{
    sqlite3_stmt *q = prepare(st, "UPDATE tasks SET state = 'queued', attempts = attempts - 1 "
                                  "WHERE id = ? AND state = 'running'", why);
    int rc;

    if (!q)
        return -1;
    sqlite3_bind_int64(q, 1, (sqlite3_int64)t->id);
    rc = sqlite3_step(q) == SQLITE_DONE ? 0 : db_fail(st, why, "update");
    sqlite3_finalize(q);
    return rc;
}

static int
sq_delete(store *st, uint64_t id, char **why)
{
    sqlite3_stmt *q = prepare(st, "DELETE FROM tasks WHERE id = ?", why);
    int rc;

    if (!q)
        return -1;
    sqlite3_bind_int64(q, 1, (sqlite3_int64)id);
    rc = sqlite3_step(q) == SQLITE_DONE ? (sqlite3_changes(DB(st)) > 0) : db_fail(st, why, "delete");
    sqlite3_finalize(q);
    /* Row first, files after: a crash between leaves orphans, never a row without files. */
    if (rc == 1)
        unlink_files(st, id);
    return rc;
}

static int
sq_list(store *st, const char *owner, unsigned mask, uint64_t after, store_task *out,
        int max, int *more, char **why)
{
    char states[128], sql[512];
    sqlite3_stmt *q;
    int n = 0, rc;

    store_state_list(mask ? mask : (1u << PROTO_NSTATES) - 1, states, sizeof(states));
    /* A NULL owner (an admin's list) is every owner's.  Two statements, so
     * that an owner's list keeps its index (tasks_owner). */
    snprintf(sql, sizeof(sql), "SELECT " COLUMNS " FROM tasks WHERE %s id > ? "
             "AND state IN (%s) ORDER BY id LIMIT ?", owner ? "owner = ? AND" : "", states);
    if (!(q = prepare(st, sql, why)))
        return -1;
    if (owner)
        sqlite3_bind_text(q, 1, owner, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, owner ? 2 : 1, (sqlite3_int64)after);
    sqlite3_bind_int(q, owner ? 3 : 2, max + 1);
    *more = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (n == max) {
            *more = 1;
            break;
        }
        read_row(q, &out[n]);
        out[n].received = received(st, &out[n]);
        n++;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        n = db_fail(st, why, "list");
    sqlite3_finalize(q);
    return n;
}

static int
sq_sweep(store *st, double now, char **why)
{
    sqlite3_stmt *q = prepare(st, "SELECT id FROM tasks WHERE expires_at <= ? "
                                  "AND state <> 'running' LIMIT 1000", why);
    uint64_t ids[1000];
    int n = 0;

    if (!q)
        return -1;
    sqlite3_bind_double(q, 1, now);
    while (n < 1000 && sqlite3_step(q) == SQLITE_ROW)
        ids[n++] = (uint64_t)sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    for (int i = 0; i < n; i++)
        if (sq_delete(st, ids[i], why) < 0)
            return -1;
    return n;
}

static int
sq_next_expiry(store *st, double *when)
{
    sqlite3_stmt *q = prepare(st, "SELECT min(expires_at) FROM tasks WHERE state <> 'running'",
                              NULL);
    int rc = 0;

    if (!q)
        return 0;
    if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_type(q, 0) != SQLITE_NULL) {
        *when = sqlite3_column_double(q, 0);
        rc = 1;
    }
    sqlite3_finalize(q);
    return rc;
}

/* Does a task id exist in a state in mask?  For the orphan sweep. */
static int
exists_in(store *st, uint64_t id, unsigned mask)
{
    store_task *t = malloc(sizeof(*t));
    int rc = 0;

    if (!t)
        return 1;
    switch (sq_get(st, id, t, NULL)) {
    case 1:
        rc = (mask & (1u << t->state)) != 0;
        break;
    case 0:
        rc = 0;
        break;
    default:
        rc = 1;     /* in doubt, keep it */
        break;
    }
    free(t);
    return rc;
}

/* Removes files in sub/ that no task owns.  keep_mask: the states whose tasks may own one. */
static void
sweep_folder(store *st, const char *sub, unsigned keep_mask)
{
    char dir[4096], path[4096 + 256];
    struct dirent *de;
    DIR *d;

    snprintf(dir, sizeof(dir), "%s/%s", st->dir, sub);
    if (!(d = opendir(dir)))
        return;
    while ((de = readdir(d)) != NULL) {
        char *end;
        unsigned long long id;
        if (de->d_name[0] == '.')
            continue;
        id = strtoull(de->d_name, &end, 10);
        if (strcmp(sub, "tmp") != 0 && end != de->d_name &&
            (*end == '\0' || strcmp(end, ".part") == 0) && exists_in(st, id, keep_mask))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        unlink(path);
    }
    closedir(d);
}

static int
sq_recover(store *st, int max_attempts, double now, double expires, int *requeued,
           int *failed, char **why)
{
    sqlite3_stmt *q;
    char msg[IP_MAX_MESSAGE];

    *requeued = *failed = 0;
    if (exec(st, "BEGIN IMMEDIATE", why))
        return -1;
    /* A task the server died running max_attempts times is probably what kills it. */
    snprintf(msg, sizeof(msg), "the server stopped %d times while running this task; "
             "it is not tried again", max_attempts);
    q = prepare(st, "UPDATE tasks SET state = 'failed', finished_at = ?1, expires_at = ?4, "
                    "error_status = 'internal-error', error = ?2 "
                    "WHERE state = 'running' AND attempts >= ?3", why);
    if (!q)
        goto fail;
    sqlite3_bind_double(q, 1, now);
    sqlite3_bind_text(q, 2, msg, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 3, max_attempts);
    bind_time(q, 4, expires);
    if (sqlite3_step(q) != SQLITE_DONE) {
        sqlite3_finalize(q);
        db_fail(st, why, "recover");
        goto fail;
    }
    *failed = sqlite3_changes(DB(st));
    sqlite3_finalize(q);
    if (exec(st, "UPDATE tasks SET state = 'queued' WHERE state = 'running'", why))
        goto fail;
    *requeued = sqlite3_changes(DB(st));
    if (exec(st, "COMMIT", why))
        goto fail;
    sweep_folder(st, "tmp", 0);
    sweep_folder(st, "in", (1u << PROTO_NSTATES) - 1);
    sweep_folder(st, "out", 1u << IP_TASK_DONE);
    return 0;

fail:
    exec(st, "ROLLBACK", NULL);
    return -1;
}

/* The input is its file in in/: nothing to copy. */
static int
sq_input(store *st, uint64_t id, char *path, size_t len, char **why)
{
    (void)why;
    store_path(st, STORE_INPUT, id, path, len);
    return 0;
}

/* sq_finish() renames the file: nothing to do before. */
static int
sq_put_result(store *st, const store_task *t, const char *temp, char **why)
{
    (void)st, (void)t, (void)temp, (void)why;
    return 0;
}

static long
sq_read_result(store *st, const store_task *t, uint64_t offset, void *buf, size_t len,
               char **why)
{
    char path[4096];
    size_t have = 0;
    int fd;

    store_path(st, STORE_RESULT, t->id, path, sizeof(path));
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        int gone = errno == ENOENT;
        store_fail(why, gone ? "task %llu was deleted meanwhile"
                             : "cannot open the result of task %llu", (unsigned long long)t->id);
        return gone ? -2 : -1;
    }
    while (have < len) {
        ssize_t n = pread(fd, (char *)buf + have, len - have, (off_t)(offset + have));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            return store_fail(why, "cannot read '%s': %s", path, strerror(e));
        }
        if (n == 0)
            break;
        have += (size_t)n;
    }
    close(fd);
    return (long)have;
}

/* One server per folder: no claim is anyone else's. */
static int
sq_renew(store *st, const uint64_t *ids, const int *attempts, size_t n, double snapshot,
         size_t *lost, int *requeued, char **why)
{
    (void)st, (void)ids, (void)attempts, (void)n, (void)snapshot, (void)lost, (void)requeued;
    (void)why;
    return 0;
}

static char *
sq_describe(store *st, int detail)
{
    char *where, *s;

    if (!detail || !(where = realpath(st->dir, NULL)))
        return strdup("SQLite: this server's alone");
    s = proto_strdupf("SQLite: this server's alone (%s/tasks.db)", where);
    free(where);
    return s;
}

static const store_ops sqlite_ops = {
    .name = "SQLite",
    .shared = 0,
    .close = sq_close,
    .describe = sq_describe,
    .recover = sq_recover,
    .begin = sq_begin,
    .add = sq_add,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .get = sq_get,
    .by_token = sq_by_token,
    .count = sq_count,
    .move = sq_move,
    .append = sq_append,
    .upload_done = sq_upload_done,
    .claim = sq_claim,
    .input = sq_input,
    .put_result = sq_put_result,
    .read_result = sq_read_result,
    .finish = sq_finish,
    .requeue = sq_requeue,
    .renew = sq_renew,
    .delete = sq_delete,
    .list = sq_list,
    .sweep = sq_sweep,
    .next_expiry = sq_next_expiry,
};

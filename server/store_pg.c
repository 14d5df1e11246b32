/* store_pg.c - the shared store: tasks and their images in PostgreSQL, one queue for
 * several servers.  Workers claim tasks with FOR UPDATE SKIP LOCKED under a lease that
 * a heartbeat renews; the attempt a claim took is its fencing token; LISTEN/NOTIFY
 * wakes waiters and idle workers on every server.  Images are rows of at most 1 MiB. */
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "log.h"
#include "proto.h"
#include "store_int.h"

#define SCHEMA_LOCK "1229801296" /* pg_advisory_xact_lock key of migrations ("IMGP") */
#define SWEEP_LOCK  "1229801299" /* ... of expiry, so that one server does it ("IMGS") */
#define CHUNK (1 << 20)         /* bytes of an image in one row */
#define POOL_MAX 8              /* idle connections kept for calls made without the lock */
#define POOL_OPEN 16            /* ... and open at most: the database's max_connections is
                                 * shared by every server (100 by default) */
#define MAX_ARGS 16             /* parameters of one statement */
#define RECONNECT_SECONDS 5     /* a broken connection is tried again this long */
#define HOLD_OFF_SECONDS 1      /* then calls fail at once this long, not each in turn */

typedef struct pg_store {
    store base;                 /* the common part; first, so a store * is a pg_store * */
    char *url;                  /* --store, as given (it may hold a password: never logged) */
    char *worker;               /* this server in tasks.worker: "machine/pid" */
    double lease;               /* seconds a claim lasts */
    int max_attempts;           /* claims a task gets before it fails (store_recover) */
    double ttl;                 /* seconds a task failed by the sweeper is kept */
    PGconn *main;               /* for calls under the caller's lock */
    int in_tx;                  /* main is inside store_begin() .. store_commit() */
    pthread_mutex_t pool_lock;  /* guards pool, npool and nopen */
    pthread_cond_t pool_free;   /* a connection was given back */
    PGconn *pool[POOL_MAX];     /* idle connections for calls made without the lock */
    int npool;                  /* how many */
    int nopen;                  /* pool connections open, idle or in use */
    void (*changed)(void *, int); /* store_config's */
    void *arg;                  /* its argument */
    pthread_t listener;         /* LISTENs, and calls changed */
    int listening;              /* the listener was started */
    int wake[2];                /* a pipe: a byte stops the listener */
    double down_until;          /* proto_seconds() before which a broken connection
                                 * is not tried again (atomic) */
    PGconn *beat;               /* the renewals' own (store_renew()), the sweeper's */
} pg_store;

#define PG(st) ((pg_store *)(st))

/*
 * The schema, one step per version; a database at version N has had steps
 * 1..N.  Never edit a step that has shipped: add one.  Names follow the
 * SQLite store's (see store_sqlite.c), so the lab's queries read the same.
 */
static const char *const migrations[] = {
    /* 1: tasks, their image bytes, and the wake-ups. */
    "CREATE TABLE tasks (\n"
    "  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
    "  owner         text NOT NULL,             -- 'uid@machine', 'krb5:...', 'anonymous'\n"
    "  token         text NOT NULL DEFAULT '',  -- the client's name for it\n"
    "  state         text NOT NULL CHECK (state IN\n"
    "                ('created','queued','running','done','failed','cancelled')),\n"
    "  hold          boolean NOT NULL,          -- waits for TASK_START\n"
    "  upload        boolean NOT NULL,          -- image sent with TASK_UPLOAD\n"
    "  size          bigint NOT NULL,           -- bytes of the input image\n"
    "  received      bigint NOT NULL DEFAULT 0, -- bytes of it in chunks so far\n"
    "  sha256        text NOT NULL DEFAULT '',  -- of the input, once complete\n"
    "  steps         text NOT NULL,             -- the pipeline, --steps syntax\n"
    "  spec          bytea NOT NULL,            -- XDR ip_task_spec, what a worker runs\n"
    "  created_at    double precision NOT NULL, -- Unix seconds, the server's clock\n"
    "  queued_at     double precision,\n"
    "  started_at    double precision,\n"
    "  finished_at   double precision,\n"
    "  expires_at    double precision,          -- removed by a sweeper after this\n"
    "  attempts      integer NOT NULL DEFAULT 0,-- claims so far; the last is the fencing token\n"
    "  worker        text,                      -- the server running it: 'machine/pid'\n"
    "  leased_until  timestamptz,               -- its claim lapses then (the database's clock)\n"
    "  result_size   bigint NOT NULL DEFAULT 0,\n"
    "  result_format text NOT NULL DEFAULT '',\n"
    "  width         integer NOT NULL DEFAULT 0,\n"
    "  height        integer NOT NULL DEFAULT 0,\n"
    "  bands         integer NOT NULL DEFAULT 0,\n"
    "  error_status  text NOT NULL DEFAULT '',  -- 'corrupt-image', 'too-large'...\n"
    "  error         text NOT NULL DEFAULT ''\n"
    ");\n"
    "CREATE UNIQUE INDEX tasks_token ON tasks (owner, token) WHERE token <> '';\n"
    "CREATE INDEX tasks_queue ON tasks (queued_at, id) WHERE state = 'queued';\n"
    "CREATE INDEX tasks_owner ON tasks (owner, id);\n"
    "CREATE INDEX tasks_expiry ON tasks (expires_at) WHERE expires_at IS NOT NULL;\n"
    "CREATE INDEX tasks_lease ON tasks (leased_until) WHERE state = 'running';\n"
    /* EXTERNAL: stored as is (images do not compress) and read in slices. */
    "CREATE TABLE chunks (\n"
    "  task    bigint NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,\n"
    "  kind    smallint NOT NULL,               -- 0 the input, 1 a result\n"
    "  attempt integer NOT NULL,                -- the attempt that made a result; 0: input\n"
    "  at      bigint NOT NULL,                 -- byte offset of data in the image\n"
    "  data    bytea NOT NULL,                  -- at most 1 MiB\n"
    "  PRIMARY KEY (task, kind, attempt, at)\n"
    ");\n"
    "ALTER TABLE chunks ALTER COLUMN data SET STORAGE EXTERNAL;\n"
    "ALTER TABLE chunks SET (autovacuum_vacuum_scale_factor = 0.02);\n"
    /* Every server LISTENs: a task changed (TASK_WAIT), one was queued (workers). */
    "CREATE FUNCTION imgproc_task_changed() RETURNS trigger LANGUAGE plpgsql AS $$\n"
    "BEGIN\n"
    "  IF TG_OP = 'DELETE' THEN\n"
    "    PERFORM pg_notify('imgproc_task', OLD.id::text);\n"
    "    RETURN OLD;\n"
    "  END IF;\n"
    "  PERFORM pg_notify('imgproc_task', NEW.id::text);\n"
    "  IF NEW.state = 'queued' THEN\n"
    "    PERFORM pg_notify('imgproc_queued', '');\n"
    "  END IF;\n"
    "  RETURN NEW;\n"
    "END $$;\n"
    "CREATE TRIGGER tasks_inserted AFTER INSERT ON tasks\n"
    "  FOR EACH ROW EXECUTE FUNCTION imgproc_task_changed();\n"
    "CREATE TRIGGER tasks_moved AFTER UPDATE ON tasks\n"
    "  FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)\n"
    "  EXECUTE FUNCTION imgproc_task_changed();\n"
    "CREATE TRIGGER tasks_deleted AFTER DELETE ON tasks\n"
    "  FOR EACH ROW EXECUTE FUNCTION imgproc_task_changed();\n",
};
#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

#define COLUMNS "id, owner, token, state, hold, upload, size, sha256, steps, spec, " \
                "created_at, queued_at, started_at, finished_at, expires_at, attempts, " \
                "result_size, result_format, width, height, bands, error_status, error, " \
                "received"

/* ------------------------------------------------------------ statements */

/* A statement's parameters: text, except images (binary). */
typedef struct pq_args {
    int n;                      /* how many */
    const char *v[MAX_ARGS];    /* each value; NULL is SQL NULL */
    int len[MAX_ARGS];          /* bytes of a binary one */
    int fmt[MAX_ARGS];          /* 1: binary */
    char num[MAX_ARGS][32];     /* numbers written out */
    char sqlstate[6];           /* set by run() when the statement failed */
} pq_args;

static void
arg_text(pq_args *a, const char *s)
{
    a->v[a->n] = s;
    a->len[a->n] = 0;
    a->fmt[a->n++] = 0;
}

static void
arg_i64(pq_args *a, long long v)
{
    snprintf(a->num[a->n], sizeof(a->num[0]), "%lld", v);
    arg_text(a, a->num[a->n]);
}

/* A time in Unix seconds; 0 is NULL (not yet). */
static void
arg_time(pq_args *a, double t)
{
    snprintf(a->num[a->n], sizeof(a->num[0]), "%.17g", t);
    arg_text(a, t > 0 ? a->num[a->n] : NULL);
}

static void
arg_bin(pq_args *a, const void *data, size_t len)
{
    a->v[a->n] = data;
    a->len[a->n] = (int)len;
    a->fmt[a->n++] = 1;
}

/* libpq's notices (a server shutting down, say) go to the log, not to stderr. */
static void
on_notice(void *arg, const char *msg)
{
    (void)arg;
    srv_log(SRV_LOG_VERBOSE, "PostgreSQL: %s", msg);
}

/*
 * A new connection.  Keepalives and a TCP timeout, because a server cut off
 * from the database sees no error otherwise, only a query that never ends;
 * the URL may set them otherwise.
 */
static PGconn *
connect_db(pg_store *p, char **why)
{
    static const char *const keys[] = { "connect_timeout", "keepalives_idle",
        "keepalives_interval", "keepalives_count", "tcp_user_timeout", "application_name",
        "options", "dbname", NULL };
    /*
     * The database's side of the same: a server cut off mid-transaction
     * leaves a session holding its locks until the database notices (two
     * hours by default).  And no statement waits for a lock without end:
     * the main connection is used under the tasks' lock.
     */
    static const char server_side[] =
        "-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 -c tcp_keepalives_count=3 "
        "-c tcp_user_timeout=10000 -c idle_in_transaction_session_timeout=30s "
        "-c lock_timeout=15s";
    char app[64];
    const char *vals[] = { "5", "5", "2", "3", "10000", app, server_side, p->url, NULL };
    PGconn *c;

    /* pg_stat_activity then tells the servers apart. */
    snprintf(app, sizeof(app), "imgprocd %s", p->worker ? p->worker : "");
    c = PQconnectdbParams(keys, vals, 1);

    if (!c) {
        store_fail(why, "out of memory");
        return NULL;
    }
    if (PQstatus(c) != CONNECTION_OK) {
        const char *m = PQerrorMessage(c);
        store_fail(why, "cannot connect to PostgreSQL: %.*s", (int)strcspn(m, "\n"), m);
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeProcessor(c, on_notice, NULL);
    return c;
}

/* The first line of what went wrong. */
static int
pq_fail(char **why, PGresult *r, PGconn *c, const char *what)
{
    const char *m = r ? PQresultErrorMessage(r) : "";

    if (!*m)
        m = PQerrorMessage(c);
    return store_fail(why, "PostgreSQL: %s: %.*s", what, (int)strcspn(m, "\n"), m);
}

/*
 * Runs sql on *c; binary asks for binary results (images).  A connection
 * found broken is opened again (the database restarted, say), and a
 * statement it broke under is tried once more, outside a transaction.
 * The result (PQclear it), or NULL with *why.
 */
static PGresult *
run(pg_store *p, PGconn *c, int in_tx, const char *sql, pq_args *a, int binary,
    const char *what, char **why)
{
    for (int tries = 0;; tries++) {
        PGresult *r;
        ExecStatusType s;

        if (PQstatus(c) == CONNECTION_BAD) {
            /* A new session is outside the transaction: what came before is lost. */
            if (in_tx) {
                pq_fail(why, NULL, c, "connection lost inside a transaction");
                return NULL;
            }
            /*
             * A restart takes about a second: ride it out, up to
             * RECONNECT_SECONDS.  Then, for HOLD_OFF_SECONDS, say at once that
             * it is out of reach, rather than make each caller wait in turn.
             */
            double down;
            __atomic_load(&p->down_until, &down, __ATOMIC_RELAXED);
            if (proto_seconds() < down) {
                store_fail(why, "PostgreSQL: out of reach; try again in a few seconds");
                return NULL;
            }
            for (double until = proto_seconds() + RECONNECT_SECONDS;;) {
                PQreset(c);
                if (PQstatus(c) == CONNECTION_OK)
                    break;
                if (proto_seconds() + 0.2 >= until) {
                    double again = proto_seconds() + HOLD_OFF_SECONDS;
                    __atomic_store(&p->down_until, &again, __ATOMIC_RELAXED);
                    pq_fail(why, NULL, c, "out of reach");
                    return NULL;
                }
                poll(NULL, 0, 200);
            }
            srv_log(SRV_LOG_NOTICE, "PostgreSQL: connected again\n");
        }
        r = PQexecParams(c, sql, a ? a->n : 0, NULL, a ? a->v : NULL, a ? a->len : NULL,
                         a ? a->fmt : NULL, binary);
        s = PQresultStatus(r);
        if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK)
            return r;
        if (PQstatus(c) == CONNECTION_BAD && !in_tx && tries == 0) {
            PQclear(r);
            continue;
        }
        if (a)
            snprintf(a->sqlstate, sizeof(a->sqlstate), "%s",
                     PQresultErrorField(r, PG_DIAG_SQLSTATE) ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : "");
        pq_fail(why, r, c, what);
        PQclear(r);
        return NULL;
    }
}

/*
 * COMMIT on c, checked: PostgreSQL answers a COMMIT of a failed transaction
 * with ROLLBACK, and one outside any (a session opened again) with a
 * warning; neither has committed anything.  0 or -1.
 */
static int
commit(PGconn *c, char **why)
{
    PGresult *r;
    int ok;

    if (PQtransactionStatus(c) == PQTRANS_INERROR) {
        PQclear(PQexec(c, "ROLLBACK"));     /* else every later statement fails */
        return pq_fail(why, NULL, c, "commit: the transaction had failed");
    }
    if (PQtransactionStatus(c) != PQTRANS_INTRANS)
        return pq_fail(why, NULL, c, "commit: the transaction was lost");
    r = PQexec(c, "COMMIT");
    ok = PQresultStatus(r) == PGRES_COMMAND_OK && strcmp(PQcmdStatus(r), "COMMIT") == 0;
    if (!ok)
        pq_fail(why, r, c, "commit");
    PQclear(r);
    return ok ? 0 : -1;
}

/* run() on the main connection; -1 or 0, the result dropped. */
static int
exec_main(pg_store *p, const char *sql, pq_args *a, const char *what, char **why)
{
    PGresult *r = run(p, p->main, p->in_tx, sql, a, 0, what, why);

    PQclear(r);
    return r ? 0 : -1;
}

/* Rows an UPDATE or DELETE changed. */
static int
changed_rows(PGresult *r)
{
    return atoi(PQcmdTuples(r));
}

/* A connection for a call made without the caller's lock; give it back with put_conn(). */
static PGconn *
get_conn(pg_store *p, char **why)
{
    PGconn *c = NULL;

    pthread_mutex_lock(&p->pool_lock);
    while (p->npool == 0 && p->nopen >= POOL_OPEN)
        pthread_cond_wait(&p->pool_free, &p->pool_lock);
    if (p->npool > 0)
        c = p->pool[--p->npool];
    else
        p->nopen++;             /* a place for the one connect_db() opens */
    pthread_mutex_unlock(&p->pool_lock);
    if (!c && !(c = connect_db(p, why))) {
        pthread_mutex_lock(&p->pool_lock);
        p->nopen--;
        pthread_cond_signal(&p->pool_free);
        pthread_mutex_unlock(&p->pool_lock);
    }
    return c;
}

static void
put_conn(pg_store *p, PGconn *c)
{
    pthread_mutex_lock(&p->pool_lock);
    /* Broken, or left inside a transaction: closed. */
    if (PQtransactionStatus(c) == PQTRANS_IDLE && p->npool < POOL_MAX) {
        p->pool[p->npool++] = c;
        c = NULL;
    } else
        p->nopen--;
    pthread_cond_signal(&p->pool_free);
    pthread_mutex_unlock(&p->pool_lock);
    if (c)
        PQfinish(c);
}

/* Unix seconds, as the tasks' times are kept. */
static double
wall_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------ rows */

static double
col_time(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtod(PQgetvalue(r, row, col), NULL);
}

static void
col_text(PGresult *r, int row, int col, char *buf, size_t len)
{
    snprintf(buf, len, "%s", PQgetvalue(r, row, col));
}

static long long
col_int(PGresult *r, int row, int col)
{
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

/* Row row of r (COLUMNS, text format) into t. */
static void
read_row(PGresult *r, int row, store_task *t)
{
    char word[IP_MAX_NAME + 1];
    unsigned char *spec;
    size_t n = 0;

    memset(t, 0, sizeof(*t));
    t->id = (uint64_t)col_int(r, row, 0);
    col_text(r, row, 1, t->owner, sizeof(t->owner));
    col_text(r, row, 2, t->token, sizeof(t->token));
    col_text(r, row, 3, word, sizeof(word));
    proto_task_state_parse(word, &t->state);
    t->hold = PQgetvalue(r, row, 4)[0] == 't';
    t->upload = PQgetvalue(r, row, 5)[0] == 't';
    t->size = (uint64_t)col_int(r, row, 6);
    col_text(r, row, 7, t->sha256, sizeof(t->sha256));
    col_text(r, row, 8, t->steps, sizeof(t->steps));
    spec = PQunescapeBytea((const unsigned char *)PQgetvalue(r, row, 9), &n);
    if (spec && n <= sizeof(t->spec)) {
        memcpy(t->spec, spec, n);
        t->spec_len = n;
    }
    PQfreemem(spec);
    t->created = col_time(r, row, 10);
    t->queued = col_time(r, row, 11);
    t->started = col_time(r, row, 12);
    t->finished = col_time(r, row, 13);
    t->expires = col_time(r, row, 14);
    t->attempts = (int)col_int(r, row, 15);
    t->result_size = (uint64_t)col_int(r, row, 16);
    col_text(r, row, 17, word, sizeof(word));
    proto_format_parse(word, &t->result_format);
    t->width = (unsigned)col_int(r, row, 18);
    t->height = (unsigned)col_int(r, row, 19);
    t->bands = (unsigned)col_int(r, row, 20);
    col_text(r, row, 21, word, sizeof(word));
    if (proto_status_parse(word, &t->error_status))
        t->error_status = IP_OK;
    col_text(r, row, 22, t->error, sizeof(t->error));
    t->received = (uint64_t)col_int(r, row, 23);
}

/* At most one row of sql into t.  1, 0 or -1. */
static int
get_one(pg_store *p, const char *sql, pq_args *a, store_task *t, char **why)
{
    PGresult *r = run(p, p->main, p->in_tx, sql, a, 0, "read", why);
    int n;

    if (!r)
        return -1;
    n = PQntuples(r) > 0;
    if (n)
        read_row(r, 0, t);
    PQclear(r);
    return n;
}

/* ------------------------------------------------------------ the listener */

/*
 * LISTENs on its own connection and calls changed for every notification:
 * waiting is event-driven, never a loop of queries.  After a reconnection
 * it wakes everyone, since notifications sent meanwhile are lost.
 */
static void *
listen_main(void *arg)
{
    pg_store *p = arg;
    PGconn *c = NULL;
    char *why = NULL;

    for (;;) {
        struct pollfd fds[2] = { { p->wake[0], POLLIN, 0 }, { -1, POLLIN, 0 } };
        PGnotify *n;
        int queued = 0, any = 0;

        if (!c || PQstatus(c) != CONNECTION_OK) {
            if (c)
                PQfinish(c);
            c = connect_db(p, &why);
            if (c) {
                PGresult *r = PQexec(c, "LISTEN imgproc_task; LISTEN imgproc_queued");
                if (PQresultStatus(r) == PGRES_COMMAND_OK)
                    p->changed(p->arg, 1);
                PQclear(r);
            }
            if (!c || PQstatus(c) != CONNECTION_OK) {
                free(why);
                why = NULL;
                if (poll(fds, 1, 500) > 0)
                    break;
                continue;
            }
        }
        fds[1].fd = PQsocket(c);
        if (poll(fds, 2, -1) < 0 && errno != EINTR)
            break;
        if (fds[0].revents)
            break;
        if (!fds[1].revents)
            continue;
        if (!PQconsumeInput(c))
            continue;           /* broken: the loop's top connects again */
        while ((n = PQnotifies(c)) != NULL) {
            any = 1;
            queued |= strcmp(n->relname, "imgproc_queued") == 0;
            PQfreemem(n);
        }
        if (any)
            p->changed(p->arg, queued);
    }
    if (c)
        PQfinish(c);
    free(why);
    return NULL;
}

/* ------------------------------------------------------------ life */

/*
 * Brings the schema to SCHEMA_VERSION in one transaction, under an advisory
 * lock: servers starting together wait for one another, and a database
 * newer than this program is refused.
 */
static int
migrate(pg_store *p, char **why)
{
    PGresult *r;
    pq_args a = { 0 };
    int have;

    if (exec_main(p, "BEGIN", NULL, "begin", why))
        return -1;
    p->in_tx = 1;
    if (exec_main(p, "SET LOCAL client_min_messages = warning", NULL, "migrate", why) ||
        exec_main(p, "SELECT pg_advisory_xact_lock(" SCHEMA_LOCK ")", NULL,
                  "migrate", why) ||
        exec_main(p, "CREATE TABLE IF NOT EXISTS imgproc_schema (\n"
                     "  version    integer PRIMARY KEY,\n"
                     "  applied_at timestamptz NOT NULL DEFAULT now(),\n"
                     "  applied_by text NOT NULL)", NULL, "migrate", why))
        goto fail;
    if (!(r = run(p, p->main, 1, "SELECT coalesce(max(version), 0) FROM imgproc_schema", NULL, 0,
                  "migrate", why)))
        goto fail;
    have = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    if (have > SCHEMA_VERSION) {
        store_fail(why, "the database's schema is version %d, newer than this imgprocd's %d: "
                   "upgrade imgprocd on this host", have, SCHEMA_VERSION);
        goto fail;
    }
    for (int v = have + 1; v <= SCHEMA_VERSION; v++) {
        a.n = 0;
        arg_i64(&a, v);
        arg_text(&a, p->worker);
        r = PQexec(p->main, migrations[v - 1]);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            pq_fail(why, r, p->main, "schema");
            PQclear(r);
            goto fail;
        }
        PQclear(r);
        if (exec_main(p, "INSERT INTO imgproc_schema (version, applied_by) VALUES ($1, $2)",
                      &a, "migrate", why))
            goto fail;
        srv_log(SRV_LOG_NOTICE, "PostgreSQL: schema brought to version %d\n", v);
    }
    p->in_tx = 0;
    return commit(p->main, why);

fail:
    exec_main(p, "ROLLBACK", NULL, "rollback", NULL);
    p->in_tx = 0;
    return -1;
}

static void
pg_close(store *st)
{
    pg_store *p = PG(st);

    if (p->listening) {
        if (write(p->wake[1], "x", 1) < 0)
            srv_log(SRV_LOG_ERROR, "cannot stop the PostgreSQL listener\n");
        pthread_join(p->listener, NULL);
    }
    if (p->wake[0] >= 0) {
        close(p->wake[0]);
        close(p->wake[1]);
    }
    while (p->npool > 0)
        PQfinish(p->pool[--p->npool]);
    if (p->beat)
        PQfinish(p->beat);
    if (p->main)
        PQfinish(p->main);
    pthread_mutex_destroy(&p->pool_lock);
    pthread_cond_destroy(&p->pool_free);
    free(p->url);
    free(p->worker);
    store_base_close(st);
    free(p);
}

static const store_ops pg_ops;

/* A state folder that an SQLite store used: tasks.db is there. */
static int
has_sqlite_tasks(const char *dir)
{
    char path[4096];
    struct stat sb;

    snprintf(path, sizeof(path), "%s/tasks.db", dir);
    return stat(path, &sb) == 0 && sb.st_size > 0;
}

store *
store_pg_open(const store_config *cfg, char **why)
{
    static const char *const sub[] = { "tmp", NULL };
    pg_store *p = calloc(1, sizeof(*p));

    if (!p) {
        store_fail(why, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&p->pool_lock, NULL);
    pthread_cond_init(&p->pool_free, NULL);
    p->wake[0] = p->wake[1] = -1;
    p->lease = cfg->lease > 0 ? cfg->lease : 30;
    p->max_attempts = 3;
    p->ttl = 86400;
    p->changed = cfg->changed;
    p->arg = cfg->arg;
    if (store_base_open(&p->base, &pg_ops, cfg->dir, sub, why))
        goto fail;
    if (!(p->url = strdup(cfg->url)) || !(p->worker = strdup(cfg->worker ? cfg->worker : "?"))) {
        store_fail(why, "out of memory");
        goto fail;
    }
    if (!(p->main = connect_db(p, why)) || migrate(p, why))
        goto fail;
    if (has_sqlite_tasks(cfg->dir))
        srv_log(SRV_LOG_WARNING, "the state folder %s holds an SQLite task database (tasks.db) "
                "that this server no longer serves: its tasks are not in PostgreSQL; start "
                "imgprocd without --store to finish or fetch them\n", cfg->dir);
    srv_log(SRV_LOG_NOTICE, "store: PostgreSQL database %s on %s port %s (schema version %d), "
            "leases of %g s\n", PQdb(p->main), *PQhost(p->main) ? PQhost(p->main) : "a socket",
            PQport(p->main), SCHEMA_VERSION, p->lease);
    if (p->changed) {
        if (pipe2(p->wake, O_CLOEXEC) < 0) {
            store_fail(why, "cannot make a pipe: %s", strerror(errno));
            goto fail;
        }
        if (pthread_create(&p->listener, NULL, listen_main, p) != 0) {
            store_fail(why, "cannot start the PostgreSQL listener thread");
            goto fail;
        }
        p->listening = 1;
    }
    return &p->base;

fail:
    pg_close(&p->base);
    return NULL;
}

/* ------------------------------------------------------------ tasks */

/*
 * The running tasks whose claim lapsed go back to the queue (or fail after
 * max_attempts), whichever server held them.  SKIP LOCKED: servers
 * sweeping at once share the work.  The number moved, or -1.
 */
static int
requeue_lapsed(pg_store *p, PGconn *c, int in_tx, double now, int *failed, char **why)
{
    char msg[IP_MAX_MESSAGE], at[32];
    pq_args a = { 0 };
    PGresult *r;
    int n;

    snprintf(msg, sizeof(msg), "%d times the server running this task stopped renewing its "
             "claim (it crashed, or was cut off from the database); it is not tried again",
             p->max_attempts);
    snprintf(at, sizeof(at), "%.17g", now + p->ttl);
    arg_i64(&a, p->max_attempts);
    arg_time(&a, now);
    arg_text(&a, at);
    arg_text(&a, msg);
    arg_i64(&a, (long long)(p->lease * 1000));
    r = run(p, c, in_tx,
            "UPDATE tasks SET\n"
            "  state = CASE WHEN attempts >= $1 THEN 'failed' ELSE 'queued' END,\n"
            "  finished_at = CASE WHEN attempts >= $1 THEN $2::float8 END,\n"
            "  expires_at = CASE WHEN attempts >= $1 THEN $3::float8 ELSE expires_at END,\n"
            "  error_status = CASE WHEN attempts >= $1 THEN 'internal-error' ELSE '' END,\n"
            "  error = CASE WHEN attempts >= $1 THEN $4 ELSE '' END,\n"
            "  worker = NULL, leased_until = NULL\n"
            /* A lease that ran out while the database itself was down is
             * not the server's fault: it gets one lease from the restart. */
            "WHERE id IN (SELECT id FROM tasks WHERE state = 'running' AND greatest(leased_until,\n"
            "               pg_postmaster_start_time() + make_interval(secs => $5::float8 / 1000))\n"
            "               < now() FOR UPDATE SKIP LOCKED)\n"
            "RETURNING state", &a, 0, "requeue", why);
    if (!r)
        return -1;
    n = PQntuples(r);
    *failed = 0;
    for (int i = 0; i < n; i++)
        *failed += strcmp(PQgetvalue(r, i, 0), "failed") == 0;
    PQclear(r);
    return n;
}

/* Leftovers in tmp/ (this server's alone: the folder is locked). */
static void
clear_temps(store *st)
{
    char dir[4096], path[4096 + 256];
    struct dirent *de;
    DIR *d;

    snprintf(dir, sizeof(dir), "%s/tmp", st->dir);
    if (!(d = opendir(dir)))
        return;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.') {
            snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
            unlink(path);
        }
    closedir(d);
}

/*
 * Other servers may be running tasks now: only lapsed claims are taken
 * back (this server's own, after a crash, once their lease ends).
 */
static int
pg_recover(store *st, int max_attempts, double now, double expires, int *requeued,
           int *failed, char **why)
{
    pg_store *p = PG(st);
    int n;

    p->max_attempts = max_attempts;
    if (expires > now)
        p->ttl = expires - now;
    clear_temps(st);
    if ((n = requeue_lapsed(p, p->main, p->in_tx, now, failed, why)) < 0)
        return -1;
    *requeued = n - *failed;
    return 0;
}

static int
pg_begin(store *st, char **why)
{
    if (exec_main(PG(st), "BEGIN", NULL, "begin", why))
        return -1;
    PG(st)->in_tx = 1;
    return 0;
}

/*
 * Writes the file path into chunk rows of task id (kind, attempt) on c.
 * Bytes, or -1, or -2 when the task no longer exists.
 */
static long long
put_file(pg_store *p, PGconn *c, int in_tx, uint64_t id, int kind, int attempt, const char *path,
         char **why)
{
    char *buf = malloc(CHUNK);
    long long at = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0 || !buf) {
        store_fail(why, "cannot read '%s': %s", path, buf ? strerror(errno) : "out of memory");
        at = -1;
        goto cleanup;
    }
    for (;;) {
        pq_args a = { 0 };
        size_t have = 0;
        PGresult *r;
        while (have < CHUNK) {
            ssize_t n = read(fd, buf + have, CHUNK - have);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                store_fail(why, "cannot read '%s': %s", path, strerror(errno));
                at = -1;
                goto cleanup;
            }
            if (n == 0)
                break;
            have += (size_t)n;
        }
        if (have == 0)
            break;
        arg_i64(&a, (long long)id);
        arg_i64(&a, kind);
        arg_i64(&a, attempt);
        arg_i64(&a, at);
        arg_bin(&a, buf, have);
        r = run(p, c, in_tx, "INSERT INTO chunks (task, kind, attempt, at, data) "
                          "VALUES ($1, $2, $3, $4, $5)", &a, 0, "write an image", why);
        if (!r) {
            /* -2: the task is gone (foreign_key_violation). */
            at = strcmp(a.sqlstate, "23503") == 0 ? -2 : -1;
            goto cleanup;
        }
        PQclear(r);
        at += (long long)have;
    }

cleanup:
    if (fd >= 0)
        close(fd);
    free(buf);
    return at;
}

static int
pg_add(store *st, store_task *t, const char *temp, char **why)
{
    pg_store *p = PG(st);
    pq_args a = { 0 };
    PGresult *r;

    arg_text(&a, t->owner);
    arg_text(&a, t->token);
    arg_text(&a, proto_task_state_name(t->state));
    arg_text(&a, t->hold ? "true" : "false");
    arg_text(&a, t->upload ? "true" : "false");
    arg_i64(&a, (long long)t->size);
    arg_text(&a, t->sha256);
    arg_text(&a, t->steps);
    arg_bin(&a, t->spec, t->spec_len);
    arg_time(&a, t->created);
    arg_time(&a, t->queued);
    arg_time(&a, t->expires);
    r = run(p, p->main, p->in_tx,
            "INSERT INTO tasks (owner, token, state, hold, upload, size, sha256, steps, spec, "
            "created_at, queued_at, expires_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
            &a, 0, "insert", why);
    if (!r)
        return -1;
    t->id = (uint64_t)col_int(r, 0, 0);
    PQclear(r);
    /* The image goes in with its row, in the same transaction. */
    if (temp) {
        long long n = put_file(p, p->main, 1, t->id, 0, 0, temp, why);
        if (n < 0)
            return -1;
        a.n = 0;
        arg_i64(&a, (long long)t->id);
        arg_i64(&a, n);
        if (exec_main(p, "UPDATE tasks SET received = $2 WHERE id = $1", &a, "insert", why))
            return -1;
        unlink(temp);
    }
    return 0;
}

static int
pg_commit(store *st, int renamed, char **why)
{
    int rc = commit(PG(st)->main, why);

    (void)renamed;
    PG(st)->in_tx = 0;
    return rc;
}

/* The rows added are gone with the transaction; their temporary files were removed. */
static void
pg_rollback(store *st, const uint64_t *ids, size_t n)
{
    (void)ids, (void)n;
    exec_main(PG(st), "ROLLBACK", NULL, "rollback", NULL);
    PG(st)->in_tx = 0;
}

static int
pg_get(store *st, uint64_t id, store_task *t, char **why)
{
    pq_args a = { 0 };

    arg_i64(&a, (long long)id);
    return get_one(PG(st), "SELECT " COLUMNS " FROM tasks WHERE id = $1", &a, t, why);
}

/*
 * Inside a create's transaction the (owner, token) pair is locked first:
 * a create of the same token on another server waits for this one's
 * commit, then finds its task, as a retry on one server would.
 */
static int
pg_by_token(store *st, const char *owner, const char *token, store_task *t, char **why)
{
    pg_store *p = PG(st);
    pq_args a = { 0 };

    arg_text(&a, owner);
    arg_text(&a, token);
    if (p->in_tx && exec_main(p, "SELECT pg_advisory_xact_lock(hashtextextended("
                                 "$1 || '/' || $2, 0))", &a, "lock a token", why))
        return -1;
    return get_one(p, "SELECT " COLUMNS " FROM tasks WHERE owner = $1 AND token = $2", &a, t,
                   why);
}

static long
pg_count(store *st, int state)
{
    pg_store *p = PG(st);
    pq_args a = { 0 };
    PGresult *r;
    long n;

    if (state >= 0)
        arg_text(&a, proto_task_state_name((ip_task_state)state));
    r = run(p, p->main, p->in_tx, state < 0 ? "SELECT count(*) FROM tasks"
                                         : "SELECT count(*) FROM tasks WHERE state = $1",
            &a, 0, "count", NULL);
    if (!r)
        return -1;
    n = (long)col_int(r, 0, 0);
    PQclear(r);
    return n;
}

static int
pg_move(store *st, uint64_t id, unsigned from_mask, ip_task_state to, double now,
        double expires, char **why)
{
    pg_store *p = PG(st);
    const char *tc = store_time_column(to);
    char states[128], sql[512];
    pq_args a = { 0 };
    PGresult *r;
    int n;

    store_state_list(from_mask, states, sizeof(states));
    snprintf(sql, sizeof(sql), "UPDATE tasks SET state = $1, expires_at = $2%s%s%s "
             "WHERE id = $3 AND state IN (%s)", tc ? ", " : "", tc ? tc : "",
             tc ? " = $4" : "", states);
    arg_text(&a, proto_task_state_name(to));
    arg_time(&a, expires);
    arg_i64(&a, (long long)id);
    if (tc)
        arg_time(&a, now);
    if (!(r = run(p, p->main, p->in_tx, sql, &a, 0, "update", why)))
        return -1;
    n = changed_rows(r) > 0;
    PQclear(r);
    return n;
}

/* One transaction: the row locked, the bytes not held yet added as a chunk. */
static int
pg_append(store *st, uint64_t id, uint64_t size, uint64_t offset, const void *data,
          size_t len, uint64_t *got, ip_status *st_out, char **why)
{
    pg_store *p = PG(st);
    pq_args a = { 0 };
    PGresult *r;

    *st_out = IP_EINTERNAL;
    if (exec_main(p, "BEGIN", NULL, "begin", why))
        return -1;
    p->in_tx = 1;
    arg_i64(&a, (long long)id);
    if (!(r = run(p, p->main, 1, "SELECT received FROM tasks WHERE id = $1 FOR UPDATE", &a, 0,
                  "upload", why)))
        goto fail;
    *got = PQntuples(r) ? (uint64_t)col_int(r, 0, 0) : 0;
    PQclear(r);
    if (store_check_chunk(size, offset, len, *got, st_out, why))
        goto fail;
    if (offset + len > *got) {
        /* Only the part not held yet: a retried chunk is not written twice. */
        size_t skip = (size_t)(*got - offset);
        a.n = 0;
        arg_i64(&a, (long long)id);
        arg_i64(&a, (long long)*got);
        arg_bin(&a, (const char *)data + skip, len - skip);
        if (exec_main(p, "INSERT INTO chunks (task, kind, attempt, at, data) "
                         "VALUES ($1, 0, 0, $2, $3)", &a, "upload", why))
            goto fail;
        a.n = 2;
        arg_i64(&a, (long long)(offset + len));
        if (exec_main(p, "UPDATE tasks SET received = $3 WHERE id = $1 AND received = $2",
                      &a, "upload", why))
            goto fail;
    }
    p->in_tx = 0;
    if (commit(p->main, why))
        return -1;
    if (offset + len > *got)
        *got = offset + len;
    return 0;

fail:
    exec_main(p, "ROLLBACK", NULL, "rollback", NULL);
    p->in_tx = 0;
    return -1;
}

/* Calls fn for each chunk of task id's (kind, attempt) bytes from byte from, in order, on c. */
static int
each_chunk(pg_store *p, PGconn *c, uint64_t id, int kind, int attempt, uint64_t from,
           int (*fn)(void *ctx, const char *data, size_t len), void *ctx, char **why)
{
    for (;;) {
        pq_args a = { 0 };
        PGresult *r;
        size_t len;
        arg_i64(&a, (long long)id);
        arg_i64(&a, kind);
        arg_i64(&a, attempt);
        arg_i64(&a, (long long)from);
        r = run(p, c, 0, "SELECT data FROM chunks WHERE task = $1 AND kind = $2 AND attempt = $3 "
                      "AND at = $4", &a, 1, "read an image", why);
        if (!r)
            return -1;
        if (PQntuples(r) == 0) {
            PQclear(r);
            return 0;
        }
        len = (size_t)PQgetlength(r, 0, 0);
        if (len == 0 || fn(ctx, PQgetvalue(r, 0, 0), len)) {
            PQclear(r);
            return len ? store_fail(why, "cannot keep the image of task %llu",
                                    (unsigned long long)id) : 0;
        }
        PQclear(r);
        from += len;
    }
}

static int
hash_chunk(void *ctx, const char *data, size_t len)
{
    return proto_sha256_update(ctx, data, len);
}

static int
pg_upload_done(store *st, uint64_t id, const char *known, char sha[65], char **why)
{
    pg_store *p = PG(st);
    pq_args a = { 0 };

    if (known)
        snprintf(sha, 65, "%s", known);
    else {
        proto_sha256 *h = proto_sha256_new();
        if (!h || each_chunk(p, p->main, id, 0, 0, 0, hash_chunk, h, why) ||
            proto_sha256_final(h, sha)) {
            proto_sha256_free(h);
            return store_fail(why, "cannot read back the upload of task %llu",
                              (unsigned long long)id);
        }
        proto_sha256_free(h);
    }
    arg_i64(&a, (long long)id);
    arg_text(&a, sha);
    return exec_main(p, "UPDATE tasks SET sha256 = $2 WHERE id = $1", &a, "update", why);
}

/*
 * One statement: the oldest queued task no other server is claiming,
 * RUNNING under a lease of the database's clock (the servers' clocks do not
 * matter), its attempt counted: the fencing token.
 */
static int
pg_claim(store *st, double now, store_task *t, char **why)
{
    pg_store *p = PG(st);
    pq_args a = { 0 };

    arg_time(&a, now);
    arg_text(&a, p->worker);
    arg_i64(&a, (long long)(p->lease * 1000));
    return get_one(p, "UPDATE tasks SET state = 'running', started_at = $1, "
                      "attempts = attempts + 1, worker = $2, "
                      "leased_until = now() + make_interval(secs => $3::float8 / 1000) "
                      "WHERE id = (SELECT id FROM tasks WHERE state = 'queued' "
                      "ORDER BY queued_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) "
                      "RETURNING " COLUMNS, &a, t, why);
}

static int
write_chunk(void *ctx, const char *data, size_t len)
{
    return proto_write_all(*(int *)ctx, data, len);
}

/* The input copied from its rows into tmp/, one chunk in memory at a time. */
static int
pg_input(store *st, uint64_t id, char *path, size_t len, char **why)
{
    pg_store *p = PG(st);
    PGconn *c;
    int fd, rc;

    if (store_write_temp(st, NULL, 0, 0, path, len, why))
        return -1;
    if ((fd = open(path, O_WRONLY | O_CLOEXEC)) < 0 || !(c = get_conn(p, why))) {
        if (fd >= 0)
            close(fd);
        else
            store_fail(why, "cannot open '%s': %s", path, strerror(errno));
        unlink(path);
        return -1;
    }
    rc = each_chunk(p, c, id, 0, 0, 0, write_chunk, &fd, why);
    put_conn(p, c);
    close(fd);
    if (rc)
        unlink(path);
    return rc;
}

/* The result's rows, under the claimed attempt: a late attempt writes beside, never over. */
static int
pg_put_result(store *st, const store_task *t, const char *temp, char **why)
{
    pg_store *p = PG(st);
    pq_args a = { 0 };
    PGconn *c = get_conn(p, why);
    PGresult *r;
    int rc = -1;

    if (!c)
        return -1;
    arg_i64(&a, (long long)t->id);
    arg_i64(&a, t->attempts);
    if (!(r = run(p, c, 0, "BEGIN", NULL, 0, "begin", why)))
        goto cleanup;
    PQclear(r);
    if (!(r = run(p, c, 1, "DELETE FROM chunks WHERE task = $1 AND kind = 1 AND attempt = $2", &a,
                  0, "write a result", why)))
        goto cleanup;
    PQclear(r);
    switch (put_file(p, c, 1, t->id, 1, t->attempts, temp, why)) {
    case -2:
        /* Deleted meanwhile: nothing to keep, and store_finish() will say so. */
        rc = 0;
        goto cleanup;
    case -1:
        goto cleanup;
    }
    if (commit(c, why) == 0)
        rc = 0;

cleanup:
    if (PQtransactionStatus(c) != PQTRANS_IDLE)
        PQclear(PQexec(c, "ROLLBACK"));
    put_conn(p, c);
    return rc;
}

/* A slice of the result's rows. */
static long
pg_read_result(store *st, const store_task *t, uint64_t offset, void *buf, size_t len,
               char **why)
{
    pg_store *p = PG(st);
    pq_args a = { 0 };
    PGconn *c;
    PGresult *r;
    size_t got = 0;

    if (len == 0)
        return 0;
    if (!(c = get_conn(p, why)))
        return -1;
    arg_i64(&a, (long long)t->id);
    arg_i64(&a, t->attempts);
    arg_i64(&a, (long long)offset);
    arg_i64(&a, (long long)(offset + len));
    /* EXTERNAL storage: substring() fetches only the slices it needs. */
    r = run(p, c, 0, "SELECT at, substring(data FROM (greatest($3::bigint - at, 0) + 1)::int "
                  "FOR (least($4::bigint, at + length(data)) - greatest($3::bigint, at))::int) "
                  "FROM chunks WHERE task = $1 AND kind = 1 AND attempt = $2 "
                  "AND at < $4::bigint AND at + length(data) > $3::bigint ORDER BY at",
            &a, 1, "read a result", why);
    if (r && PQntuples(r) == 0) {
        /* No rows where some were due: the task was deleted meanwhile? */
        PGresult *e;
        a.n = 1;
        if ((e = run(p, c, 0, "SELECT 1 FROM tasks WHERE id = $1", &a, 0, "read a result",
                     why)) && PQntuples(e) == 0) {
            PQclear(e);
            PQclear(r);
            put_conn(p, c);
            store_fail(why, "task %llu was deleted meanwhile", (unsigned long long)t->id);
            return -2;
        }
        PQclear(e);
    }
    put_conn(p, c);
    if (!r)
        return -1;
    for (int i = 0; i < PQntuples(r); i++) {
        uint64_t at;
        size_t n = (size_t)PQgetlength(r, i, 1);
        memcpy(&at, PQgetvalue(r, i, 0), 8);
        at = be64toh(at);
        at = at > offset ? at - offset : 0;
        if (at != got || got + n > len)
            break;              /* a gap: the rows changed under us */
        memcpy((char *)buf + got, PQgetvalue(r, i, 1), n);
        got += n;
    }
    PQclear(r);
    return (long)got;
}

/*
 * The fenced finish: only the attempt that holds the claim may record its
 * outcome.  One that lost it (its lease lapsed while it was cut off, and
 * another server ran the task) is refused, and *why says so.
 */
static int
pg_finish(store *st, uint64_t id, const store_task *t, const char *temp, double now,
          double expires, char **why)
{
    pg_store *p = PG(st);
    pq_args a = { 0 };
    PGresult *r;
    int rc;

    (void)temp;
    arg_i64(&a, (long long)id);
    arg_i64(&a, t->attempts);
    arg_text(&a, proto_task_state_name(t->state));
    arg_time(&a, now);
    arg_time(&a, expires);
    arg_i64(&a, (long long)t->result_size);
    arg_text(&a, t->state == IP_TASK_DONE ? proto_format_name(t->result_format) : "");
    arg_i64(&a, t->width);
    arg_i64(&a, t->height);
    arg_i64(&a, t->bands);
    arg_text(&a, t->state == IP_TASK_DONE ? "" : proto_status_name(t->error_status));
    arg_text(&a, t->error);
    if (exec_main(p, "BEGIN", NULL, "begin", why))
        return -1;
    p->in_tx = 1;
    if (!(r = run(p, p->main, 1, "UPDATE tasks SET state = $3, finished_at = $4, expires_at = $5, "
                              "result_size = $6, result_format = $7, width = $8, height = $9, "
                              "bands = $10, error_status = $11, error = $12, "
                              "leased_until = NULL "
                              "WHERE id = $1 AND attempts = $2 AND state = 'running'",
                  &a, 0, "finish", why)))
        goto fail;
    rc = changed_rows(r) > 0;
    PQclear(r);
    if (!rc) {
        /* Not running in this attempt: which is it?  A retry of a finish whose
         * COMMIT went through but whose answer was lost finds the task final
         * in this very attempt: that is success, and its rows must stay. */
        store_task *cur = malloc(sizeof(*cur));
        int found;
        a.n = 1;
        if (!cur || (found = get_one(p, "SELECT " COLUMNS " FROM tasks WHERE id = $1", &a, cur,
                                     why)) < 0) {
            free(cur);
            goto fail;
        }
        if (found && cur->attempts == t->attempts && cur->state == t->state &&
            cur->finished == now)
            rc = 1;             /* our own finish, down to its time */
        else if (found && cur->attempts != t->attempts)
            store_fail(why, "attempt %d's claim lapsed and attempt %d took the task (%s); "
                       "this result is refused", t->attempts, cur->attempts,
                       proto_task_state_name(cur->state));
        free(cur);
    }
    a.n = 2;
    /* Results of other attempts (done) or of this one (refused) are garbage. */
    if (exec_main(p, rc ? "DELETE FROM chunks WHERE task = $1 AND kind = 1 AND attempt <> $2"
                        : "DELETE FROM chunks WHERE task = $1 AND kind = 1 AND attempt = $2",
                  &a, "finish", why))
        goto fail;
    p->in_tx = 0;
    if (commit(p->main, why))
        return -1;
    return rc;

fail:
    exec_main(p, "ROLLBACK", NULL, "rollback", NULL);
    p->in_tx = 0;
    return -1;
}

static int
pg_requeue(store *st, const store_task *t, char **why)
{
    pq_args a = { 0 };

    arg_i64(&a, (long long)t->id);
    arg_i64(&a, t->attempts);
    return exec_main(PG(st), "UPDATE tasks SET state = 'queued', attempts = attempts - 1, "
                             "worker = NULL, leased_until = NULL "
                             "WHERE id = $1 AND attempts = $2 AND state = 'running'",
                     &a, "requeue", why);
}

/*
 * On its own connection, without the caller's lock: a slow statement on
 * the main one (an image going in) never delays a renewal past a lease.
 */
static int
pg_renew(store *st, const uint64_t *ids, const int *attempts, size_t n, double snapshot,
         size_t *lost, int *requeued, char **why)
{
    pg_store *p = PG(st);
    char *idv = malloc(n * 24 + 3), *atv = malloc(n * 12 + 3);
    size_t ui = 0, ua = 0;
    pq_args a = { 0 };
    PGresult *r = NULL;
    int nlost = 0, failed, orphans = 0;

    if (!idv || !atv) {
        nlost = store_fail(why, "out of memory");
        goto cleanup;
    }
    if (!p->beat && !(p->beat = connect_db(p, why))) {
        nlost = -1;
        goto cleanup;
    }
    ui += (size_t)sprintf(idv, "{");
    ua += (size_t)sprintf(atv, "{");
    for (size_t i = 0; i < n; i++) {
        ui += (size_t)sprintf(idv + ui, "%s%llu", i ? "," : "", (unsigned long long)ids[i]);
        ua += (size_t)sprintf(atv + ua, "%s%d", i ? "," : "", attempts[i]);
    }
    sprintf(idv + ui, "}");
    sprintf(atv + ua, "}");
    if (n > 0) {
        arg_text(&a, idv);
        arg_text(&a, atv);
        arg_i64(&a, (long long)(p->lease * 1000));
        r = run(p, p->beat, 0,
                "UPDATE tasks t SET leased_until = now() + make_interval(secs => $3::float8 / 1000) "
                "FROM unnest($1::bigint[], $2::int[]) AS h(id, attempt) "
                "WHERE t.id = h.id AND t.attempts = h.attempt AND t.state = 'running' "
                "RETURNING t.id, t.attempts", &a, 0, "renew", why);
        if (!r) {
            nlost = -1;
            goto cleanup;
        }
        for (size_t i = 0; i < n; i++) {
            int kept = 0;
            for (int j = 0; j < PQntuples(r) && !kept; j++)
                kept = (uint64_t)col_int(r, j, 0) == ids[i] && col_int(r, j, 1) == attempts[i];
            if (!kept)
                lost[nlost++] = i;
        }
        PQclear(r);
    }
    /*
     * A claim of ours that no worker holds: its answer was lost (the
     * connection broke after the UPDATE), so nobody runs it.  Claims are
     * made under the caller's lock, as snapshot was taken: one made after
     * it started after it.  Back to the queue, the attempt uncounted.
     */
    a.n = 0;
    arg_text(&a, p->worker);
    arg_time(&a, snapshot);
    arg_text(&a, idv);
    r = run(p, p->beat, 0, "UPDATE tasks SET state = 'queued', attempts = attempts - 1, "
                           "worker = NULL, leased_until = NULL WHERE worker = $1 "
                           "AND state = 'running' AND started_at < $2 "
                           "AND NOT (id = ANY ($3::bigint[]))", &a, 0, "renew", why);
    if (!r) {
        nlost = -1;
        goto cleanup;
    }
    orphans = changed_rows(r);
    if ((*requeued = requeue_lapsed(p, p->beat, 0, wall_now(), &failed, why)) < 0) {
        *requeued = 0;
        nlost = -1;
    }
    *requeued += orphans;

cleanup:
    PQclear(r);
    free(idv);
    free(atv);
    return nlost;
}

static int
pg_delete(store *st, uint64_t id, char **why)
{
    pg_store *p = PG(st);
    pq_args a = { 0 };
    PGresult *r;
    int n;

    arg_i64(&a, (long long)id);
    if (!(r = run(p, p->main, p->in_tx, "DELETE FROM tasks WHERE id = $1", &a, 0,
                  "delete", why)))
        return -1;
    n = changed_rows(r) > 0;
    PQclear(r);
    return n;
}

static int
pg_list(store *st, const char *owner, unsigned mask, uint64_t after, store_task *out, int max,
        int *more, char **why)
{
    pg_store *p = PG(st);
    char states[128], sql[512];
    pq_args a = { 0 };
    PGresult *r;
    int n;

    store_state_list(mask ? mask : (1u << PROTO_NSTATES) - 1, states, sizeof(states));
    /* A NULL owner (an admin's list) is every owner's. */
    snprintf(sql, sizeof(sql), "SELECT " COLUMNS " FROM tasks WHERE id > $1 "
             "AND state IN (%s) %s ORDER BY id LIMIT $2", states,
             owner ? "AND owner = $3" : "");
    arg_i64(&a, (long long)after);
    arg_i64(&a, max + 1);
    if (owner)
        arg_text(&a, owner);
    if (!(r = run(p, p->main, p->in_tx, sql, &a, 0, "list", why)))
        return -1;
    n = PQntuples(r);
    *more = n > max;
    if (n > max)
        n = max;
    for (int i = 0; i < n; i++)
        read_row(r, i, &out[i]);
    PQclear(r);
    return n;
}

/* Expiry by one server at a time (the others skip it), 1000 tasks a round. */
static int
pg_sweep(store *st, double now, char **why)
{
    pg_store *p = PG(st);
    pq_args a = { 0 };
    PGresult *r;
    int n = 0;

    if (exec_main(p, "BEGIN", NULL, "begin", why))
        return -1;
    p->in_tx = 1;
    if (!(r = run(p, p->main, 1, "SELECT pg_try_advisory_xact_lock(" SWEEP_LOCK ")",
                  NULL, 0, "sweep", why)))
        goto fail;
    if (PQgetvalue(r, 0, 0)[0] == 't') {
        PQclear(r);
        arg_time(&a, now);
        if (!(r = run(p, p->main, 1, "DELETE FROM tasks WHERE id IN (SELECT id FROM tasks "
                                  "WHERE expires_at <= $1 AND state <> 'running' "
                                  "LIMIT 1000 FOR UPDATE SKIP LOCKED)", &a, 0, "sweep", why)))
            goto fail;
        n = changed_rows(r);
    }
    PQclear(r);
    p->in_tx = 0;
    if (commit(p->main, why))
        return -1;
    return n;

fail:
    exec_main(p, "ROLLBACK", NULL, "rollback", NULL);
    p->in_tx = 0;
    return -1;
}

static int
pg_next_expiry(store *st, double *when)
{
    pg_store *p = PG(st);
    PGresult *r = run(p, p->main, p->in_tx, "SELECT min(expires_at) FROM tasks "
                                         "WHERE state <> 'running'", NULL, 0, "expiry", NULL);
    int rc = 0;

    if (r && !PQgetisnull(r, 0, 0)) {
        *when = strtod(PQgetvalue(r, 0, 0), NULL);
        rc = 1;
    }
    PQclear(r);
    return rc;
}

/* The database's name and address as the main connection has them (never the password). */
static char *
pg_describe(store *st, int detail)
{
    pg_store *p = PG(st);

    if (!detail)
        return strdup("PostgreSQL: a queue shared by several servers");
    return proto_strdupf("PostgreSQL: a queue shared by several servers (database %s on %s "
                         "port %s; this server is %s there, its claims last %g s)",
                         PQdb(p->main), *PQhost(p->main) ? PQhost(p->main) : "a socket",
                         PQport(p->main), p->worker, p->lease);
}

static const store_ops pg_ops = {
    .name = "PostgreSQL",
    .shared = 1,
    .close = pg_close,
    .describe = pg_describe,
    .recover = pg_recover,
    .begin = pg_begin,
    .add = pg_add,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .get = pg_get,
    .by_token = pg_by_token,
    .count = pg_count,
    .move = pg_move,
    .append = pg_append,
    .upload_done = pg_upload_done,
    .claim = pg_claim,
    .input = pg_input,
    .put_result = pg_put_result,
    .read_result = pg_read_result,
    .finish = pg_finish,
    .requeue = pg_requeue,
    .renew = pg_renew,
    .delete = pg_delete,
    .list = pg_list,
    .sweep = pg_sweep,
    .next_expiry = pg_next_expiry,
};

/*
 * queue.c - the task queue alone, no image work: how many claims per second a
 * store gives its workers.  TASKS tasks are added (one transaction), then K
 * threads, each with a store of its own (store_connect(), as K servers would
 * have: one database connection each, its own state folder, its own
 * LISTENer on PostgreSQL), take them as fast as they can until the queue is
 * empty: store_claim() alone, or store_claim() then store_finish() (a task's
 * whole life in the queue).  bench/cluster.sh runs it and prints the table.
 *
 *   queue sqlite DIR TASKS MODE        one store, one thread (the reference)
 *   queue pg URL DIR K TASKS MODE      K stores (DIR/1 .. DIR/K), K threads
 *
 * MODE is claim or finish.  Prints one line: claims (or claim+finish) per
 * second over the whole drain; tasks added per second in the one
 * transaction; CPU microseconds per task during the drain, of this process
 * (every thread: the claimers, and the stores' LISTENers); and of the
 * PostgreSQL cluster whose postmaster is $QUEUE_PG_PID (its own, its reaped
 * children's, its live children's), 0 without it.  Every task must be taken
 * exactly once, or it exits 1 and says which.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "proto.h"
#include "store.h"

#define MAX_STORES 16

typedef struct claimer {
    store *st;                  /* its own store: calls on it need no lock */
    int finish;                 /* claim then finish */
    long claims;                /* tasks it took */
    double ended;               /* proto_seconds() when the queue was empty */
    char *why;                  /* what failed, or NULL */
    pthread_t thread;
} claimer;

static pthread_barrier_t start_line;
static double started;
static unsigned char *seen;     /* per task: times it was claimed */
static uint64_t first_id;       /* of the tasks added */
static long ntasks;

static void
die(const char *what, const char *why)
{
    fprintf(stderr, "queue: %s%s%s\n", what, why ? ": " : "", why ? why : "");
    exit(1);
}

/* CPU seconds of this process, every thread. */
static double
self_cpu(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/*
 * CPU seconds of the PostgreSQL cluster of postmaster pm: its utime, stime,
 * cutime and cstime (the backends it reaped), and each live child's utime
 * and stime.  0 when pm is 0.
 */
static double
pg_cpu(long pm)
{
    static long tick;
    DIR *d;
    struct dirent *de;
    double ticks = 0;

    if (!pm || !(d = opendir("/proc")))
        return 0;
    if (!tick)
        tick = sysconf(_SC_CLK_TCK);
    while ((de = readdir(d)) != NULL) {
        char path[300], buf[1024], *p;
        unsigned long long ut, st;
        long long cut, cst;
        long pid = atol(de->d_name), ppid;
        FILE *f;
        size_t n;
        if (pid <= 0)
            continue;
        snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
        if (!(f = fopen(path, "r")))
            continue;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        /* After "pid (comm) ": state, ppid, then fields 5..13, utime (14)... */
        if (!(p = strrchr(buf, ')')) ||
            sscanf(p + 2, "%*c %ld %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %lld %lld",
                   &ppid, &ut, &st, &cut, &cst) != 5)
            continue;
        if (pid == pm)
            ticks += (double)ut + (double)st + (double)cut + (double)cst;
        else if (ppid == pm)
            ticks += (double)ut + (double)st;
    }
    closedir(d);
    return ticks / (double)tick;
}

/* A store's LISTENer calls this for every change; a server would wake its workers. */
static void
changed(void *arg, int queued)
{
    (void)arg, (void)queued;
}

static void *
claim_main(void *p)
{
    claimer *c = p;
    store_task t;

    pthread_barrier_wait(&start_line);
    for (;;) {
        double now = proto_seconds();
        int rc = store_claim(c->st, now, &t, &c->why);
        if (rc < 0)
            break;
        if (rc == 0) {
            c->ended = proto_seconds();
            break;
        }
        c->claims++;
        if (t.id >= first_id && t.id < first_id + (uint64_t)ntasks)
            __atomic_add_fetch(&seen[t.id - first_id], 1, __ATOMIC_RELAXED);
        if (!c->finish)
            continue;
        t.state = IP_TASK_DONE;
        t.result_size = 1;
        t.result_format = IP_FMT_JPEG;
        t.width = t.height = t.bands = 1;
        if (store_finish(c->st, t.id, &t, NULL, now, now + 3600, &c->why) != 1) {
            if (!c->why)
                c->why = strdup("store_finish: the task was no longer this claim's");
            break;
        }
    }
    return NULL;
}

int
main(int argc, char **argv)
{
    claimer cl[MAX_STORES];
    const char *url = NULL, *dir, *mode;
    int k = 1, finish;
    double t0, added, ended = 0, cpu0, db0;
    long pm = getenv("QUEUE_PG_PID") ? atol(getenv("QUEUE_PG_PID")) : 0;
    char path[4096], worker[64], *why = NULL;
    long total = 0, twice = 0, never = 0;

    if (argc == 5 && strcmp(argv[1], "sqlite") == 0) {
        dir = argv[2];
        ntasks = atol(argv[3]);
        mode = argv[4];
    } else if (argc == 7 && strcmp(argv[1], "pg") == 0) {
        url = argv[2];
        dir = argv[3];
        k = atoi(argv[4]);
        ntasks = atol(argv[5]);
        mode = argv[6];
    } else {
        fprintf(stderr, "usage: queue sqlite DIR TASKS claim|finish\n"
                        "       queue pg URL DIR K TASKS claim|finish\n");
        return 2;
    }
    finish = strcmp(mode, "finish") == 0;
    if ((!finish && strcmp(mode, "claim") != 0) || k < 1 || k > MAX_STORES || ntasks < 1)
        die("bad arguments", NULL);

    memset(cl, 0, sizeof(cl));
    for (int i = 0; i < k; i++) {
        store_config sc = { url, path, 30, worker, url ? changed : NULL, NULL };
        snprintf(path, sizeof(path), "%s/%d", dir, i + 1);
        snprintf(worker, sizeof(worker), "queue-bench/%d", i + 1);
        if (!(cl[i].st = store_connect(&sc, &why)))
            die("store_connect", why);
        cl[i].finish = finish;
    }

    /* The tasks, as TASK_CREATE makes them, in one transaction. */
    t0 = proto_seconds();
    if (store_begin(cl[0].st, &why))
        die("store_begin", why);
    for (long i = 0; i < ntasks; i++) {
        store_task t;
        memset(&t, 0, sizeof(t));
        snprintf(t.owner, sizeof(t.owner), "0@queue-bench");
        snprintf(t.steps, sizeof(t.steps), "grayscale");
        t.state = IP_TASK_QUEUED;
        t.created = t.queued = proto_seconds();
        if (store_add(cl[0].st, &t, NULL, &why))
            die("store_add", why);
        if (i == 0)
            first_id = t.id;
        else if (t.id != first_id + (uint64_t)i)
            die("store_add: the ids are not consecutive (another run shares the database?)", NULL);
    }
    if (store_commit(cl[0].st, 0, &why))
        die("store_commit", why);
    added = proto_seconds() - t0;
    if (!(seen = calloc((size_t)ntasks, 1)))
        die("out of memory", NULL);

    pthread_barrier_init(&start_line, NULL, (unsigned)k + 1);
    for (int i = 0; i < k; i++)
        if (pthread_create(&cl[i].thread, NULL, claim_main, &cl[i]) != 0)
            die("pthread_create", NULL);
    cpu0 = self_cpu();
    db0 = pg_cpu(pm);
    pthread_barrier_wait(&start_line);
    started = proto_seconds();
    for (int i = 0; i < k; i++) {
        pthread_join(cl[i].thread, NULL);
        if (cl[i].why)
            die("claiming", cl[i].why);
        total += cl[i].claims;
        if (cl[i].ended > ended)
            ended = cl[i].ended;
    }
    cpu0 = self_cpu() - cpu0;
    db0 = pg_cpu(pm) - db0;
    for (long i = 0; i < ntasks; i++) {
        twice += seen[i] > 1;
        never += seen[i] == 0;
    }
    if (total != ntasks || twice || never) {
        fprintf(stderr, "queue: %ld claims of %ld tasks: %ld claimed more than once, "
                "%ld never\n", total, ntasks, twice, never);
        return 1;
    }
    for (int i = 0; i < k; i++)
        store_close(cl[i].st);
    printf("%.0f %.0f %.0f %.0f\n", (double)total / (ended - started), (double)ntasks / added,
           cpu0 * 1e6 / (double)ntasks, db0 * 1e6 / (double)ntasks);
    return 0;
}

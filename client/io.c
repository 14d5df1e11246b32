/* io.c - reading inputs and writing outputs safely. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client.h"
#include "proto.h"

int
cli_is_dir(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

char *
cli_path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir);
    char *path = NULL;

    if (asprintf(&path, "%s%s%s", dir, n && dir[n - 1] == '/' ? "" : "/", name) < 0)
        return NULL;
    return path;
}

char *
cli_output_path(const char *dir, const char *input, const char *ext)
{
    /* An image from standard input is named stdin.png (say) in a folder. */
    const char *in = strcmp(input, "-") == 0 ? "stdin" : input;
    const char *slash = strrchr(in, '/');
    const char *base = slash ? slash + 1 : in;
    const char *dot = strrchr(base, '.');
    size_t stem = ext && dot && dot != base ? (size_t)(dot - base) : strlen(base);
    char *name = NULL, *path;

    if (strcmp(dir, "-") == 0)
        return strdup("-");     /* standard output */
    if (asprintf(&name, "%.*s.%s", (int)stem, base, ext ? ext : "out") < 0)
        return NULL;
    path = cli_path_join(dir, name);
    free(name);
    return path;
}

/* Standard input to its end, at most max bytes: as cli_read_file. */
static int
read_stdin(size_t max, char **data, size_t *len, char *why, size_t whylen)
{
    size_t cap = 1 << 16, got = 0;
    char *buf = malloc(cap);

    for (;;) {
        ssize_t n;
        if (!buf) {
            snprintf(why, whylen, "out of memory");
            return -1;
        }
        if (got == cap) {
            char *bigger = cap > max ? NULL : realloc(buf, cap * 2);
            if (!bigger) {
                snprintf(why, whylen, cap > max ? "more than one call carries (%zu bytes)"
                                                : "out of memory", max);
                free(buf);
                return -1;
            }
            buf = bigger;
            cap *= 2;
        }
        n = read(STDIN_FILENO, buf + got, cap - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(why, whylen, "%s", strerror(errno));
            free(buf);
            return -1;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    if (got > max) {
        snprintf(why, whylen, "%zu bytes is more than one call carries (%zu)", got, max);
        free(buf);
        return -1;
    }
    if (got == 0) {
        snprintf(why, whylen, "standard input is empty");
        free(buf);
        return -1;
    }
    *data = buf;
    *len = got;
    return 0;
}

int
cli_read_file(const char *path, size_t max, char **data, size_t *len,
              char *why, size_t whylen)
{
    int fd;
    struct stat st;
    char *buf = NULL;
    size_t got = 0;

    if (strcmp(path, "-") == 0)
        return read_stdin(max, data, len, why, whylen);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, whylen, "%s", strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(why, whylen, "%s", S_ISDIR(st.st_mode) ? "Is a directory" : "not a regular file");
        goto fail;
    }
    if ((uint64_t)st.st_size > max) {
        snprintf(why, whylen, "%lld bytes is more than one call carries (%zu)",
                 (long long)st.st_size, max);
        goto fail;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        snprintf(why, whylen, "out of memory");
        goto fail;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(why, whylen, "%s", n < 0 ? strerror(errno) : "file shrank while reading");
            goto fail;
        }
        got += (size_t)n;
    }
    close(fd);
    *data = buf;
    *len = got;
    return 0;
fail:
    free(buf);
    close(fd);
    return -1;
}

/* ---------------------------------------------------------------- inputs in pieces */

#define PIECE ((size_t)1 << 20)     /* what one read or write moves: 1 MiB */

/* Standard input (a pipe, a terminal) copied into an unlinked temporary file, a piece at a time. */
static int
spool_stdin(cli_input *in, char *why, size_t whylen)
{
    const char *dir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char *buf = malloc(PIECE), *name = NULL;
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

    if (fd < 0 && asprintf(&name, "%s/imgproc-stdin.XXXXXX", dir) >= 0 &&
        (fd = mkostemp(name, O_CLOEXEC)) >= 0)
        unlink(name);           /* no O_TMPFILE there: a name, gone at once */
    free(name);
    in->fd = fd;
    if (fd < 0 || !buf) {
        snprintf(why, whylen, "cannot keep standard input in a temporary file in %s: %s", dir,
                 fd < 0 ? strerror(errno) : "out of memory");
        goto fail;
    }
    for (;;) {
        ssize_t n = read(STDIN_FILENO, buf, PIECE);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(why, whylen, "%s", strerror(errno));
            goto fail;
        }
        if (n == 0)
            break;
        if (proto_write_all(fd, buf, (size_t)n) < 0) {
            snprintf(why, whylen, "cannot keep standard input in a temporary file in %s: %s",
                     dir, strerror(errno));
            goto fail;
        }
        in->size += (uint64_t)n;
    }
    free(buf);
    return 0;
fail:
    free(buf);
    cli_input_close(in);
    return -1;
}

int
cli_input_open(const char *path, cli_input *in, char *why, size_t whylen)
{
    struct stat st;

    memset(in, 0, sizeof(*in));
    in->fd = -1;
    if (strcmp(path, "-") == 0) {
        if (fstat(STDIN_FILENO, &st) == 0 && S_ISREG(st.st_mode)) {
            /* A file on standard input is read where it stands, as read(2) would. */
            off_t pos = lseek(STDIN_FILENO, 0, SEEK_CUR);
            in->base = pos > 0 ? (uint64_t)pos : 0;
            in->size = (uint64_t)st.st_size > in->base ? (uint64_t)st.st_size - in->base : 0;
            if ((in->fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 0)) < 0) {
                snprintf(why, whylen, "%s", strerror(errno));
                return -1;
            }
        } else if (spool_stdin(in, why, whylen) < 0)
            return -1;
        if (in->size == 0) {
            snprintf(why, whylen, "standard input is empty");
            cli_input_close(in);
            return -1;
        }
        return 0;
    }
    in->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (in->fd < 0) {
        snprintf(why, whylen, "%s", strerror(errno));
        return -1;
    }
    if (fstat(in->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(why, whylen, "%s", S_ISDIR(st.st_mode) ? "Is a directory" : "not a regular file");
        cli_input_close(in);
        return -1;
    }
    in->size = (uint64_t)st.st_size;
    return 0;
}

int
cli_input_pread(const cli_input *in, uint64_t off, void *buf, size_t n, char *why,
                size_t whylen)
{
    size_t got = 0;

    while (got < n) {
        ssize_t r = pread(in->fd, (char *)buf + got, n - got, (off_t)(in->base + off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            snprintf(why, whylen, "%s", r < 0 ? strerror(errno) : "file shrank while reading");
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

int
cli_input_slurp(const cli_input *in, size_t max, char **data, char *why, size_t whylen)
{
    char *buf;

    if (in->size > max) {
        snprintf(why, whylen, "%llu bytes is more than one call carries (%zu)",
                 (unsigned long long)in->size, max);
        return -1;
    }
    if (!(buf = malloc((size_t)in->size + 1))) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    if (cli_input_pread(in, 0, buf, (size_t)in->size, why, whylen) < 0) {
        free(buf);
        return -1;
    }
    *data = buf;
    return 0;
}

void
cli_input_close(cli_input *in)
{
    if (in->fd >= 0)
        close(in->fd);
    in->fd = -1;
}

/* ---------------------------------------------------------------- outputs in pieces */

/*
 * The temporary files being written, so that Ctrl-C (or SIGTERM, SIGHUP)
 * removes them: a signal handler may only read memory that is never freed
 * or changed under it, so each name is copied into a fixed slot, and the
 * slot marked used once it is complete.  One slot per file written at once
 * (batch writes one per connection); beyond them a file is not removed on
 * a signal, as before this list existed.
 */
#define OUT_SLOTS (BATCH_MAX_JOBS + 8)
static struct {
    volatile sig_atomic_t used;
    char path[PATH_MAX];
} out_slots[OUT_SLOTS];
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t out_once = PTHREAD_ONCE_INIT;

void
cli_output_unlink_all(void)
{
    for (size_t i = 0; i < OUT_SLOTS; i++)
        if (out_slots[i].used)
            unlink(out_slots[i].path);
}

/* The default action, after the temporary files are gone. */
static void
on_signal(int sig)
{
    struct sigaction dfl;

    cli_output_unlink_all();
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    sigaction(sig, &dfl, NULL);
    raise(sig);                 /* delivered when this handler returns */
}

/* Installed where a signal would kill the process (not where --json or the shell took it). */
static void
install_handlers(void)
{
    static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        struct sigaction was;
        if (sigaction(sigs[i], NULL, &was) == 0 && !(was.sa_flags & SA_SIGINFO) &&
            was.sa_handler == SIG_DFL)
            sigaction(sigs[i], &sa, NULL);
    }
}

static int
slot_take(const char *path)
{
    int slot = -1;

    if (strlen(path) >= PATH_MAX)
        return -1;
    pthread_once(&out_once, install_handlers);
    pthread_mutex_lock(&out_lock);
    for (int i = 0; i < OUT_SLOTS && slot < 0; i++)
        if (!out_slots[i].used) {
            strcpy(out_slots[i].path, path);
            __atomic_store_n(&out_slots[i].used, 1, __ATOMIC_RELEASE);
            slot = i;
        }
    pthread_mutex_unlock(&out_lock);
    return slot;
}

static void
slot_give_back(int slot)
{
    if (slot < 0)
        return;
    pthread_mutex_lock(&out_lock);
    __atomic_store_n(&out_slots[slot].used, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&out_lock);
}

void
cli_output_init(cli_output *w, const char *path)
{
    memset(w, 0, sizeof(*w));
    w->path = path;
    w->fd = -1;
    w->slot = -1;
}

/* Never a half-written image under the real name: PATH.tmp.PID.N, renamed at the end. */
static int
output_open(cli_output *w)
{
    static unsigned counter;

    for (int tries = 0; tries < 100; tries++) {
        unsigned n = __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
        free(w->tmp);
        if (asprintf(&w->tmp, "%s.tmp.%ld.%u", w->path, (long)getpid(), n) < 0) {
            w->tmp = NULL;
            errno = ENOMEM;
            return -1;
        }
        /* O_EXCL: a name nobody else made, and no symbolic link followed. */
        w->slot = slot_take(w->tmp);
        w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (w->fd >= 0)
            return 0;
        slot_give_back(w->slot);
        w->slot = -1;
        if (errno != EEXIST)
            break;
    }
    free(w->tmp);
    w->tmp = NULL;
    return -1;
}

static void
write_failed(const cli_output *w, char *why, size_t whylen)
{
    if (w->to_stdout && errno == EPIPE)
        snprintf(why, whylen, "standard output was closed by its reader before the image "
                 "was all written");
    else
        snprintf(why, whylen, "%s", strerror(errno));
}

int
cli_output_write(cli_output *w, const void *data, size_t len, char *why, size_t whylen)
{
    if (w->fd < 0) {
        if (strcmp(w->path, "-") == 0) {
            fflush(stdout);     /* what was printed goes first */
            w->fd = STDOUT_FILENO;
            w->to_stdout = 1;
        } else if (output_open(w) < 0) {
            snprintf(why, whylen, "%s", strerror(errno));
            return -1;
        }
    }
    if (proto_write_all(w->fd, data, len) < 0) {
        write_failed(w, why, whylen);
        return -1;
    }
    w->written += len;
    return 0;
}

int
cli_output_commit(cli_output *w, char *why, size_t whylen)
{
    int rc = 0;

    if (w->fd < 0 && cli_output_write(w, "", 0, why, whylen) < 0)
        return -1;              /* an empty result is still a file */
    if (w->to_stdout) {
        w->fd = -1;
        return 0;
    }
    if (close(w->fd) < 0 || rename(w->tmp, w->path) < 0) {
        snprintf(why, whylen, "%s", strerror(errno));
        unlink(w->tmp);
        rc = -1;
    }
    w->fd = -1;
    slot_give_back(w->slot);
    w->slot = -1;
    free(w->tmp);
    w->tmp = NULL;
    return rc;
}

void
cli_output_abort(cli_output *w)
{
    if (w->fd >= 0 && !w->to_stdout) {
        close(w->fd);
        unlink(w->tmp);
    }
    w->fd = -1;
    slot_give_back(w->slot);
    w->slot = -1;
    free(w->tmp);
    w->tmp = NULL;
}

int
cli_output_sink(void *ctx, const void *data, size_t len, uint64_t offset, uint64_t total,
                char *why, size_t whylen)
{
    (void)offset;
    (void)total;
    return cli_output_write(ctx, data, len, why, whylen);
}

int
cli_write_file(const char *path, const void *data, size_t len, char *why, size_t whylen)
{
    cli_output w;

    cli_output_init(&w, path);
    if (cli_output_write(&w, data, len, why, whylen) < 0 ||
        cli_output_commit(&w, why, whylen) < 0) {
        cli_output_abort(&w);
        return -1;
    }
    return 0;
}

int
cli_read_image(const char *path, ip_image *im)
{
    char why[256], *data;
    size_t len;

    if (cli_read_file(path, IP_MAX_IMAGE, &data, &len, why, sizeof(why))) {
        cli_error("cannot read '%s': %s\n", path, why);
        return -1;
    }
    im->ip_image_val = data;
    im->ip_image_len = (u_int)len;
    return 0;
}

/* An input's output name, and where the input is in the list. */
typedef struct out_name {
    char *name;                 /* DIR/STEM.EXT (malloc'ed) */
    size_t index;               /* the input */
} out_name;

static int
by_out_name(const void *a, const void *b)
{
    const out_name *x = a, *y = b;
    int c = strcmp(x->name, y->name);

    return c ? c : (x->index > y->index) - (x->index < y->index);
}

int
cli_same_file(const char *a, const char *b)
{
    struct stat x, y;

    return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

/*
 * Sorted, so equal names are neighbours: n log n, not n squared, for a
 * folder of many thousand files.
 */
int
cli_check_outputs(const char *dir, char *const *inputs, size_t n, ip_format format)
{
    out_name *names;
    int rc = 0;

    if (strcmp(dir, "-") == 0)
        return 0;
    if (!(names = calloc(n, sizeof(*names)))) {
        cli_error("out of memory\n");
        return -1;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        ip_format f = format != IP_FMT_AUTO ? format : proto_format_from_path(inputs[i]);
        names[i].name = cli_output_path(dir, inputs[i], proto_format_ext(f));
        names[i].index = i;
        if (!names[i].name) {
            cli_error("out of memory\n");
            rc = -1;
        } else if (cli_same_file(inputs[i], names[i].name)) {
            cli_error("'%s' would be overwritten by its own result: give -o another "
                      "folder, or -f another format\n", inputs[i]);
            rc = -1;
        }
    }
    if (rc == 0)
        qsort(names, n, sizeof(*names), by_out_name);
    for (size_t i = 1; i < n && rc == 0; i++)
        if (strcmp(names[i - 1].name, names[i].name) == 0) {
            cli_error("'%s' and '%s' would both be written to '%s': nothing was sent\n",
                      inputs[names[i - 1].index], inputs[names[i].index], names[i].name);
            rc = -1;
        }
    for (size_t i = 0; i < n; i++)
        free(names[i].name);
    free(names);
    return rc;
}

int
cli_written_claim(cli_written *w, const char *dest, const char *input, const char **earlier)
{
    *earlier = NULL;
    if (strcmp(dest, "-") == 0)
        return 0;
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->items[i].dest, dest) == 0) {
            *earlier = w->items[i].input;
            return -1;
        }
    if (w->n == w->cap) {
        size_t cap = w->cap * 2 + 16;
        void *more = realloc(w->items, cap * sizeof(*w->items));
        if (!more)
            return -1;
        w->items = more;
        w->cap = cap;
    }
    w->items[w->n].dest = strdup(dest);
    w->items[w->n].input = strdup(input);
    if (!w->items[w->n].dest || !w->items[w->n].input) {
        free(w->items[w->n].dest);
        free(w->items[w->n].input);
        return -1;
    }
    w->n++;
    return 0;
}

void
cli_written_free(cli_written *w)
{
    for (size_t i = 0; i < w->n; i++) {
        free(w->items[i].dest);
        free(w->items[i].input);
    }
    free(w->items);
    memset(w, 0, sizeof(*w));
}

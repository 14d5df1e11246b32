/* io.c - reading inputs and writing outputs safely. */
#include <errno.h>
#include <fcntl.h>
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

int
cli_write_file(const char *path, const void *data, size_t len, char *why, size_t whylen)
{
    char *tmp = NULL;
    int fd;

    if (strcmp(path, "-") == 0) {
        if (proto_write_all(STDOUT_FILENO, data, len) < 0) {
            snprintf(why, whylen, errno == EPIPE ? "standard output was closed by its reader "
                     "before the image was all written" : "%s", strerror(errno));
            return -1;
        }
        return 0;
    }
    /* Never leave a half-written image under the real name. */
    if (asprintf(&tmp, "%s.tmp.%ld", path, (long)getpid()) < 0) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        goto fail;
    if (proto_write_all(fd, data, len) < 0) {
        int err = errno;
        close(fd);
        unlink(tmp);
        errno = err;
        goto fail;
    }
    if (close(fd) < 0 || rename(tmp, path) < 0) {
        int err = errno;
        unlink(tmp);
        errno = err;
        goto fail;
    }
    free(tmp);
    return 0;
fail:
    snprintf(why, whylen, "%s", strerror(errno));
    free(tmp);
    return -1;
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

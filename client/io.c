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
            snprintf(why, whylen, "%s", strerror(errno));
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

/* util.c - small helpers both programs use: formatted strings, whole writes. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"

char *
proto_strdupf(const char *fmt, ...)
{
    va_list ap;
    char *out = NULL;

    va_start(ap, fmt);
    if (vasprintf(&out, fmt, ap) < 0)
        out = NULL;
    va_end(ap);
    return out;
}

int
proto_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

double
proto_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void
proto_help_line(FILE *f, const char *head, const char *text)
{
    int col = fprintf(f, "%s", head);

    for (const char *p = text; *p;) {
        int w = (int)strcspn(p, " ");
        if (p == text)
            col += fprintf(f, "%*s", col < 23 ? 25 - col : 2, "");
        else if (col + 1 + w > 79) {
            fprintf(f, "\n%25s", "");
            col = 25;
        } else
            col += fprintf(f, " ");
        col += fprintf(f, "%.*s", w, p);
        p += w;
        while (*p == ' ')
            p++;
    }
    fputc('\n', f);
}

/* log.c - imgprocd's one logging function (see log.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* The one process-wide setting: -v, decided before threads start. */
static int verbose;

void
srv_log_verbose(int on)
{
    verbose = on;
}

int
srv_log_is_verbose(void)
{
    return verbose;
}

void
srv_log(srv_log_level level, const char *fmt, ...)
{
    static const char *const label[] = {
        [SRV_LOG_ERROR] = "", [SRV_LOG_WARNING] = "warning: ", [SRV_LOG_NOTICE] = "",
        [SRV_LOG_VERBOSE] = "",
    };
    char line[2048];
    va_list ap;
    size_t n;

    if (level == SRV_LOG_VERBOSE && !verbose)
        return;
    n = (size_t)snprintf(line, sizeof(line), "imgprocd: %s", label[level]);
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    va_end(ap);
    n = strlen(line);
    if (n && line[n - 1] != '\n') {
        if (n == sizeof(line) - 1)
            n--;
        line[n++] = '\n';
    }
    /* One write: a line is never split by another thread's. */
    if (write(STDERR_FILENO, line, n) < 0)
        return;
}

/* log.c - imgprocd's one logging function (see log.h). */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"

/* The process-wide settings: -v and where lines go, decided before threads start. */
static int verbose;
static enum { TO_STDERR, TO_JOURNAL, TO_SYSLOG } sink = TO_STDERR;
static pthread_once_t journal_once = PTHREAD_ONCE_INIT;

/*
 * systemd names the journal's stream in $JOURNAL_STREAM ("DEVICE:INODE");
 * stderr is that stream only when the two match (a child's stderr may have
 * been redirected since).  Then each line starts with its priority, "<3>",
 * which the journal reads and strips, and the unit names the program.
 */
static void
detect_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;

    if (sink == TO_STDERR && js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 &&
        fstat(STDERR_FILENO, &st) == 0 && (unsigned long long)st.st_dev == dev &&
        (unsigned long long)st.st_ino == ino)
        sink = TO_JOURNAL;
}

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
srv_log_syslog(void)
{
    openlog("imgprocd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
    sink = TO_SYSLOG;
}

void
srv_log(srv_log_level level, const char *fmt, ...)
{
    static const char *const label[] = {
        [SRV_LOG_ERROR] = "", [SRV_LOG_WARNING] = "warning: ", [SRV_LOG_NOTICE] = "",
        [SRV_LOG_VERBOSE] = "",
    };
    static const int priority[] = {
        [SRV_LOG_ERROR] = LOG_ERR, [SRV_LOG_WARNING] = LOG_WARNING,
        [SRV_LOG_NOTICE] = LOG_NOTICE, [SRV_LOG_VERBOSE] = LOG_INFO,
    };
    char line[2048];
    va_list ap;
    size_t n;

    if (level == SRV_LOG_VERBOSE && !verbose)
        return;
    pthread_once(&journal_once, detect_journal);
    if (sink == TO_JOURNAL)
        n = (size_t)snprintf(line, sizeof(line), "<%d>%s", priority[level], label[level]);
    else if (sink == TO_SYSLOG)
        n = 0;
    else
        n = (size_t)snprintf(line, sizeof(line), "imgprocd: %s", label[level]);
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    va_end(ap);
    n = strlen(line);
    if (sink == TO_SYSLOG) {
        if (n && line[n - 1] == '\n')
            line[--n] = '\0';
        syslog(priority[level], "%s", line);
        return;
    }
    if (n && line[n - 1] != '\n') {
        if (n == sizeof(line) - 1)
            n--;
        line[n++] = '\n';
    }
    /* One write: a line is never split by another thread's. */
    if (write(STDERR_FILENO, line, n) < 0)
        return;
}

/*
 * log.h - imgprocd's one logging function: levels, one line per message, on
 * stderr (with the journal's priority prefixes when stderr is the journal),
 * or to syslog with --syslog.
 */
#ifndef IMGPROC_LOG_H
#define IMGPROC_LOG_H

typedef enum srv_log_level {
    SRV_LOG_ERROR,              /* something failed: always said */
    SRV_LOG_WARNING,            /* something is odd but works: always said */
    SRV_LOG_NOTICE,             /* what an operator should know (recovery, registration) */
    SRV_LOG_VERBOSE             /* one line per request or task event: with -v only */
} srv_log_level;

/* Says VERBOSE messages too (-v).  Set once, before any thread starts. */
void srv_log_verbose(int on);
int srv_log_is_verbose(void);
/* Lines go to syslog (facility daemon) from now on.  Once, before threads start. */
void srv_log_syslog(void);

/*
 * "imgprocd: MESSAGE" (a trailing newline in fmt is optional), written with
 * one write(2), so lines from many threads never mix; "<3>MESSAGE" into the
 * journal; syslog(3) at the level's priority with --syslog.
 */
void srv_log(srv_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif

/* config.c - imgprocd's settings: the defaults, and what follows from the flags. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "server.h"

/* Every setting at its default, before the command line is read; the locks ready. */
void
srv_defaults(srv *s)
{
    memset(s, 0, sizeof(*s));
    s->cfg.program = IMGPROC;
    s->cfg.use_rpcbind = 1;
    s->cfg.max_request_bytes = IP_MAX_IMAGE;
    s->cfg.max_pixels = 150000000;
    s->cfg.max_steps = IP_MAX_STEPS;
    s->cfg.max_inflight_bytes = 512ULL << 20;
    s->cfg.max_connections = 64;
    s->cfg.max_per_address = 16;
    s->cfg.min_receive_rate = 16384;
    s->cfg.idle_seconds = 300;
    s->cfg.max_request_seconds = 60;
    s->cfg.max_blur_work = OPS_MAX_BLUR_WORK;
    s->tcfg.max_queued = 1000;
    s->tcfg.max_tasks = 100000;
    s->tcfg.result_ttl = 86400;
    s->tcfg.max_task_seconds = 900;
    s->tcfg.max_upload_bytes = 1ULL << 30;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->idle, NULL);
    pthread_cond_init(&s->budget, NULL);
}

/* The settings that follow from others, once the command line is read. */
void
srv_settle(srv *s)
{
    s->limits.max_pixels = s->cfg.max_pixels;
    s->limits.max_result_bytes = IP_MAX_IMAGE;
    s->limits.max_blur_work = s->cfg.max_blur_work;
    if (!s->tcfg.workers) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        s->tcfg.workers = n > 0 ? (unsigned)n : 1;
    }
    s->tcfg.max_inline_bytes = s->cfg.max_request_bytes;
    s->tcfg.max_steps = s->cfg.max_steps;
    srv_log_verbose(s->cfg.verbose);
}

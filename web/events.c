/*
 * events.c - the /v1/events WebSocket.  Two things travel on it:
 *
 *   - the labs' flow: each binary message is an image, processed by the
 *     socket's pipeline (?steps=, default grayscale) with PROCESS; the
 *     answer is a text message {"type": "result", "seq": N, "ok": true,
 *     "format", "width", "height", "bands", "bytes"} and then the image as
 *     a binary message (or "ok": false with "status" and "error", and no
 *     image).  N counts the socket's images from 1.  Up to WEB_WS_INFLIGHT
 *     of a socket's images are worked on at once and their results come
 *     back as they finish, so seq says which is which;
 *   - the session's tasks (session.c): {"type": "task", "task": {...}} when
 *     one of them appears, changes state or progress, or ends.
 *
 * A socket holds one of civetweb's threads while it is open, so their
 * number is capped (--max-websockets).  The images are worked on by a few
 * threads of this file's own, each with its connection to imgprocd; one
 * more watches every socket's tasks, a TASK_LIST of the unfinished ones
 * every WEB_WS_POLL_MS (imgprocd has no call that pushes progress).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <civetweb.h>

#include "proto.h"
#include "web.h"

#define WEB_WS_INFLIGHT 8       /* a socket's images worked on or waiting at once */
#define WEB_WS_WORKERS 4        /* threads working on images, all sockets together */
#define WEB_WS_POLL_MS 250      /* how often the sessions' tasks are looked at */
#define WEB_WS_WATCHED 1000     /* a socket's unfinished tasks followed, at most */

/* What the watcher last told a socket about one unfinished task. */
typedef struct seen_task {
    ip_task_id id;
    ip_task_state state;
    unsigned progress;
} seen_task;

/* One open socket. */
typedef struct ws_socket {
    struct mg_connection *conn;
    struct ws_socket *next;         /* in sockets */
    ip_step steps[IP_MAX_STEPS];    /* its pipeline */
    unsigned nsteps;
    ip_output output;
    web_caller caller;
    int has_session;                /* a session's tasks are watched */
    unsigned refs;                  /* the socket's thread, jobs, the watcher */
    unsigned inflight;              /* its images not yet answered */
    unsigned seq;                   /* images received */
    int closed;                     /* civetweb has closed it: write nothing */
    seen_task *seen;                /* unfinished tasks already told of */
    unsigned nseen;
    int listed;                     /* looked at once (on_ready): the watcher's now */
    ip_task_id high;                /* the newest task it has seen */
} ws_socket;

/* An image to work on. */
typedef struct ws_job {
    ws_socket *s;
    unsigned seq;
    char *data;                     /* the image (malloc'ed) */
    size_t len;
    struct ws_job *next;
} ws_job;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t changed;         /* refs, inflight or the queue changed */
    const web_config *cfg;
    ws_socket *sockets;
    unsigned open;
    ws_job *head, *tail;            /* the queue of images */
    int stopping;
    pthread_t workers[WEB_WS_WORKERS], watcher;
    int started;
} ws = { .lock = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER };

static void
release(ws_socket *s)
{
    pthread_mutex_lock(&ws.lock);
    s->refs--;
    pthread_cond_broadcast(&ws.changed);
    pthread_mutex_unlock(&ws.lock);
}

/* A text message, unless the socket has closed. */
static void
send_text(ws_socket *s, const char *text, size_t len)
{
    if (!s->closed)
        mg_websocket_write(s->conn, MG_WEBSOCKET_OPCODE_TEXT, text, len);
}

/* One image through the socket's pipeline; its answer sent. */
static void
work(ws_job *j)
{
    ws_socket *s = j->s;
    ip_process_args a;
    ip_image_res res;
    char *text = NULL, *why = NULL;
    size_t len = 0;
    FILE *f;

    if (s->closed)
        return;                 /* no one to answer */
    memset(&a, 0, sizeof(a));
    memset(&res, 0, sizeof(res));
    a.image.ip_image_len = (u_int)j->len;
    a.image.ip_image_val = j->data;
    a.steps.steps_len = s->nsteps;
    a.steps.steps_val = s->steps;
    a.output = s->output;
    if (!(f = open_memstream(&text, &len)))
        return;
    fprintf(f, "{\"type\": \"result\", \"seq\": %u, ", j->seq);
    if (web_rpc_call(ws.cfg, NULL, "PROCESS", PROCESS, PROTO_XDR(xdr_ip_process_args), &a,
                     PROTO_XDR(xdr_ip_image_res), &res, 1, &why)) {
        fprintf(f, "\"ok\": false, \"status\": \"gateway\", \"error\": ");
        proto_json_string(f, why ? why : "imgprocd: the call failed");
    } else if (res.status != IP_OK) {
        fprintf(f, "\"ok\": false, \"status\": \"%s\", \"error\": ",
                proto_status_name(res.status));
        proto_json_string(f, res.ip_image_res_u.message);
    } else {
        ip_image_ok *ok = &res.ip_image_res_u.ok;
        fprintf(f, "\"ok\": true, \"format\": \"%s\", \"width\": %u, \"height\": %u, "
                "\"bands\": %u, \"bytes\": %u", proto_format_name(ok->format), ok->width,
                ok->height, ok->bands, ok->image.ip_image_len);
    }
    fprintf(f, "}");
    fclose(f);
    /* The description and its image go out together, whatever else is sent. */
    mg_lock_connection(s->conn);
    send_text(s, text, len);
    if (res.status == IP_OK && !why && !s->closed)
        mg_websocket_write(s->conn, MG_WEBSOCKET_OPCODE_BINARY,
                           res.ip_image_res_u.ok.image.ip_image_val,
                           res.ip_image_res_u.ok.image.ip_image_len);
    mg_unlock_connection(s->conn);
    free(text);
    free(why);
    xdr_free((xdrproc_t)xdr_ip_image_res, (char *)&res);
}

static void *
worker(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&ws.lock);
    for (;;) {
        ws_job *j;
        while (!ws.head && !ws.stopping)
            pthread_cond_wait(&ws.changed, &ws.lock);
        if (!ws.head)
            break;
        j = ws.head;
        if (!(ws.head = j->next))
            ws.tail = NULL;
        pthread_mutex_unlock(&ws.lock);
        work(j);
        pthread_mutex_lock(&ws.lock);
        j->s->inflight--;
        j->s->refs--;
        pthread_cond_broadcast(&ws.changed);
        free(j->data);
        free(j);
    }
    pthread_mutex_unlock(&ws.lock);
    web_rpc_release();
    return NULL;
}

/* Tells s of a task: {"type": "task", "task": {...}}. */
static void
tell_task(ws_socket *s, const ip_task_info *ti)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    if (!f)
        return;
    fprintf(f, "{\"type\": \"task\", \"task\": ");
    proto_task_json(f, ti, -1, NULL);
    fprintf(f, "}");
    fclose(f);
    send_text(s, text, len);
    free(text);
}

static seen_task *
find_in(seen_task *list, unsigned n, ip_task_id id)
{
    for (unsigned i = 0; i < n; i++)
        if (list[i].id == id)
            return &list[i];
    return NULL;
}

/*
 * One look at a socket's tasks: the unfinished ones, told of when new or
 * changed; tasks newer than any seen before that are already finished
 * (made and run between two looks); and those that were unfinished and are
 * not any more, asked for one by one and told of as they ended.  The first
 * look tells of every unfinished task, so a page opened again sees where
 * its tasks are.
 */
static void
watch(ws_socket *s)
{
    const unsigned unfinished = 1u << IP_TASK_CREATED | 1u << IP_TASK_QUEUED |
                                1u << IP_TASK_RUNNING;
    ip_task_list_args a = { unfinished, 0, IP_MAX_LIST };
    seen_task *now = NULL;
    unsigned nnow = 0;
    ip_task_id high = 0;
    int more = 1;

    while (more && nnow < WEB_WS_WATCHED) {
        ip_task_list_res r;
        ip_task_page *p;
        char *why;
        seen_task *grown;

        memset(&r, 0, sizeof(r));
        if (web_rpc_call(ws.cfg, s->caller.who, "TASK_LIST", TASK_LIST,
                         PROTO_XDR(xdr_ip_task_list_args), &a, PROTO_XDR(xdr_ip_task_list_res), &r,
                         1, &why)) {
            free(why);
            free(now);
            return;             /* imgprocd is away: look again next time */
        }
        if (r.status != IP_OK) {
            xdr_free((xdrproc_t)xdr_ip_task_list_res, (char *)&r);
            free(now);
            return;
        }
        p = &r.ip_task_list_res_u.page;
        grown = realloc(now, (nnow + p->tasks.tasks_len + 1) * sizeof(*now));
        if (!grown) {
            xdr_free((xdrproc_t)xdr_ip_task_list_res, (char *)&r);
            free(now);
            return;
        }
        now = grown;
        for (u_int i = 0; i < p->tasks.tasks_len; i++) {
            ip_task_info *ti = &p->tasks.tasks_val[i];
            seen_task *old = find_in(s->seen, s->nseen, ti->id);
            if (!old || old->state != ti->state || old->progress != ti->progress)
                tell_task(s, ti);
            now[nnow++] = (seen_task){ ti->id, ti->state, ti->progress };
            a.after = ti->id;
            if (ti->id > high)
                high = ti->id;
        }
        more = p->more && p->tasks.tasks_len;
        xdr_free((xdrproc_t)xdr_ip_task_list_res, (char *)&r);
    }
    /* New since the last look, and perhaps finished already (made and run
     * between two looks).  The first look only learns where the list ends:
     * the older ones are old news. */
    a.states = 0;
    a.after = s->high;
    for (more = 1; more;) {
        ip_task_list_res r;
        ip_task_page *p;
        char *why;

        memset(&r, 0, sizeof(r));
        if (web_rpc_call(ws.cfg, s->caller.who, "TASK_LIST", TASK_LIST,
                         PROTO_XDR(xdr_ip_task_list_args), &a, PROTO_XDR(xdr_ip_task_list_res), &r,
                         1, &why)) {
            free(why);
            break;
        }
        p = &r.ip_task_list_res_u.page;
        more = r.status == IP_OK && p->more && p->tasks.tasks_len;
        for (u_int i = 0; r.status == IP_OK && i < p->tasks.tasks_len; i++) {
            ip_task_info *ti = &p->tasks.tasks_val[i];
            seen_task *grown;
            a.after = ti->id;
            if (find_in(now, nnow, ti->id))
                continue;       /* in the list of unfinished ones above */
            if (s->listed)
                tell_task(s, ti);
            /* Made since the list above and not finished: follow it too. */
            if (!proto_task_final(ti->state) &&
                (grown = realloc(now, (nnow + 1) * sizeof(*now)))) {
                now = grown;
                now[nnow++] = (seen_task){ ti->id, ti->state, ti->progress };
            }
        }
        xdr_free((xdrproc_t)xdr_ip_task_list_res, (char *)&r);
    }
    /* Those no longer unfinished: done, failed, cancelled or deleted. */
    for (unsigned i = 0; i < s->nseen; i++) {
        ip_task_info_res r;
        char *why;

        if (find_in(now, nnow, s->seen[i].id))
            continue;
        memset(&r, 0, sizeof(r));
        if (web_rpc_call(ws.cfg, s->caller.who, "TASK_STATUS", TASK_STATUS,
                         PROTO_XDR(xdr_ip_task_id), &s->seen[i].id,
                         PROTO_XDR(xdr_ip_task_info_res), &r, 1, &why) == 0) {
            if (r.status == IP_OK)
                tell_task(s, &r.ip_task_info_res_u.info);
            xdr_free((xdrproc_t)xdr_ip_task_info_res, (char *)&r);
        }
        free(why);
    }
    free(s->seen);
    s->seen = now;
    s->nseen = nnow;
    if (a.after > high)
        high = a.after;
    if (high > s->high)
        s->high = high;
}

static void *
watcher(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&ws.lock);
    while (!ws.stopping) {
        struct timespec until;
        ws_socket **list = NULL;
        unsigned n = 0, cap = 0;

        /* Hold each socket while it is looked at, so a closing one waits. */
        for (ws_socket *s = ws.sockets; s; s = s->next) {
            if (!s->listed || s->closed)
                continue;       /* no session, or its first look is on_ready's */
            if (n == cap) {
                ws_socket **grown = realloc(list, (cap = cap ? cap * 2 : 8) * sizeof(*list));
                if (!grown)
                    break;
                list = grown;
            }
            s->refs++;
            list[n++] = s;
        }
        pthread_mutex_unlock(&ws.lock);
        for (unsigned i = 0; i < n; i++) {
            watch(list[i]);
            release(list[i]);
        }
        free(list);
        pthread_mutex_lock(&ws.lock);
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += WEB_WS_POLL_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!ws.stopping && pthread_cond_timedwait(&ws.changed, &ws.lock, &until) == 0)
            ;
    }
    pthread_mutex_unlock(&ws.lock);
    web_rpc_release();
    return NULL;
}

/*
 * Before the handshake: refused (1) when --max-websockets are open, when
 * another site's page asks (its Origin is not this gateway: a page
 * elsewhere must not act in the browser's session), or when ?steps= is
 * not a pipeline.
 */
static int
on_connect(const struct mg_connection *cc, void *data)
{
    /* civetweb hands a const connection, but a refusal is an HTTP answer to it. */
    struct mg_connection *c = (struct mg_connection *)cc;
    const struct mg_request_info *ri = mg_get_request_info(c);
    const char *origin = mg_get_header(c, "Origin"), *host = mg_get_header(c, "Host");
    const char *q = ri->query_string;
    char text[64], why[IP_MAX_MESSAGE];
    ws_socket *s;

    (void)data;
    if (origin) {
        const char *o = strstr(origin, "://");
        if (!host || !o || strcmp(o + 3, host) != 0) {
            web_problem(c, 403, "denied", "a page of %s may not open this gateway's "
                        "WebSocket", origin);
            return 1;
        }
    }
    if (!(s = calloc(1, sizeof(*s)))) {
        web_problem(c, 500, "internal-error", "out of memory");
        return 1;
    }
    switch (web_query_steps(q, s->steps, &s->nsteps, why, sizeof(why))) {
    case 1:
        s->steps[0].op = IP_OP_GRAYSCALE;
        s->nsteps = 1;
        break;
    case -1:
        web_problem(c, 400, "invalid-argument", "steps: %s", why);
        free(s);
        return 1;
    }
    if (q && mg_get_var(q, strlen(q), "format", text, sizeof(text)) > 0 &&
        proto_format_parse(text, &s->output.format)) {
        web_problem(c, 400, "invalid-argument", "format '%s' is not one imgprocd writes", text);
        free(s);
        return 1;
    }
    switch (web_session(c, 0, &s->caller)) {
    case 0:
        s->has_session = 1;
        break;
    case -2:
        web_bad_token(c);
        free(s);
        return 1;
    }
    pthread_mutex_lock(&ws.lock);
    if (ws.open >= ws.cfg->max_websockets) {
        unsigned open = ws.open;
        pthread_mutex_unlock(&ws.lock);
        web_problem(c, 503, "busy", "%u WebSockets are open, as many as this gateway takes "
                    "(--max-websockets): try again later", open);
        free(s);
        return 1;
    }
    ws.open++;
    s->refs = 1;
    s->next = ws.sockets;
    ws.sockets = s;
    pthread_mutex_unlock(&ws.lock);
    mg_set_user_connection_data(c, s);
    return 0;
}

static void
on_ready(struct mg_connection *c, void *data)
{
    ws_socket *s = mg_get_user_connection_data(c);
    char hello[256];
    int n;

    (void)data;
    s->conn = c;
    /* The first look, before the hello: the tasks from then on are news,
     * and a caller that waits for the hello misses none of them. */
    if (s->has_session) {
        watch(s);
        /* This thread is the socket's while it is open: its connection would idle. */
        web_rpc_release();
        pthread_mutex_lock(&ws.lock);
        s->listed = 1;          /* the watcher's from now on */
        pthread_mutex_unlock(&ws.lock);
    }
    n = snprintf(hello, sizeof(hello), "{\"type\": \"hello\", \"session\": %s, "
                 "\"in_flight\": %d}", s->has_session ? "true" : "false", WEB_WS_INFLIGHT);
    mg_websocket_write(c, MG_WEBSOCKET_OPCODE_TEXT, hello, (size_t)n);
}

/* A message: an image to work on; anything else is answered with an error. */
static int
on_data(struct mg_connection *c, int bits, char *data, size_t len, void *cbdata)
{
    ws_socket *s = mg_get_user_connection_data(c);
    int opcode = bits & 0xf;
    ws_job *j;
    char msg[256];
    int n;

    (void)cbdata;
    if (opcode == MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE)
        return 0;
    if (opcode == MG_WEBSOCKET_OPCODE_PING) {
        /* Keep-alive (RFC 6455 5.5.2): the client closes a socket that does not answer. */
        mg_websocket_write(c, MG_WEBSOCKET_OPCODE_PONG, data, len);
        return 1;
    }
    if (opcode == MG_WEBSOCKET_OPCODE_PONG)
        return 1;
    if (opcode != MG_WEBSOCKET_OPCODE_BINARY || !(bits & 0x80) || len == 0 ||
        len > ws.cfg->max_body) {
        n = snprintf(msg, sizeof(msg), "{\"type\": \"error\", \"status\": \"%s\", "
                     "\"error\": \"send each image as one binary message of 1 to %llu bytes\"}",
                     len > ws.cfg->max_body ? "too-large" : "invalid-argument", ws.cfg->max_body);
        mg_websocket_write(c, MG_WEBSOCKET_OPCODE_TEXT, msg, (size_t)n);
        return 1;
    }
    if (!(j = calloc(1, sizeof(*j))) || !(j->data = malloc(len))) {
        free(j);
        return 0;
    }
    memcpy(j->data, data, len);
    j->len = len;
    j->s = s;
    pthread_mutex_lock(&ws.lock);
    /* Enough in flight: stop reading until one is answered (TCP pushes back). */
    while (s->inflight >= WEB_WS_INFLIGHT && !ws.stopping)
        pthread_cond_wait(&ws.changed, &ws.lock);
    j->seq = ++s->seq;
    s->inflight++;
    s->refs++;
    if (ws.tail)
        ws.tail->next = j;
    else
        ws.head = j;
    ws.tail = j;
    pthread_cond_broadcast(&ws.changed);
    pthread_mutex_unlock(&ws.lock);
    return 1;
}

/* Closed: nothing more is written to it; its memory goes when no one holds it. */
static void
on_close(const struct mg_connection *c, void *data)
{
    ws_socket *s = mg_get_user_connection_data(c), **p;

    (void)data;
    if (!s)
        return;
    pthread_mutex_lock(&ws.lock);
    s->closed = 1;
    for (p = &ws.sockets; *p; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            break;
        }
    ws.open--;
    s->refs--;
    while (s->refs > 0)
        pthread_cond_wait(&ws.changed, &ws.lock);
    pthread_mutex_unlock(&ws.lock);
    mg_set_user_connection_data(c, NULL);
    free(s->seen);
    free(s);
}

void
web_events_routes(struct mg_context *ctx, const web_config *cfg)
{
    ws.cfg = cfg;
    ws.stopping = 0;
    for (int i = 0; i < WEB_WS_WORKERS; i++)
        pthread_create(&ws.workers[i], NULL, worker, NULL);
    pthread_create(&ws.watcher, NULL, watcher, NULL);
    ws.started = 1;
    mg_set_websocket_handler(ctx, "/v1/events$", on_connect, on_ready, on_data, on_close, NULL);
}

void
web_events_stop(void)
{
    if (!ws.started)
        return;
    pthread_mutex_lock(&ws.lock);
    ws.stopping = 1;
    pthread_cond_broadcast(&ws.changed);
    pthread_mutex_unlock(&ws.lock);
    for (int i = 0; i < WEB_WS_WORKERS; i++)
        pthread_join(ws.workers[i], NULL);
    pthread_join(ws.watcher, NULL);
    ws.started = 0;
}

/* dispatch.c - the procedure table: decode the arguments, run the handler, reply, log. */
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "proto.h"
#include "server.h"
#include "service.h"

/* One row per procedure: adding one is a row and a handler. */
typedef struct proc_entry {
    rpcproc_t proc;             /* procedure number from imgproc.x */
    const char *name;           /* for the log */
    xdrproc_t xdr_arg;          /* decodes the argument */
    size_t arg_size;            /* its decoded argument's size (0: void) */
    xdrproc_t xdr_res;          /* encodes the result */
    size_t res_size;            /* its result's size (0: void) */
    handler_fn handler;         /* fills the result */
    void (*free_res)(void *res); /* releases it; NULL = xdr_free(xdr_res) */
    int batched;                /* a batched call: never replied to */
    int udp;                    /* served over UDP: cheap and bounded (see below) */
} proc_entry;

/*
 * Any result of imgproc.x that is not ok: the status, then the default arm's
 * message.  Every result union has that shape, so this encodes a refusal for
 * any procedure.
 */
typedef struct refusal {
    ip_status status;           /* never IP_OK */
    char *message;              /* why, for people */
} refusal;

static bool_t
xdr_refusal(XDR *x, refusal *r)
{
    return xdr_ip_status(x, &r->status) && xdr_string(x, &r->message, IP_MAX_MESSAGE);
}

/*
 * TASK_CREATE's and TASK_SUBMIT's argument, decoded field by field in the
 * order of ip_task_create_args in imgproc.x, with the token read as counted
 * bytes.  A C string ends at a NUL byte, so "a\0x" and "a\0y" would name one
 * task: a NUL in a token becomes 0x01, which the task code refuses with
 * "the token holds control characters".  Encoding and freeing are the
 * generated routine's.
 */
static bool_t
xdr_task_create_args_strict(XDR *x, ip_task_create_args *a)
{
    u_int len;

    if (x->x_op != XDR_DECODE)
        return xdr_ip_task_create_args(x, a);
    if (!xdr_ip_task_source(x, &a->source) || !xdr_ip_task_spec(x, &a->spec) ||
        !xdr_u_int(x, &len) || len > IP_MAX_TOKEN || !(a->token = calloc(1, (size_t)len + 1)))
        return FALSE;   /* zeroed: a record cut short still frees as a string */
    if (!xdr_opaque(x, a->token, len))
        return FALSE;
    a->token[len] = '\0';
    for (u_int i = 0; i < len; i++)
        if (a->token[i] == '\0')
            a->token[i] = 0x01;
    return xdr_bool(x, &a->hold);
}

/* Casting through a no-argument function type keeps -Wcast-function-type quiet. */

/*
 * The bytes a call carries, counted before they are read.
 *
 * An image arrives as XDR counted bytes: a length, then the bytes.  The
 * generated decoder takes the length, asks malloc for that much (address
 * space, not memory: no page is touched yet) and reads the bytes into it.
 * The decoder is given this stream in front of the transport's, which sees
 * the count when the bytes are asked for and before one is read:
 *   - over the call's cap (--max-request-bytes; a TASK_UPLOAD chunk's is
 *     IP_MAX_CHUNK) the call is refused as too-large;
 *   - a large one first takes its share of --max-inflight-bytes, the one
 *     budget for the image bytes of every call being received or worked on,
 *     of which the calls from one address may hold a quarter.  Over TCP it
 *     waits for room up to BUDGET_WAIT_SECONDS; over UDP (one thread for
 *     every caller) it never waits.  Then it is refused as busy.
 * The budget is taken for the whole count at once: taken piece by piece as
 * bytes arrive, calls that each hold part and wait for the rest would
 * deadlock the budget.  A sender too slow to deserve its share is closed by
 * net.c (--min-receive-rate).
 */
#define BUDGET_MIN_BYTES 65536      /* smaller arguments (names, steps, tokens) are not counted */
#define BUDGET_WAIT_SECONDS 10      /* then the call is refused as busy */
#define BUDGET_SHARES 4             /* one address may hold 1/BUDGET_SHARES of the budget */

typedef struct arg_guard {
    XDR x;                      /* what the generated decoder reads */
    XDR *in;                    /* the transport's stream */
    srv *s;                     /* limits, budget */
    xdrproc_t decode;           /* the argument's generated decoder */
    void *arg;                  /* where it decodes to */
    uint64_t max_bytes;         /* the largest counted-bytes field allowed */
    conn_activity *act;         /* the TCP connection's activity, or NULL (UDP) */
    unsigned char key[9];       /* the caller's address, as budget_share keys it */
    budget_share *share;        /* the caller's address's share, while held */
    uint64_t held;              /* bytes of the budget this call holds */
    ip_status status;           /* IP_OK, or why the call was refused */
    char message[IP_MAX_MESSAGE];
} arg_guard;

/* The caller's address as a budget_share key: IPv4 whole, IPv6 its /64, the
 * local socket's callers by uid (the kernel's). */
static void
caller_key(const srv_peer *p, unsigned char key[9])
{
    const struct sockaddr *sa = p->addr;

    memset(key, 0, 9);
    if (p->local) {
        key[0] = 1;
        memcpy(key + 1, &p->kuid, sizeof(p->kuid));
    } else if (sa && sa->sa_family == AF_INET) {
        key[0] = 4;
        memcpy(key + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa && sa->sa_family == AF_INET6) {
        key[0] = 6;
        memcpy(key + 1, &((const struct sockaddr_in6 *)sa)->sin6_addr, 8);
    }
}

/* The share of key's address, made if missing; NULL when out of memory.  Under s->lock. */
static budget_share *
share_of(srv *s, const unsigned char key[9])
{
    budget_share *sh;

    for (sh = s->shares; sh; sh = sh->next)
        if (memcmp(sh->key, key, 9) == 0)
            return sh;
    if (!(sh = calloc(1, sizeof(*sh))))
        return NULL;
    memcpy(sh->key, key, 9);
    sh->next = s->shares;
    s->shares = sh;
    return sh;
}

/* Drops sh when it holds nothing.  Under s->lock. */
static void
share_drop_empty(srv *s, budget_share *sh)
{
    if (sh->bytes)
        return;
    for (budget_share **p = &s->shares; *p; p = &(*p)->next)
        if (*p == sh) {
            *p = sh->next;
            free(sh);
            return;
        }
}

/* Takes n bytes of the budget for g's call: 1, or 0 with g's refusal filled in. */
static int
budget_take(arg_guard *g, u_int n)
{
    srv *s = g->s;
    uint64_t all = s->cfg.max_inflight_bytes, per = all / BUDGET_SHARES;
    double until = proto_seconds() + (g->act ? BUDGET_WAIT_SECONDS : 0);
    int fits = 0, stopping = 0, waited = 0;
    budget_share *sh;

    if (per < s->cfg.max_request_bytes)
        per = s->cfg.max_request_bytes;     /* one call of the largest size always fits */
    /* Waiting here is not a slow sender's fault (net.c measures senders). */
    if (g->act)
        __atomic_store_n(&g->act->working, 1, __ATOMIC_RELAXED);
    pthread_mutex_lock(&s->lock);
    /* The share is looked up afresh after every wait: while we wait, the
     * calls holding it may give it back, and an empty share is freed. */
    while ((sh = share_of(s, g->key))) {
        struct timespec ts;
        fits = s->inflight + n <= all && sh->bytes + n <= per;
        if (fits || proto_seconds() >= until || (stopping = srv_fd_ready(s->stop_pipe[0], POLLIN)))
            break;
        share_drop_empty(s, sh);
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;         /* looks at the clock and the stop pipe each second */
        pthread_cond_timedwait(&s->budget, &s->lock, &ts);
        waited = 1;
    }
    if (!sh) {
        fits = 0;
        g->status = IP_EINTERNAL;
        snprintf(g->message, sizeof(g->message), "out of memory");
    } else if (fits) {
        s->inflight += n;
        sh->bytes += n;
        g->held += n;
        g->share = sh;
    } else if (stopping) {
        g->status = IP_EBUSY;
        snprintf(g->message, sizeof(g->message), "the server is shutting down; call again later");
    } else {
        g->status = IP_EBUSY;
        if (sh->bytes + n > per)
            snprintf(g->message, sizeof(g->message), "calls from your address hold %llu "
                     "image bytes, their share (a quarter of --max-inflight-bytes %llu): "
                     "call again later", (unsigned long long)sh->bytes,
                     (unsigned long long)all);
        else
            snprintf(g->message, sizeof(g->message), "the server is receiving or working "
                     "on as many image bytes as it holds at once (--max-inflight-bytes "
                     "%llu): call again later", (unsigned long long)all);
    }
    if (sh)
        share_drop_empty(s, sh);
    pthread_mutex_unlock(&s->lock);
    if (g->act) {
        __atomic_store_n(&g->act->working, 0, __ATOMIC_RELAXED);
        if (waited)
            net_measure_from_now(s, g->act);
    }
    return fits;
}

/* Gives back what g's call held of the budget. */
static void
budget_give(arg_guard *g)
{
    if (!g->held)
        return;
    pthread_mutex_lock(&g->s->lock);
    g->s->inflight -= g->held;
    g->share->bytes -= g->held;
    share_drop_empty(g->s, g->share);
    pthread_cond_broadcast(&g->s->budget);
    pthread_mutex_unlock(&g->s->lock);
    g->held = 0;
    g->share = NULL;
}

static bool_t
guard_getlong(XDR *x, long *v)
{
    arg_guard *g = x->x_private;

    return XDR_GETLONG(g->in, v);
}

static bool_t
guard_getbytes(XDR *x, char *p, u_int n)
{
    arg_guard *g = x->x_private;

    if (n > g->max_bytes) {
        g->status = IP_ETOOBIG;
        snprintf(g->message, sizeof(g->message), "the call carries %u bytes; this server "
                 "accepts at most %llu%s", n, (unsigned long long)g->max_bytes,
                 g->max_bytes == g->s->cfg.max_request_bytes ? " (--max-request-bytes)" : "");
        return FALSE;
    }
    if (n >= BUDGET_MIN_BYTES && !budget_take(g, n))
        return FALSE;
    return XDR_GETBYTES(g->in, p, n);
}

static u_int
guard_getpostn(XDR *x)
{
    arg_guard *g = x->x_private;

    return XDR_GETPOS(g->in);
}

static bool_t
guard_no_put(XDR *x, const long *v)
{
    (void)x;
    (void)v;
    return FALSE;
}

static bool_t
guard_no_putbytes(XDR *x, const char *p, u_int n)
{
    (void)x;
    (void)p;
    (void)n;
    return FALSE;
}

static bool_t
guard_no_setpostn(XDR *x, u_int pos)
{
    (void)x;
    (void)pos;
    return FALSE;
}

/* No direct access to the buffer: the decoder then reads field by field, through us. */
static int32_t *
guard_no_inline(XDR *x, u_int n)
{
    (void)x;
    (void)n;
    return NULL;
}

static void
guard_destroy(XDR *x)
{
    (void)x;
}

static bool_t
guard_control(XDR *x, int req, void *info)
{
    arg_guard *g = x->x_private;

    return g->in->x_ops->x_control ? g->in->x_ops->x_control(g->in, req, info) : FALSE;
}

static const struct xdr_ops guard_ops = {
    guard_getlong, guard_no_put, guard_getbytes, guard_no_putbytes, guard_getpostn,
    guard_no_setpostn, guard_no_inline, guard_destroy, guard_control,
};

/* svc_getargs' decoder: the argument's own, reading through the guard. */
static bool_t
xdr_guarded(XDR *in, arg_guard *g)
{
    if (in->x_op != XDR_DECODE)
        return FALSE;
    g->in = in;
    g->x.x_op = XDR_DECODE;
    g->x.x_ops = &guard_ops;
    g->x.x_private = g;
    return g->decode(&g->x, g->arg);
}

/*
 * UDP has one serving thread, and its clients retransmit: a slow call there
 * stops every UDP caller and runs again for each retransmission.  So UDP
 * serves only the cheap, bounded procedures (the udp column); image work,
 * transfers, and cancel and delete (which wait for a worker) answer
 * invalid-argument with a message naming TCP.  A retransmitted call gets the
 * cached reply (libtirpc's duplicate request cache, net.c).
 */
/*
 * PROC(number, argument type, its XDR routine, result type, its XDR
 * routine, handler, free (NULL: xdr_free), batched, udp).  The row takes
 * its sizes from the types, and the compiler checks that each fits the
 * room dispatch_call keeps for it: a new, larger type cannot overflow it.
 */
typedef char no_value[0];               /* a void argument or result: no room */
#define ARG_ROOM 128                    /* bytes for any decoded argument */
#define RES_ROOM 256                    /* bytes for any result */
#define FITS(type, room) (sizeof(type) + 0 * sizeof(char[sizeof(type) <= (room) ? 1 : -1]))
#define PROC(num, argt, xarg, rest, xres, handler, free_res, batched, udp)             \
    { num, #num, PROTO_XDR(xarg), FITS(argt, ARG_ROOM), PROTO_XDR(xres), FITS(rest, RES_ROOM),  \
      handler, free_res, batched, udp }

static const proc_entry procs[] = {
    PROC(IP_NULL, no_value, xdr_void, no_value, xdr_void, service_null, NULL, 0, 1),
    PROC(SERVER_INFO, no_value, xdr_void, ip_server_info_res, xdr_ip_server_info_res,
         service_server_info, NULL, 0, 1),
    PROC(IMAGE_INFO, ip_image, xdr_ip_image, ip_info_res, xdr_ip_info_res, service_image_info,
         NULL, 0, 0),
    PROC(GRAYSCALE, ip_grayscale_args, xdr_ip_grayscale_args, ip_image_res, xdr_ip_image_res,
         service_grayscale, service_free_image_res, 0, 0),
    PROC(RESIZE, ip_resize_args, xdr_ip_resize_args, ip_image_res, xdr_ip_image_res,
         service_resize, service_free_image_res, 0, 0),
    PROC(ROTATE, ip_rotate_args, xdr_ip_rotate_args, ip_image_res, xdr_ip_image_res,
         service_rotate, service_free_image_res, 0, 0),
    PROC(BLUR, ip_blur_args, xdr_ip_blur_args, ip_image_res, xdr_ip_image_res, service_blur,
         service_free_image_res, 0, 0),
    PROC(PROCESS, ip_process_args, xdr_ip_process_args, ip_image_res, xdr_ip_image_res,
         service_process, service_free_image_res, 0, 0),
    PROC(TASK_CREATE, ip_task_create_args, xdr_task_create_args_strict, ip_task_create_res,
         xdr_ip_task_create_res, service_task_create, NULL, 0, 0),
    PROC(TASK_UPLOAD, ip_task_upload_args, xdr_ip_task_upload_args, ip_task_upload_res,
         xdr_ip_task_upload_res, service_task_upload, NULL, 0, 0),
    PROC(TASK_START, ip_task_id, xdr_ip_task_id, ip_task_res, xdr_ip_task_res, service_task_start,
         NULL, 0, 1),
    PROC(TASK_STATUS, ip_task_id, xdr_ip_task_id, ip_task_info_res, xdr_ip_task_info_res,
         service_task_status, NULL, 0, 1),
    PROC(TASK_WAIT, ip_task_wait_args, xdr_ip_task_wait_args, ip_task_info_res,
         xdr_ip_task_info_res, service_task_wait, NULL, 0, 1),
    PROC(TASK_RESULT, ip_task_result_args, xdr_ip_task_result_args, ip_task_result_res,
         xdr_ip_task_result_res, service_task_result, NULL, 0, 0),
    PROC(TASK_CANCEL, ip_task_id, xdr_ip_task_id, ip_task_res, xdr_ip_task_res,
         service_task_cancel, NULL, 0, 0),
    PROC(TASK_DELETE, ip_task_id, xdr_ip_task_id, ip_task_res, xdr_ip_task_res,
         service_task_delete, NULL, 0, 0),
    PROC(TASK_LIST, ip_task_list_args, xdr_ip_task_list_args, ip_task_list_res,
         xdr_ip_task_list_res, service_task_list, NULL, 0, 1),
    PROC(TASK_SUBMIT, ip_task_create_args, xdr_task_create_args_strict, no_value, xdr_void,
         service_task_submit, NULL, 1, 0),
    PROC(TASK_COLLECT, no_value, xdr_void, ip_batch_res, xdr_ip_batch_res, service_task_collect,
         NULL, 0, 1),
    PROC(NULL_BATCHED, no_value, xdr_void, no_value, xdr_void, service_null, NULL, 1, 1),
    PROC(STATS, no_value, xdr_void, ip_stats_res, xdr_ip_stats_res, service_stats, NULL, 0, 1),
};

static const proc_entry *
proc_find(rpcproc_t proc)
{
    for (size_t i = 0; i < sizeof(procs) / sizeof(procs[0]); i++)
        if (procs[i].proc == proc)
            return &procs[i];
    return NULL;
}

double
srv_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

const char *
dispatch_proc_name(unsigned proc)
{
    const proc_entry *p = proc_find(proc);

    return p ? p->name : NULL;
}

/*
 * What the transport says of the caller: its address, the credentials it
 * claims, and what vouches for them: the kernel (the local socket: the uid
 * and gid of the process that connected, SO_PEERCRED) or Kerberos.
 * principal is the caller's room for a Kerberos principal.
 */
static void
peer_of(struct svc_req *req, SVCXPRT *xprt, int stream, srv_peer *p, char *principal,
        size_t len)
{
    const struct authunix_parms *cred = (const struct authunix_parms *)req->rq_clntcred;
    struct netbuf *nb = svc_getrpccaller(xprt);

    memset(p, 0, sizeof(*p));
    p->stream = stream;
    if (nb && nb->buf && nb->len && ((const struct sockaddr *)nb->buf)->sa_family != AF_LOCAL) {
        p->addr = nb->buf;
        p->addrlen = nb->len;
    }
    if (req->rq_cred.oa_flavor == AUTH_SYS && cred) {
        p->sys = 1;
        p->uid = (unsigned)cred->aup_uid;
        p->gid = (unsigned)cred->aup_gid;
        p->machine = cred->aup_machname;
    }
    if (xprt->xp_netid && strcmp(xprt->xp_netid, "local") == 0) {
        struct ucred uc;
        socklen_t ul = sizeof(uc);
        /* No word from the kernel: uid and gid nobody has. */
        p->local = 1;
        p->kuid = p->kgid = (unsigned)-1;
        if (getsockopt(xprt->xp_fd, SOL_SOCKET, SO_PEERCRED, &uc, &ul) == 0) {
            p->kuid = (unsigned)uc.uid;
            p->kgid = (unsigned)uc.gid;
        }
    }
    if (req->rq_cred.oa_flavor == RPCSEC_GSS) {
        int r = kerberos_caller(req, principal, len, &p->krb5_privacy);
        p->krb5 = 1;
        p->krb5_none = r == 1;
        p->principal = r >= 0 ? principal : NULL;   /* unknown: refused */
    }
}

/*
 * A call has ended: its procedure's counters (STATS), and the log line.
 * outcome, when not NULL, says it was not answered as the procedure does.
 */
static void
end_call(srv *s, const srv_peer *peer, const proc_entry *p, const call_log *log,
         const char *outcome, double ms)
{
    const char *name = p ? p->name : "?";
    char who[NI_MAXHOST + NI_MAXSERV + 4];

    if (p && p->proc < IP_MAX_PROCS) {
        srv_proc_stats *st = &s->stats[p->proc];
        __atomic_add_fetch(&st->calls, 1, __ATOMIC_RELAXED);
        if (outcome || log->status != IP_OK)
            __atomic_add_fetch(&st->errors, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&st->bytes_in, log->in_bytes, __ATOMIC_RELAXED);
        __atomic_add_fetch(&st->bytes_out, log->out_bytes, __ATOMIC_RELAXED);
        __atomic_add_fetch(&st->micros, (unsigned long long)(ms * 1000), __ATOMIC_RELAXED);
    }
    if (!srv_log_is_verbose())
        return;
    service_peer_name(peer, who, sizeof(who));
    srv_log(SRV_LOG_VERBOSE, "%s from %s in=%zu out=%zu %s %.1fms\n", name, who,
            log->in_bytes, log->out_bytes,
            outcome ? outcome : proto_status_name(log->status), ms);
}

/* The guard for a call of p, decoding into arg. */
static void
guard_init(arg_guard *g, srv *s, const proc_entry *p, void *arg, const srv_peer *peer,
           conn_activity *act)
{
    g->s = s;
    g->decode = p->xdr_arg;
    g->arg = arg;
    /* A TASK_UPLOAD chunk is bounded by imgproc.x (IP_MAX_CHUNK), not by the flag. */
    g->max_bytes = p->proc == TASK_UPLOAD ? IP_MAX_CHUNK : s->cfg.max_request_bytes;
    g->act = act;
    caller_key(peer, g->key);
    g->share = NULL;
    g->held = 0;
    g->status = IP_OK;
}

/*
 * A Kerberos reply (signed or encrypted) must fit libtirpc's record buffer
 * whole: libtirpc 1.3.3 crashes in gss_get_mic on a larger one.  Kept under
 * the 256 KiB buffer by room for the checksum or encryption.
 */
#define KRB5_MAX_REPLY (PROTO_RECORD_BUFFER - 16 * 1024)
_Static_assert(PROTO_KRB5_CHUNK + 4096 < KRB5_MAX_REPLY, "a result piece must fit a Kerberos reply");

/* Sends p's result res, or what stands for it: NULL when sent, else the log's outcome. */
static const char *
send_result(const proc_entry *p, SVCXPRT *xprt, int stream, int krb5, void *res)
{
    char why[IP_MAX_MESSAGE];
    size_t size;

    /* A batched call expects no reply; sending one would deadlock a
     * client that is still writing its batch (see ONCRPC-NOTES). */
    if (p->batched)
        return NULL;
    if (krb5 && p->res_size && (size = xdr_sizeof(p->xdr_res, res)) > KRB5_MAX_REPLY) {
        refusal r = { IP_ETOOBIG, why };
        snprintf(why, sizeof(why), "%s's reply (%zu bytes) is larger than a Kerberos reply "
                 "may be here (%d bytes, libtirpc's limit); a task's result comes back in "
                 "pieces of any size", p->name, size, KRB5_MAX_REPLY);
        svc_sendreply(xprt, PROTO_XDR(xdr_refusal), (caddr_t)&r);
        return "too-big-for-krb5";
    }
    if (p->res_size && service_result_fits(stream, stream ? 0 : xdr_sizeof(p->xdr_res, res),
                                           p->name, why, sizeof(why))) {
        /* Not sent, the caller would only retransmit until its timeout. */
        refusal r = { IP_ETOOBIG, why };
        svc_sendreply(xprt, PROTO_XDR(xdr_refusal), (caddr_t)&r);
        return "too-big-for-udp";
    }
    return svc_sendreply(xprt, p->xdr_res, (caddr_t)res) ? NULL : "reply-failed";
}

/*
 * One call: find the row, refuse what the transport may not carry, decode
 * through the guard, run the handler, reply, free, log.  Long (about 75
 * lines) because the order of these steps, and what each failure must
 * undo, is the point.
 */
void
dispatch_call(srv *s, struct svc_req *req, SVCXPRT *xprt, int stream, tasks_batch *batch,
              conn_activity *act)
{
    const proc_entry *p = proc_find(req->rq_proc);
    /* Arguments and results live here, on this thread's stack (rpcgen -M
     * style); each row's sizes were checked against the room (PROC). */
    _Alignas(max_align_t) unsigned char arg[ARG_ROOM];
    _Alignas(max_align_t) unsigned char res[RES_ROOM];
    srv_caller who;
    char principal[SERVICE_MAX_PRINCIPAL + 2];  /* a longer one shows as too long */
    call_ctx ctx = { .owner = who.owner, .how = who.how, .stream = stream, .batch = batch,
                     .fd = stream ? xprt->xp_fd : -1 };
    call_log log = { 0, 0, IP_OK };
    char why[IP_MAX_MESSAGE];
    arg_guard guard;
    srv_peer peer;
    double t0 = srv_now_ms();

    peer_of(req, xprt, stream, &peer, principal, sizeof(principal));

    if (!p) {
        svcerr_noproc(xprt);
        end_call(s, &peer, NULL, &log, "no-such-procedure", srv_now_ms() - t0);
        return;
    }
    if (service_transport_ok(p->name, p->udp, stream, why, sizeof(why))) {
        refusal r = { IP_EINVAL, why };
        if (!p->batched)
            svc_sendreply(xprt, PROTO_XDR(xdr_refusal), (caddr_t)&r);
        end_call(s, &peer, p, &log, "tcp-only", srv_now_ms() - t0);
        return;
    }
    /* Who the caller is, or a refusal saying which rule refused, before a
     * byte of the arguments is read.  NULL needs no one (and stays cheap). */
    memset(&who, 0, sizeof(who));
    if (p->proc != IP_NULL && p->proc != NULL_BATCHED &&
        service_identify(&s->cfg, &peer, p->proc == SERVER_INFO, &who, why, sizeof(why))) {
        refusal r = { IP_EDENIED, why };
        if (p->batched) {
            if (batch)
                tasks_batch_skip(batch);
        } else {
            svc_sendreply(xprt, PROTO_XDR(xdr_refusal), (caddr_t)&r);
        }
        log.status = IP_EDENIED;
        end_call(s, &peer, p, &log, NULL, srv_now_ms() - t0);
        srv_log(SRV_LOG_VERBOSE, "%s\n", why);
        return;
    }
    ctx.admin = who.admin;
    memset(arg, 0, sizeof(arg));
    memset(res, 0, sizeof(res));
    guard_init(&guard, s, p, arg, &peer, act);
    if (!svc_getargs(xprt, PROTO_XDR(xdr_guarded), (caddr_t)&guard)) {
        /* Over a size limit or the budget: a refusal saying so.  Otherwise
         * malformed: a garbage-arguments reply.  A batched call gets neither;
         * the batch's report counts it as skipped.  What is left of the
         * record is read and dropped before the next call. */
        refusal r = { guard.status, guard.message };
        if (p->batched) {
            if (batch)
                tasks_batch_skip(batch);
        } else if (guard.status != IP_OK) {
            svc_sendreply(xprt, PROTO_XDR(xdr_refusal), (caddr_t)&r);
        } else {
            svcerr_decode(xprt);
        }
        svc_freeargs(xprt, p->xdr_arg, (caddr_t)arg);
        budget_give(&guard);
        log.status = guard.status;
        end_call(s, &peer, p, &log, guard.status != IP_OK ? NULL : "garbage-args",
                 srv_now_ms() - t0);
        return;
    }
    __atomic_add_fetch(&s->in_progress, 1, __ATOMIC_RELAXED);
    if (act)
        __atomic_store_n(&act->working, 1, __ATOMIC_RELAXED);
    /* Only SERVER_INFO asks whether the caller is local: the interface list
     * is read for it alone. */
    ctx.local = p->proc == SERVER_INFO && service_peer_local(&peer);
    p->handler(s, &ctx, arg, res, &log);
    /* Every result in imgproc.x is a union on ip_status: its first field. */
    if (p->res_size)
        log.status = *(ip_status *)(void *)res;
    __atomic_sub_fetch(&s->in_progress, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&s->served, 1, __ATOMIC_RELAXED);
    end_call(s, &peer, p, &log, send_result(p, xprt, stream, peer.krb5, res), srv_now_ms() - t0);
    if (p->free_res)
        p->free_res(res);
    else if (p->res_size)
        xdr_free(p->xdr_res, (char *)res);
    svc_freeargs(xprt, p->xdr_arg, (caddr_t)arg);
    budget_give(&guard);
    if (act)
        __atomic_store_n(&act->working, 0, __ATOMIC_RELAXED);
}

/*
 * krb5.c - Kerberos callers: RPCSEC_GSS (RFC 2203) through libtirpc.  The
 * service's keys are checked at start, and each call is authenticated here,
 * with the work-arounds libtirpc 1.3.3's server side needs (docs/ARCHITECTURE.md).
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gssapi/gssapi.h>
#include <gssapi/gssapi_krb5.h>
#include <rpc/rpc.h>
#include <rpc/rpcsec_gss.h>
#include <rpc/auth_gss.h>
#include <rpc/svc_auth.h>

#include "proto.h"
#include "server.h"

/* libtirpc's "no authentication" handler, to tell a GSS connection from others. */
extern SVCAUTH svc_auth_none;

/*
 * No lock around context creation: libtirpc's one unlocked global is the
 * service credential, and with the two functions above every INIT writes
 * the same one there (a DESTROY writes none, which makes an INIT at that
 * moment accept with the default credential: the same keys).  A lock held
 * while libtirpc reads an INIT's token would let one slow sender stop
 * every Kerberos login.
 */

/*
 * The service's credential, acquired once at start.  libtirpc 1.3.3
 * acquires it into one global at every context INIT (any caller's, before
 * it is authenticated) without releasing the one before: about 9 KB lost
 * each time, a leak any stranger could drive.  And every DESTROY releases
 * it, whoever else is using it.  So imgprocd hands libtirpc this one:
 * gss_acquire_cred and gss_release_cred below come before libgssapi's (a
 * program's own definitions do), give out and keep this credential, and
 * pass every other call on.
 */
static gss_cred_id_t service_cred = GSS_C_NO_CREDENTIAL;

typedef OM_uint32 (*acquire_fn)(OM_uint32 *, gss_name_t, OM_uint32, gss_OID_set,
                                gss_cred_usage_t, gss_cred_id_t *, gss_OID_set *, OM_uint32 *);
typedef OM_uint32 (*release_fn)(OM_uint32 *, gss_cred_id_t *);

OM_uint32 KRB5_CALLCONV
gss_acquire_cred(OM_uint32 *minor, gss_name_t name, OM_uint32 time_req, gss_OID_set mechs,
                 gss_cred_usage_t usage, gss_cred_id_t *cred, gss_OID_set *actual,
                 OM_uint32 *time_rec)
{
    acquire_fn real;

    if (service_cred != GSS_C_NO_CREDENTIAL && usage == GSS_C_ACCEPT && !actual && !time_rec) {
        *minor = 0;
        *cred = service_cred;
        return GSS_S_COMPLETE;
    }
    if (!(real = (acquire_fn)dlsym(RTLD_NEXT, "gss_acquire_cred")))
        return GSS_S_FAILURE;
    return real(minor, name, time_req, mechs, usage, cred, actual, time_rec);
}

OM_uint32 KRB5_CALLCONV
gss_release_cred(OM_uint32 *minor, gss_cred_id_t *cred)
{
    release_fn real;

    if (cred && service_cred != GSS_C_NO_CREDENTIAL && *cred == service_cred) {
        *minor = 0;
        *cred = GSS_C_NO_CREDENTIAL;        /* kept: libtirpc's next INIT gets it again */
        return GSS_S_COMPLETE;
    }
    if (!(real = (release_fn)dlsym(RTLD_NEXT, "gss_release_cred")))
        return GSS_S_FAILURE;
    return real(minor, cred);
}

int
kerberos_setup(srv *s, char **why)
{
    const char *name = s->cfg.krb5_service;
    gss_buffer_desc nb = { strlen(name), (void *)name };
    gss_name_t gname = GSS_C_NO_NAME;
    gss_cred_id_t cred = GSS_C_NO_CREDENTIAL;
    OM_uint32 major, minor;
    char text[512];

    *why = NULL;
    if (!strchr(name, '@')) {
        if (asprintf(why, "--krb5-service '%s' is not SERVICE@HOST (imgproc@%s is the "
                     "principal imgproc/%s@REALM)", name, "host.example.org",
                     "host.example.org") < 0)
            *why = NULL;
        return -1;
    }
    if (s->cfg.keytab && krb5_gss_register_acceptor_identity(s->cfg.keytab) != GSS_S_COMPLETE) {
        if (asprintf(why, "cannot use the keytab %s", s->cfg.keytab) < 0)
            *why = NULL;
        return -1;
    }
    /* Found now, not at the first caller: the keys must be there and readable. */
    major = gss_import_name(&minor, &nb, GSS_C_NT_HOSTBASED_SERVICE, &gname);
    if (major == GSS_S_COMPLETE)
        major = gss_acquire_cred(&minor, gname, GSS_C_INDEFINITE, GSS_C_NO_OID_SET,
                                 GSS_C_ACCEPT, &cred, NULL, NULL);
    if (major != GSS_S_COMPLETE) {
        proto_gss_text(major, minor, text, sizeof(text));
        if (asprintf(why, "no Kerberos keys for --krb5-service %s in %s: %s", name,
                     s->cfg.keytab ? s->cfg.keytab : getenv("KRB5_KTNAME") ?
                     getenv("KRB5_KTNAME") : "the default keytab", text) < 0)
            *why = NULL;
    }
    if (gname != GSS_C_NO_NAME)
        gss_release_name(&minor, &gname);
    if (major != GSS_S_COMPLETE)
        return -1;
    service_cred = cred;        /* for libtirpc, from now on (see above) */
    if (!rpc_gss_set_svc_name((char *)name, "kerberos_v5", 0, s->cfg.program, IMGPROC_V1)) {
        if (asprintf(why, "libtirpc refused the Kerberos service name %s", name) < 0)
            *why = NULL;
        return -1;
    }
    return 0;
}

/* The RPCSEC_GSS control procedure a call's credential names (RPCSEC_GSS_INIT...), or -1. */
static int
control_of(const struct rpc_msg *msg)
{
    const struct opaque_auth *oa = &msg->rm_call.cb_cred;
    struct rpc_gss_cred gc;
    XDR x;
    int proc = -1;

    memset(&gc, 0, sizeof(gc));
    xdrmem_create(&x, oa->oa_base, oa->oa_length, XDR_DECODE);
    if (xdr_rpc_gss_cred(&x, &gc))
        proc = (int)gc.gc_proc;
    xdr_free(PROTO_XDR(xdr_rpc_gss_cred), (caddr_t)&gc);
    return proc;
}

/*
 * The largest Kerberos call body accepted: a client's libtirpc signs or
 * encrypts a call whole in its 256 KiB record buffer, so nothing honest is
 * larger.  libtirpc 1.3.3 itself reads a body of any length (its bound is
 * 4 GiB) before imgprocd's own checks see the arguments inside.
 */
#define KRB5_MAX_BODY (256 * 1024 + 4096)

/* The transport's stream, seen through a bound on counted bytes. */
typedef struct body_limit {
    XDR x;                      /* what libtirpc's unwrap reads */
    XDR *in;                    /* the transport's stream */
} body_limit;

static bool_t
limit_getlong(XDR *x, long *v)
{
    return XDR_GETLONG(((body_limit *)x->x_private)->in, v);
}

static bool_t
limit_getbytes(XDR *x, char *p, u_int n)
{
    /* xdr_bytes has reserved n bytes of address space, not touched them. */
    return n <= KRB5_MAX_BODY && XDR_GETBYTES(((body_limit *)x->x_private)->in, p, n);
}

static u_int
limit_getpos(XDR *x)
{
    return XDR_GETPOS(((body_limit *)x->x_private)->in);
}

static bool_t
limit_no_putlong(XDR *x, const long *v)
{
    (void)x;
    (void)v;
    return FALSE;
}

static bool_t
limit_no_putbytes(XDR *x, const char *p, u_int n)
{
    (void)x;
    (void)p;
    (void)n;
    return FALSE;
}

static bool_t
limit_no_setpos(XDR *x, u_int pos)
{
    (void)x;
    (void)pos;
    return FALSE;
}

static int32_t *
limit_no_inline(XDR *x, u_int n)
{
    (void)x;
    (void)n;
    return NULL;
}

static void
limit_destroy(XDR *x)
{
    (void)x;
}

static bool_t
limit_control(XDR *x, int req, void *info)
{
    XDR *in = ((body_limit *)x->x_private)->in;

    return in->x_ops->x_control ? in->x_ops->x_control(in, req, info) : FALSE;
}

static const struct xdr_ops limit_ops = {
    limit_getlong, limit_no_putlong, limit_getbytes, limit_no_putbytes, limit_getpos,
    limit_no_setpos, limit_no_inline, limit_destroy, limit_control,
};

/* libtirpc's RPCSEC_GSS handle operations, and ours: its unwrap behind the bound. */
static const struct svc_auth_ops *gss_ops;
static struct svc_auth_ops bounded_ops;
static pthread_once_t bounded_once = PTHREAD_ONCE_INIT;

static bool_t
bounded_unwrap(SVCAUTH *auth, XDR *xdrs, xdrproc_t decode, caddr_t arg)
{
    body_limit b;

    b.in = xdrs;
    b.x.x_op = XDR_DECODE;
    b.x.x_ops = &limit_ops;
    b.x.x_private = &b;
    return gss_ops->svc_ah_unwrap(auth, &b.x, decode, arg);
}

static void
bounded_ops_init(void)
{
    bounded_ops = *gss_ops;
    bounded_ops.svc_ah_unwrap = bounded_unwrap;
}

enum auth_stat
kerberos_authenticate(struct svc_req *req, struct rpc_msg *msg, krb5_conn *kc, int *answered)
{
    SVCAUTH *a = &SVC_XP_AUTH(req->rq_xprt);
    int control = control_of(msg);
    bool_t no_dispatch = FALSE;
    enum auth_stat st;

    *answered = 0;
    /* libtirpc looks the connection's context up (or makes one) whatever
     * comes of the call, and that counts as a use. */
    __atomic_store_n(&kc->used_ms, (long long)srv_now_ms(), __ATOMIC_RELAXED);
    kc->used_wall = time(NULL);
    st = _gss_authenticate(req, msg, &no_dispatch);
    if (a->svc_ah_ops != svc_auth_none.svc_ah_ops && a->svc_ah_private) {
        /* Kept: a later AUTH_SYS call on this connection resets the
         * handle, but the context lives on until it is destroyed. */
        kc->auth = *a;
        kc->held = 1;
    } else if (control == RPCSEC_GSS_DESTROY && st == AUTH_OK) {
        kc->held = 0;           /* libtirpc destroyed it */
    }
    if (no_dispatch) {
        /* A context being made (libtirpc replied, or failed to), or a call
         * replayed or outside the window: RFC 2203 drops those unanswered. */
        *answered = 1;
        return AUTH_OK;
    }
    if (st != AUTH_OK)
        return st;
    if (control == RPCSEC_GSS_DESTROY) {
        /* The context is gone (rpc_gss_getcred on it would crash): the
         * reply is void, and nothing is dispatched. */
        svc_sendreply(req->rq_xprt, PROTO_XDR(xdr_void), NULL);
        *answered = 1;
        return AUTH_OK;
    }
    /* The call's body is read through a bound (KRB5_MAX_BODY). */
    if (a->svc_ah_ops != svc_auth_none.svc_ah_ops) {
        if (!gss_ops)
            gss_ops = a->svc_ah_ops;
        pthread_once(&bounded_once, bounded_ops_init);
        if (a->svc_ah_ops == gss_ops)
            a->svc_ah_ops = &bounded_ops;
    }
    return AUTH_OK;
}

int
kerberos_caller(struct svc_req *req, char *principal, size_t len, int *privacy)
{
    rpc_gss_rawcred_t *raw = NULL;

    if (!rpc_gss_getcred(req, &raw, NULL, NULL) || !raw || !raw->client_principal)
        return -1;
    snprintf(principal, len, "%.*s", (int)raw->client_principal->len,
             raw->client_principal->name);
    *privacy = raw->service == rpcsec_gss_svc_privacy;
    return raw->service == rpcsec_gss_svc_none ? 1 : 0;
}

/*
 * libtirpc frees a context unused for 300 s itself (svcauth_gss_cache's
 * time_to_die, by the wall clock), from whichever thread looks next;
 * destroying it after that would free it twice.  Kept well clear of it.
 */
#define LIBTIRPC_CTX_TTL 300
#define SAFE_SECONDS (LIBTIRPC_CTX_TTL - 20)
_Static_assert(KRB5_IDLE_SECONDS < SAFE_SECONDS && KRB5_CALL_SECONDS < SAFE_SECONDS,
               "Kerberos connections must end before libtirpc forgets their context");

void
kerberos_connection_done(SVCXPRT *xprt, krb5_conn *kc)
{
    SVCAUTH *a = &SVC_XP_AUTH(xprt);

    /* libtirpc keys its contexts by the transport's address, and SVC_DESTROY
     * leaves them: the next connection given that address would inherit
     * this one's.  So it is destroyed here, by the handle its last Kerberos
     * call left (a later AUTH_SYS call resets the transport's), while
     * libtirpc surely keeps it, by both clocks. */
    if (!kc->held || (long long)srv_now_ms() - kc->used_ms >= SAFE_SECONDS * 1000LL ||
        time(NULL) - kc->used_wall >= SAFE_SECONDS || time(NULL) < kc->used_wall)
        return;
    *a = kc->auth;
    SVCAUTH_DESTROY(a);
    a->svc_ah_ops = svc_auth_none.svc_ah_ops;
    a->svc_ah_private = NULL;
    kc->held = 0;
}

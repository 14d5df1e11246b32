/* rpc.c - the gateway's RPC side: a connection to imgprocd per civetweb thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"
#include "web.h"

/* This thread's connection; civetweb's threads live as long as the server. */
static __thread CLIENT *conn;
/* The AUTH_SYS machine name its calls carry now ("": this machine's own). */
static __thread char conn_who[IP_MAX_NAME];

/*
 * Calls carry AUTH_SYS: the gateway's own uid and gid (on imgprocd's local
 * socket the kernel vouches for them), and as machine name who (a web
 * session's label, so that imgprocd keeps each session's tasks apart), or
 * this machine's own name when who is NULL.  Over TCP from an untrusted
 * address imgprocd makes the same claim an anonymous token, which keeps
 * sessions apart just the same.
 */
static void
speak_as(const char *who)
{
    AUTH *sys;

    if (!who)
        who = "";
    if (conn->cl_auth && conn->cl_auth->ah_cred.oa_flavor == AUTH_SYS &&
        strcmp(conn_who, who) == 0)
        return;
    /* A session's owner is UID@web-<digest>, UID the gateway's: a session
     * outlives a restart of the gateway as the same user. */
    sys = *who ? authunix_create((char *)who, getuid(), getgid(), 0, NULL)
               : authunix_create_default();
    if (!sys)
        return;
    if (conn->cl_auth)
        auth_destroy(conn->cl_auth);
    conn->cl_auth = sys;
    snprintf(conn_who, sizeof(conn_who), "%s", who);
}

/* The connection, made if there is none; NULL with why (malloc'ed). */
static CLIENT *
connection(const web_config *cfg, int *fresh, char **why)
{
    static int noted;           /* the notice is said once, not by every thread */
    /* The transport the first connection found ("local" or "tcp"), kept
     * for every later one: a session's owner label depends on it, so a
     * thread falling back to TCP after a restart would lose its tasks. */
    static const char *chosen;
    const char *use = __atomic_load_n(&chosen, __ATOMIC_ACQUIRE);

    *why = NULL;
    *fresh = !conn;
    if (conn)
        return conn;
    conn = proto_connect(cfg->host, cfg->port, cfg->program, use ? use : "auto", cfg->timeout,
                         why);
    if (conn && !use) {
        const char *found = strcmp(proto_transport(conn), "local") == 0 ? "local" : "tcp";
        __atomic_compare_exchange_n(&chosen, &use, found, 0, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE);
    }
    conn_who[0] = '\0';
    if (conn && *why) {
        if (!__atomic_exchange_n(&noted, 1, __ATOMIC_RELAXED))
            fprintf(stderr, "imgproc-web: note: %s\n", *why);
        free(*why);
        *why = NULL;
    }
    return conn;
}

static void
drop(void)
{
    if (conn->cl_auth)
        auth_destroy(conn->cl_auth);
    clnt_destroy(conn);
    conn = NULL;
}

void
web_rpc_release(void)
{
    if (conn)
        drop();
}

/*
 * An idle connection may have been closed by imgprocd (its idle timeout, or
 * its cap on connections from one address): a call that fails on one that
 * was not new is made once more on a new one.  Only for calls that may be
 * repeated (call's own say).
 */
int
web_call(const web_config *cfg, const char *who, const char *what, web_call_fn call, void *ctx,
         int repeatable, char **why)
{
    for (int attempt = 0;; attempt++) {
        int fresh;
        CLIENT *c = connection(cfg, &fresh, why);
        const char *e;

        if (!c) {
            char *reason = *why;
            if (asprintf(why, "imgprocd: %s", reason ? reason : "cannot reach the server") < 0)
                *why = NULL;
            free(reason);
            return -1;
        }
        speak_as(who);
        if (call(c, ctx) == RPC_SUCCESS)
            return 0;
        e = clnt_sperror(c, "");
        while (*e == ':' || *e == ' ')
            e++;
        if (asprintf(why, "imgprocd: %s failed: %s", what, e) < 0)
            *why = NULL;
        drop();
        if (fresh || !repeatable || attempt > 0)
            return -1;
        free(*why);
    }
}

/* One procedure's call, for web_call. */
typedef struct proc_call {
    rpcproc_t proc;
    xdrproc_t xargs, xres;
    void *args, *res;
    unsigned timeout;
} proc_call;

static enum clnt_stat
call_proc(CLIENT *c, void *ctx)
{
    proc_call *k = ctx;
    struct timeval tv = { (time_t)k->timeout, 0 };

    xdr_free(k->xres, k->res);          /* a failed try's, or nothing (zeroed) */
    return clnt_call(c, k->proc, k->xargs, k->args, k->xres, k->res, tv);
}

int
web_rpc_call(const web_config *cfg, const char *who, const char *what, rpcproc_t proc,
             xdrproc_t xargs, void *args, xdrproc_t xres, void *res, int repeatable, char **why)
{
    proc_call k = { proc, xargs, xres, args, res, cfg->timeout };

    return web_call(cfg, who, what, call_proc, &k, repeatable, why);
}

/* conn.c - reaching the server (common/connect.c), as whom (AUTH_SYS, none, Kerberos). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gssapi/gssapi.h>
#include <rpc/rpcsec_gss.h>

#include "client.h"
#include "proto.h"

int
cli_auth_krb5(const char *mode)
{
    return strcmp(mode, "krb5") == 0 || strcmp(mode, "krb5i") == 0 ||
           strcmp(mode, "krb5p") == 0;
}

/* "sys": our uid and host; "none"; "UID[@HOST]": any identity, to show it is only a claim. */
static AUTH *
make_sys_auth(const char *mode)
{
    char host[256];
    const char *at;
    uid_t uid;
    gid_t gid;

    if (!mode || strcmp(mode, "sys") == 0)
        return authunix_create_default();
    if (strcmp(mode, "none") == 0)
        return authnone_create();
    at = strchr(mode, '@');
    if (at)
        snprintf(host, sizeof(host), "%s", at + 1);
    else if (gethostname(host, sizeof(host)) < 0)
        snprintf(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = '\0';
    /* Our own uid claimed with our own group; any other with gid = uid. */
    uid = (uid_t)strtoul(mode, NULL, 10);
    gid = uid == getuid() ? getgid() : (gid_t)uid;
    return authunix_create(host, uid, gid, 0, NULL);
}

/*
 * Kerberos (RPCSEC_GSS): a context with the server's service, made with the
 * ticket in our credential cache (kinit).  krb5p encrypts every call, krb5
 * and krb5i sign them.  NULL with why when it cannot.
 */
static AUTH *
make_krb5_auth(CLIENT *clnt, const cli_opts *o, const char *host, char **why)
{
    char service[300], words[512];
    rpc_gss_options_ret_t ret;
    AUTH *a;

    if (o->krb5_service)
        snprintf(service, sizeof(service), "%s", o->krb5_service);
    else
        snprintf(service, sizeof(service), "imgproc@%s", host);
    memset(&ret, 0, sizeof(ret));
    a = rpc_gss_seccreate(clnt, service, "kerberos_v5",
                          strcmp(o->auth, "krb5p") == 0 ? rpcsec_gss_svc_privacy
                                                        : rpcsec_gss_svc_integrity,
                          NULL, NULL, &ret);
    if (a)
        return a;
    if (ret.major_status == GSS_S_NO_CRED) {
        proto_gss_text(ret.major_status, ret.minor_status, words, sizeof(words));
        snprintf(words + strlen(words), sizeof(words) - strlen(words), " (get a ticket "
                 "first: kinit)");
    } else if (ret.major_status)
        proto_gss_text(ret.major_status, ret.minor_status, words, sizeof(words));
    else
        snprintf(words, sizeof(words), "the server refused the context (%s; is it "
                 "started with --krb5-service %s?)", cli_rpc_error(clnt), service);
    if (asprintf(why, "cannot authenticate with Kerberos to %s: %s", service, words) < 0)
        *why = NULL;
    return NULL;
}

/* A connection to host, as o says: transport, program, who we are. */
static CLIENT *
connect_host(const cli_opts *o, const char *host, char **why)
{
    static int noted;           /* the notice is said once, for many connections */
    CLIENT *clnt = proto_connect(host, o->port, o->program, o->proto, o->timeout, why);
    AUTH *a;

    if (!clnt)
        return NULL;
    if (*why && !__atomic_exchange_n(&noted, 1, __ATOMIC_RELAXED))
        fprintf(stderr, "imgproc: note: %s\n", *why);
    free(*why);
    *why = NULL;
    /* AUTH_SYS says who we claim to be (uid, machine): proof only on the
     * local socket, where the server checks it with the kernel. */
    a = cli_auth_krb5(o->auth) ? make_krb5_auth(clnt, o, host, why) : make_sys_auth(o->auth);
    if (!a && cli_auth_krb5(o->auth)) {
        clnt_destroy(clnt);
        return NULL;
    }
    auth_destroy(clnt->cl_auth);
    clnt->cl_auth = a ? a : authnone_create();
    return clnt;
}

/*
 * What a server is doing, from its SERVER_INFO: calls in progress (less
 * this one), tasks running and queued, per worker.  Not its connections:
 * other clients' probes, like this one, come and go.  -1 when it does not say.
 */
static double
load_of(CLIENT *clnt)
{
    ip_server_info_res r;
    double load = -1;

    if (proto_server_info(clnt, &r, (struct timeval){ 10, 0 }) == RPC_SUCCESS &&
        r.status == IP_OK) {
        const ip_server_info *si = &r.ip_server_info_res_u.info.info;
        const ip_load *l = &si->load;
        unsigned workers = si->limits.workers ? si->limits.workers : 1;
        load = (double)((l->calls_in_progress ? l->calls_in_progress - 1 : 0) +
                        l->tasks_running + l->tasks_queued) / workers;
    }
    xdr_free((xdrproc_t)xdr_ip_server_info_res, (char *)&r);
    return load;
}

/*
 * -H a,b,c: several servers.  With spread, the connection goes to the one
 * that reports the least load; hosts at the same load take turns (by
 * process and connection), so parallel connections go to different hosts.
 * Without, to the first that answers: each server keeps its own task queue,
 * so task commands keep to one host while it answers.  A host that does not
 * answer is passed over.
 */
static CLIENT *
connect_hosts(const cli_opts *o, int spread, char **why)
{
    static unsigned turn;       /* whose turn at equal load */
    char *list = strdup(o->host), *save = NULL, *hosts[CLI_MAX_HOSTS];
    unsigned n = 0, first;
    CLIENT *best = NULL;
    double best_load = 0;

    if (!list) {
        *why = strdup("out of memory");
        return NULL;
    }
    for (char *h = strtok_r(list, ",", &save); h && n < CLI_MAX_HOSTS; h = strtok_r(NULL, ",", &save))
        hosts[n++] = h;
    if (n == 0) {
        if (asprintf(why, "-H '%s' names no host", o->host) < 0)
            *why = NULL;
        free(list);
        return NULL;
    }
    first = spread ? (__atomic_fetch_add(&turn, 1, __ATOMIC_RELAXED) + (unsigned)getpid()) % n : 0;
    for (unsigned k = 0; k < n; k++) {
        const char *h = hosts[(first + k) % n];
        char *w = NULL;
        CLIENT *c = connect_host(o, h, &w);
        double load;
        if (!c) {
            free(*why);
            *why = w;
            continue;
        }
        if (!spread) {
            best = c;
            break;
        }
        if ((load = load_of(c)) < 0) {
            if (asprintf(&w, "%s does not say its load: %s", h, cli_rpc_error(c)) < 0)
                w = NULL;
            free(*why);
            *why = w;
            cli_disconnect(c);
            continue;
        }
        /* Compared in whole busy workers: a host with one free is as good
         * as an idle one, and the turn then decides, not a probe's noise. */
        load = (double)(long)load;
        if (best && load >= best_load) {
            cli_disconnect(c);
            continue;
        }
        cli_disconnect(best);
        best = c;
        best_load = load;
    }
    if (best) {
        free(*why);
        *why = NULL;
    } else {
        char *last = *why;
        if (asprintf(why, "none of %s answered%s%s", o->host, last ? "; the last: " : "",
                     last ? last : "") < 0)
            *why = NULL;
        free(last);
    }
    free(list);
    return best;
}

static CLIENT *
connect_as(const cli_opts *o, int spread, char **why)
{
    *why = NULL;
    if (cli_auth_krb5(o->auth) && strcmp(o->proto, "udp") == 0) {
        /* The server refuses it: a context lives on one connection. */
        if (asprintf(why, "Kerberos goes over the local socket or TCP, not UDP (drop -T udp)")
            < 0)
            *why = NULL;
        return NULL;
    }
    if (strchr(o->host, ','))
        return connect_hosts(o, spread, why);
    return connect_host(o, o->host, why);
}

CLIENT *
cli_connect(const cli_opts *o, char **why)
{
    return connect_as(o, 0, why);
}

CLIENT *
cli_connect_spread(const cli_opts *o, char **why)
{
    return connect_as(o, 1, why);
}

/* clnt, or NULL having said why (the CLI's top level only). */
static CLIENT *
or_say(CLIENT *clnt, char *why)
{
    if (!clnt)
        cli_error("%s\n", why ? why : "cannot reach the server");
    free(why);
    return clnt;
}

CLIENT *
cli_connect_or_say(const cli_opts *o)
{
    char *why = NULL;
    CLIENT *clnt = cli_connect(o, &why);

    return or_say(clnt, why);
}

CLIENT *
cli_connect_spread_or_say(const cli_opts *o)
{
    char *why = NULL;
    CLIENT *clnt = cli_connect_spread(o, &why);

    return or_say(clnt, why);
}

int
cli_require_tcp(const cli_opts *o, const char *what)
{
    if (strcmp(o->proto, "udp") != 0)
        return 0;
    cli_error("%s goes over TCP only: over UDP imgprocd serves ping, info "
              "and the task queries, and a datagram holds %d bytes at most; drop -T udp "
              "(TCP, the default, carries any size)\n", what, UDPMSGSIZE);
    return -1;
}

const char *
cli_rpc_error(CLIENT *clnt)
{
    const char *e = clnt_sperror(clnt, "");

    while (*e == ':' || *e == ' ')
        e++;
    return e;
}

void
cli_disconnect(CLIENT *clnt)
{
    if (!clnt)
        return;
    if (clnt->cl_auth)
        auth_destroy(clnt->cl_auth);
    clnt_destroy(clnt);
}

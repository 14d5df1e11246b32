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
make_krb5_auth(CLIENT *clnt, const cli_opts *o, char **why)
{
    char service[300], words[512];
    rpc_gss_options_ret_t ret;
    AUTH *a;

    if (o->krb5_service)
        snprintf(service, sizeof(service), "%s", o->krb5_service);
    else
        snprintf(service, sizeof(service), "imgproc@%s", o->host);
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

CLIENT *
cli_connect(const cli_opts *o, char **why)
{
    if (cli_auth_krb5(o->auth) && strcmp(o->proto, "udp") == 0) {
        /* The server refuses it: a context lives on one connection. */
        if (asprintf(why, "Kerberos goes over the local socket or TCP, not UDP (drop -T udp)")
            < 0)
            *why = NULL;
        return NULL;
    }
    static int noted;           /* the notice is said once, for many connections */
    CLIENT *clnt = proto_connect(o->host, o->port, o->program, o->proto, o->timeout, why);
    AUTH *a;

    if (!clnt)
        return NULL;
    if (*why && !__atomic_exchange_n(&noted, 1, __ATOMIC_RELAXED))
        fprintf(stderr, "imgproc: note: %s\n", *why);
    free(*why);
    *why = NULL;
    /* AUTH_SYS says who we claim to be (uid, machine): proof only on the
     * local socket, where the server checks it with the kernel. */
    a = cli_auth_krb5(o->auth) ? make_krb5_auth(clnt, o, why) : make_sys_auth(o->auth);
    if (!a && cli_auth_krb5(o->auth)) {
        clnt_destroy(clnt);
        return NULL;
    }
    auth_destroy(clnt->cl_auth);
    clnt->cl_auth = a ? a : authnone_create();
    return clnt;
}

CLIENT *
cli_connect_or_say(const cli_opts *o)
{
    char *why = NULL;
    CLIENT *clnt = cli_connect(o, &why);

    if (!clnt) {
        cli_error("%s\n", why ? why : "cannot reach the server");
        free(why);
    }
    return clnt;
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

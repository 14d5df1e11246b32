/* conn.c - reaching the server (common/connect.c), as whom (AUTH_SYS or none). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "proto.h"

/* "sys": our uid and host; "none"; "UID[@HOST]": any identity, to show it is only a claim. */
static AUTH *
make_auth(const char *mode)
{
    char host[256];
    const char *at;
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
    gid = (gid_t)strtoul(mode, NULL, 10);
    return authunix_create(host, (uid_t)strtoul(mode, NULL, 10), gid, 0, NULL);
}

CLIENT *
cli_connect(const cli_opts *o, char **why)
{
    CLIENT *clnt = proto_connect(o->host, o->port, o->program, o->proto, o->timeout, why);

    if (!clnt)
        return NULL;
    /* AUTH_SYS: says who we claim to be (uid, machine).  A label, not proof. */
    auth_destroy(clnt->cl_auth);
    clnt->cl_auth = make_auth(o->auth);
    if (!clnt->cl_auth)
        clnt->cl_auth = authnone_create();
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

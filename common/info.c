/* info.c - SERVER_INFO from any imgprocd, older ones included. */
#include <string.h>

#include "proto.h"

/*
 * Decodes SERVER_INFO's result when the server may predate fields appended
 * to it (imgproc.x, ip_server_info_all): the record then ends before them,
 * decoding them fails at once, and they are left zero.  Encoding and
 * freeing are the generated routine's.
 */
static bool_t
xdr_server_info_res_any(XDR *x, ip_server_info_res *r)
{
    ip_server_info_all *all = &r->ip_server_info_res_u.info;

    if (x->x_op != XDR_DECODE)
        return xdr_ip_server_info_res(x, r);
    if (!xdr_ip_status(x, &r->status))
        return FALSE;
    if (r->status != IP_OK)
        return xdr_string(x, &r->ip_server_info_res_u.message, IP_MAX_MESSAGE);
    if (!xdr_ip_server_info(x, &all->info))
        return FALSE;
    if (!xdr_ip_guard_limits(x, &all->guard)) {
        memset(&all->guard, 0, sizeof(all->guard));     /* an older server */
        return TRUE;
    }
    if (!xdr_string(x, &all->state_dir, IP_MAX_PATH))
        all->state_dir = NULL;                          /* an older server */
    return TRUE;
}

enum clnt_stat
proto_server_info(CLIENT *c, ip_server_info_res *res, struct timeval timeout)
{
    memset(res, 0, sizeof(*res));
    return clnt_call(c, SERVER_INFO, (xdrproc_t)(void (*)(void))xdr_void, NULL,
                     (xdrproc_t)(void (*)(void))xdr_server_info_res_any, (caddr_t)res, timeout);
}

/* gsstext.c - what GSS-API says of a failure, in words: for the server's
 * start-up checks and the client's Kerberos errors alike. */
#include <stdio.h>

#include <gssapi/gssapi.h>

#include "proto.h"

void
proto_gss_text(unsigned major, unsigned minor, char *buf, size_t len)
{
    OM_uint32 min, ctx;
    gss_buffer_desc msg;
    size_t n = 0;

    buf[0] = '\0';
    /* The general status, then the mechanism's (Kerberos') own, if any. */
    for (int which = 0; which < 2; which++) {
        ctx = 0;
        if (which && !minor)
            break;
        do {
            if (gss_display_status(&min, which ? minor : major,
                                   which ? GSS_C_MECH_CODE : GSS_C_GSS_CODE, GSS_C_NO_OID,
                                   &ctx, &msg) != GSS_S_COMPLETE)
                break;
            if (n < len && msg.length)
                n += (size_t)snprintf(buf + n, len - n, "%s%.*s", n ? ": " : "",
                                      (int)msg.length, (char *)msg.value);
            gss_release_buffer(&min, &msg);
        } while (ctx);
    }
}

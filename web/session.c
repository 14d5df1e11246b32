/*
 * session.c - who a web caller is: a session token, kept by the browser in
 * a cookie (or sent as "Authorization: Bearer TOKEN" by a program).  The
 * gateway keeps nothing: a session's tasks are imgprocd's tasks, made with
 * AUTH_SYS naming the session's label as the machine, so imgprocd itself
 * keeps each session's tasks apart (IP_EDENIED to others) and a session
 * outlives a restart of the gateway.  The label is a digest of the token,
 * so imgprocd's records never hold a token a caller could reuse.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include <civetweb.h>

#include "proto.h"
#include "web.h"

#define COOKIE "imgproc_session"

/* Is s a token as web_session makes them: WEB_TOKEN_LEN hex digits (either case)? */
static int
valid_token(const char *s, size_t len)
{
    if (len != WEB_TOKEN_LEN)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!isxdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

int
web_session(const struct mg_connection *c, int make, web_caller *s)
{
    const char *auth = mg_get_header(c, "Authorization");
    const char *cookies = mg_get_header(c, "Cookie");
    unsigned char raw[WEB_TOKEN_LEN / 2];
    char digest[65];
    int n;

    memset(s, 0, sizeof(*s));
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0) {
        /* A program that names its session must name one, not get a new one. */
        if (!valid_token(auth + 7, strlen(auth + 7)))
            return -2;
        memcpy(s->token, auth + 7, WEB_TOKEN_LEN);
    } else if (cookies && (n = mg_get_cookie(cookies, COOKIE, s->token, sizeof(s->token))) > 0 &&
               valid_token(s->token, (size_t)n)) {
        /* the browser's */
    } else if (make) {
        if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
            return -1;
        for (size_t i = 0; i < sizeof(raw); i++)
            snprintf(s->token + 2 * i, 3, "%02x", raw[i]);
        s->fresh = 1;
    } else {
        s->token[0] = '\0';
        return -1;
    }
    for (char *p = s->token; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if (proto_sha256_hex(s->token, WEB_TOKEN_LEN, digest) < 0)
        return -1;
    snprintf(s->who, sizeof(s->who), "web-%.32s", digest);
    return 0;
}

void
web_session_cookie(const web_caller *s, char *buf, size_t len)
{
    /* HttpOnly: no script reads it; SameSite=Strict: no other site's page
     * makes the browser send it (no cross-site requests in its name). */
    if (s->fresh)
        snprintf(buf, len, "Set-Cookie: " COOKIE "=%s; Path=/; Max-Age=2592000; HttpOnly; "
                 "SameSite=Strict\r\n", s->token);
    else
        buf[0] = '\0';
}

/* 401 for a bearer token that is not a session's. */
int
web_bad_token(struct mg_connection *c)
{
    return web_problem(c, 401, "unauthenticated", "Authorization: Bearer takes a session "
                       "token: %d hex digits", WEB_TOKEN_LEN);
}

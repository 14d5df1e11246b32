/* http.c - the gateway's HTTP manners: problem+json errors, replies, bodies, queries. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <civetweb.h>

#include "proto.h"
#include "web.h"

/*
 * Sent with every answer: nothing but this gateway's own files and images
 * (and the page's blob: thumbnails) may load into its page, no other site
 * may frame it, and no type is guessed from content.
 */
#define SAFE_HEADERS \
    "Content-Security-Policy: default-src 'self'; img-src 'self' blob:; " \
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'\r\n" \
    "X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n"

/* The HTTP status for each service status: what the caller should do about it. */
int
web_http_status(ip_status st)
{
    switch (st) {
    case IP_OK: return 200;
    case IP_EINVAL: return 400;         /* fix the request */
    case IP_EDENIED: return 403;
    case IP_ENOTFOUND: return 404;
    case IP_ESTATE: return 409;         /* not now: the task is in another state */
    case IP_ETOOBIG: return 413;
    case IP_EFORMAT: return 415;        /* not an image the server reads */
    case IP_ECORRUPT: return 422;       /* an image, but damaged */
    case IP_EBUSY: return 503;          /* try again later */
    case IP_EINTERNAL: break;
    }
    return 500;
}

static const char *
reason_phrase(int http)
{
    switch (http) {
    case 200: return "OK";
    case 201: return "Created";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    default: return "Internal Server Error";
    }
}

/*
 * An error as application/problem+json (RFC 9457): type names the service's
 * status ("invalid-argument"; "gateway" when imgprocd could not be asked),
 * status is the HTTP one, detail says what went wrong.  Returns the HTTP
 * status, as civetweb's handlers do.
 */
int
web_problem(struct mg_connection *c, int http, const char *name, const char *fmt, ...)
{
    char detail[IP_MAX_MESSAGE + 256], *body = NULL;
    size_t len = 0;
    va_list ap;
    FILE *f;

    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    if (!(f = open_memstream(&body, &len))) {
        mg_send_http_error(c, 500, "out of memory");
        return 500;
    }
    fprintf(f, "{\"type\": \"/v1/problems/%s\", \"title\": ", name);
    proto_json_string(f, name);
    fprintf(f, ", \"status\": %d, \"detail\": ", http);
    proto_json_string(f, detail);
    fprintf(f, "}\n");
    fclose(f);
    web_metrics_answered(http);
    mg_printf(c, "HTTP/1.1 %d %s\r\nContent-Type: application/problem+json\r\n"
              "Content-Length: %zu\r\nCache-Control: no-store\r\n" SAFE_HEADERS "\r\n", http,
              reason_phrase(http), len);
    mg_write(c, body, len);
    free(body);
    return http;
}

/* A refusal from imgprocd, passed on. */
int
web_refused(struct mg_connection *c, ip_status st, const char *message)
{
    return web_problem(c, web_http_status(st), proto_status_name(st), "%s", message ? message : "");
}

/* The call did not go through: the gateway's own failure (502). */
int
web_call_failed(struct mg_connection *c, char *why)
{
    int http = web_problem(c, 502, "gateway", "%s", why ? why : "imgprocd: the call failed");

    free(why);
    return http;
}

int
web_send(struct mg_connection *c, int http, const char *type, const char *headers,
         const void *data, size_t len)
{
    web_metrics_answered(http);
    mg_printf(c, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
              "Cache-Control: no-store\r\n" SAFE_HEADERS "%s\r\n", http, reason_phrase(http),
              type, len, headers ? headers : "");
    mg_write(c, data, len);
    return http;
}

int
web_send_ok(struct mg_connection *c, const char *type, const void *data, size_t len)
{
    return web_send(c, 200, type, NULL, data, len);
}

/*
 * The request's body, at most max bytes, into *data (malloc'ed).  0, or the
 * HTTP status of the problem said (413 when larger).
 */
int
web_read_body(struct mg_connection *c, unsigned long long max, char **data, size_t *len)
{
    const struct mg_request_info *ri = mg_get_request_info(c);
    size_t cap = ri->content_length > 0 ? (size_t)ri->content_length : 1 << 16, got = 0;
    char *buf;

    *data = NULL;
    *len = 0;
    if (ri->content_length > 0 && (unsigned long long)ri->content_length > max)
        return web_problem(c, 413, "too-large", "the body is %lld bytes; this gateway takes %llu "
                       "at most (--max-body)", ri->content_length, max);
    if (!(buf = malloc(cap + 1)))
        return web_problem(c, 500, "internal-error", "out of memory");
    for (;;) {
        int n;
        if (got == cap && ri->content_length >= 0 && got == (size_t)ri->content_length)
            break;              /* all of it, as declared */
        if (got == cap) {
            /* Chunked: grow, up to one byte over max to learn that it is over. */
            size_t grow = cap * 2 > max + 1 ? (size_t)max + 1 : cap * 2;
            char *more = grow <= cap ? NULL : realloc(buf, grow + 1);
            if (!more) {
                free(buf);
                return web_problem(c, 413, "too-large", "the body is over %llu bytes, which this "
                               "gateway takes at most (--max-body)", max);
            }
            buf = more;
            cap = grow;
        }
        n = mg_read(c, buf + got, cap - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got > max) {
        free(buf);
        return web_problem(c, 413, "too-large", "the body is over %llu bytes, which this "
                           "gateway takes at most (--max-body)", max);
    }
    *data = buf;
    *len = got;
    return 0;
}

int
web_query_steps(const char *q, ip_step *steps, unsigned *nsteps, char *why, size_t whylen)
{
    char text[4096];

    if (!q || mg_get_var(q, strlen(q), "steps", text, sizeof(text)) <= 0)
        return 1;
    /* A '+' left unencoded in a query is a space; no step has a space. */
    for (char *p = text; *p; p++)
        if (*p == ' ')
            *p = '+';
    if (proto_pipeline_parse(text, steps, IP_MAX_STEPS, nsteps, why, whylen))
        return -1;
    for (unsigned i = 0; i < *nsteps; i++)
        if (proto_step_check(&steps[i], why, whylen))
            return -1;
    return 0;
}

/* ?steps=...&format=...&quality=...&strip=1 into steps and out.  0, or the HTTP status said. */
int
web_parse_query(struct mg_connection *c, ip_step *steps, unsigned *nsteps, ip_output *out)
{
    const char *q = mg_get_request_info(c)->query_string;
    size_t qlen = q ? strlen(q) : 0;
    char text[4096], why[IP_MAX_MESSAGE];
    unsigned long v;

    memset(out, 0, sizeof(*out));
    switch (web_query_steps(q, steps, nsteps, why, sizeof(why))) {
    case 1:
        return web_problem(c, 400, "invalid-argument", "steps is missing: ?steps=grayscale,"
                           "blur=2 (see GET /v1/info for the operations)");
    case -1:
        return web_problem(c, 400, "invalid-argument", "steps: %s", why);
    }
    if (mg_get_var(q, qlen, "format", text, sizeof(text)) > 0 &&
        proto_format_parse(text, &out->format)) {
        char names[128];
        proto_format_names(names, sizeof(names));
        return web_problem(c, 400, "invalid-argument", "format '%s': one of %s", text, names);
    }
    if (mg_get_var(q, qlen, "quality", text, sizeof(text)) > 0) {
        if (proto_parse_uint(text, 100, &v) || v == 0)
            return web_problem(c, 400, "invalid-argument", "quality '%s': 1..100", text);
        out->quality = (int)v;
    }
    if (mg_get_var(q, qlen, "strip", text, sizeof(text)) > 0) {
        if (strcmp(text, "1") == 0 || strcmp(text, "true") == 0)
            out->strip = TRUE;
        else if (strcmp(text, "0") != 0 && strcmp(text, "false") != 0)
            return web_problem(c, 400, "invalid-argument", "strip '%s': 1, true, 0 or false",
                               text);
    }
    return 0;
}


/* mg_handle_form_request's state: the file being read, what came before. */
typedef struct form_state {
    struct mg_connection *conn;
    const web_config *lim;
    web_image_fn each;          /* told of each file as it ends */
    void *ctx;
    char name[256];             /* the file's name at the caller, "" when none */
    char *data;                 /* its bytes so far (malloc'ed) */
    size_t len, cap;
    unsigned long long total;   /* bytes of every file so far */
    unsigned files;             /* files found so far */
    int failed;                 /* the HTTP status to answer (or -1: answered), or 0 */
    const char *problem;        /* ... its problem's name */
    char detail[256];           /* ... and detail, said once the files are undone */
    int open;                   /* a file is being read */
} form_state;

/* The request is refused: said once what came before is undone (web_read_images). */
static void __attribute__((format(printf, 4, 5)))
form_fail(form_state *f, int http, const char *name, const char *fmt, ...)
{
    va_list ap;

    f->failed = http;
    f->problem = name;
    va_start(ap, fmt);
    vsnprintf(f->detail, sizeof(f->detail), fmt, ap);
    va_end(ap);
}

/* The file being read has ended: hand it on. */
static void
form_file_end(form_state *f)
{
    if (!f->open)
        return;
    f->open = 0;
    if (!f->failed && f->each(f->name, f->data, f->len, f->ctx) < 0)
        f->failed = -1;
    free(f->data);
    f->data = NULL;
    f->len = f->cap = 0;
}

static int
form_found(const char *key, const char *filename, char *path, size_t pathlen, void *user)
{
    form_state *f = user;

    (void)key, (void)path, (void)pathlen;
    form_file_end(f);
    if (f->failed)
        return MG_FORM_FIELD_STORAGE_ABORT;
    if (!filename || !*filename)
        return MG_FORM_FIELD_STORAGE_SKIP;   /* a plain field: the options are the query's */
    if (++f->files > f->lim->max_files) {
        form_fail(f, 413, "too-large", "more than %u files in one request (--max-files)",
                  f->lim->max_files);
        return MG_FORM_FIELD_STORAGE_ABORT;
    }
    snprintf(f->name, sizeof(f->name), "%s", filename);
    f->open = 1;
    return MG_FORM_FIELD_STORAGE_GET;
}

static int
form_get(const char *key, const char *value, size_t len, void *user)
{
    form_state *f = user;

    (void)key;
    if (f->failed || !f->open)
        return MG_FORM_FIELD_HANDLE_ABORT;
    f->total += len;
    if (f->total > f->lim->max_body) {
        form_fail(f, 413, "too-large", "the files are over %llu bytes, which this gateway "
                  "takes at most in one request (--max-body)", f->lim->max_body);
        return MG_FORM_FIELD_HANDLE_ABORT;
    }
    if (f->len + len > f->cap) {
        size_t cap = f->cap ? f->cap : 1 << 16;
        char *more;
        while (cap < f->len + len)
            cap *= 2;
        if (!(more = realloc(f->data, cap))) {
            form_fail(f, 500, "internal-error", "out of memory");
            return MG_FORM_FIELD_HANDLE_ABORT;
        }
        f->data = more;
        f->cap = cap;
    }
    memcpy(f->data + f->len, value, len);
    f->len += len;
    return MG_FORM_FIELD_HANDLE_GET;
}

/*
 * Each image of the request, as each file of a multipart/form-data body (a
 * browser's form, curl -F), or the whole body when it is anything else.
 * Files are handed on as each one ends, while the rest still arrives.
 * each returns 0 to go on, or -1 having answered the request itself.  When
 * the request is refused part way (a file too many, too large), undo (if
 * not NULL) is called before the refusal is sent.
 * Returns the number of images handed on, or -1 when the request has been
 * answered (the problem said here, or each's answer).
 */
int
web_read_images(struct mg_connection *c, const web_config *lim, web_image_fn each,
                 void (*undo)(void *ctx), void *ctx)
{
    const char *type = mg_get_header(c, "Content-Type");
    struct mg_form_data_handler h;
    form_state f;
    char *body;
    size_t len;
    int http;

    if (!type || strncasecmp(type, "multipart/form-data", 19) != 0) {
        if (web_read_body(c, lim->max_body, &body, &len) != 0)
            return -1;
        http = each(NULL, body, len, ctx);
        free(body);
        return http < 0 ? -1 : 1;
    }
    memset(&f, 0, sizeof(f));
    f.conn = c;
    f.lim = lim;
    f.each = each;
    f.ctx = ctx;
    memset(&h, 0, sizeof(h));
    h.field_found = form_found;
    h.field_get = form_get;
    h.user_data = &f;
    if (mg_handle_form_request(c, &h) < 0 && !f.failed) {
        free(f.data);
        if (undo)
            undo(ctx);
        web_problem(c, 400, "invalid-argument", "the multipart body is malformed");
        return -1;
    }
    form_file_end(&f);
    free(f.data);
    if (f.failed > 0) {
        if (undo)
            undo(ctx);
        web_problem(c, f.failed, f.problem, "%s", f.detail);
    }
    if (f.failed)
        return -1;
    if (f.files == 0) {
        web_problem(c, 400, "invalid-argument", "the form holds no file: send the images as "
                    "file fields");
        return -1;
    }
    return (int)f.files;
}

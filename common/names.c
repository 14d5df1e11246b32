/* names.c - names of statuses and formats, colour parsing, number parsing, JSON strings. */
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto.h"

static const char *const status_names[] = {
    [IP_OK] = "ok",
    [IP_EINVAL] = "invalid-argument",
    [IP_EFORMAT] = "unsupported-format",
    [IP_ECORRUPT] = "corrupt-image",
    [IP_ETOOBIG] = "too-large",
    [IP_ENOTFOUND] = "not-found",
    [IP_EBUSY] = "busy",
    [IP_EINTERNAL] = "internal-error",
    [IP_ESTATE] = "wrong-state",
    [IP_EDENIED] = "denied",
};

const char *
proto_status_name(ip_status st)
{
    if ((unsigned)st < sizeof(status_names) / sizeof(status_names[0]) &&
        status_names[st])
        return status_names[st];
    return "unknown-status";
}

int
proto_status_parse(const char *name, ip_status *out)
{
    for (size_t i = 0; i < sizeof(status_names) / sizeof(status_names[0]); i++)
        if (status_names[i] && strcmp(status_names[i], name) == 0) {
            *out = (ip_status)i;
            return 0;
        }
    return -1;
}

static const char *const task_state_names[] = {
    [IP_TASK_CREATED] = "created",
    [IP_TASK_QUEUED] = "queued",
    [IP_TASK_RUNNING] = "running",
    [IP_TASK_DONE] = "done",
    [IP_TASK_FAILED] = "failed",
    [IP_TASK_CANCELLED] = "cancelled",
};

const char *
proto_task_state_name(ip_task_state st)
{
    if ((unsigned)st < PROTO_NSTATES)
        return task_state_names[st];
    return "unknown";
}

int
proto_task_state_parse(const char *name, ip_task_state *out)
{
    for (unsigned i = 0; i < PROTO_NSTATES; i++)
        if (strcmp(task_state_names[i], name) == 0) {
            *out = (ip_task_state)i;
            return 0;
        }
    return -1;
}

int
proto_task_final(ip_task_state st)
{
    return st == IP_TASK_DONE || st == IP_TASK_FAILED || st == IP_TASK_CANCELLED;
}

static const struct {
    ip_format fmt;              /* protocol value */
    const char *name;           /* canonical name */
    const char *exts[3];        /* extensions, first is preferred */
    const char *mime;           /* its media type (HTTP's Content-Type) */
} formats[] = {
    { IP_FMT_JPEG, "jpeg", { "jpg", "jpeg", "jpe" }, "image/jpeg" },
    { IP_FMT_PNG, "png", { "png" }, "image/png" },
    { IP_FMT_WEBP, "webp", { "webp" }, "image/webp" },
    { IP_FMT_TIFF, "tiff", { "tif", "tiff" }, "image/tiff" },
    { IP_FMT_GIF, "gif", { "gif" }, "image/gif" },
};
#define NFORMATS (sizeof(formats) / sizeof(formats[0]))

const char *
proto_format_name(ip_format f)
{
    for (size_t i = 0; i < NFORMATS; i++)
        if (formats[i].fmt == f)
            return formats[i].name;
    return "auto";
}

const char *
proto_format_ext(ip_format f)
{
    for (size_t i = 0; i < NFORMATS; i++)
        if (formats[i].fmt == f)
            return formats[i].exts[0];
    return NULL;
}

const char *
proto_format_mime(ip_format f)
{
    for (size_t i = 0; i < NFORMATS; i++)
        if (formats[i].fmt == f)
            return formats[i].mime;
    return "application/octet-stream";
}

int
proto_format_parse(const char *name, ip_format *out)
{
    if (strcasecmp(name, "auto") == 0) {
        *out = IP_FMT_AUTO;
        return 0;
    }
    for (size_t i = 0; i < NFORMATS; i++)
        for (size_t j = 0; j < 3 && formats[i].exts[j]; j++)
            if (strcasecmp(name, formats[i].name) == 0 ||
                strcasecmp(name, formats[i].exts[j]) == 0) {
                *out = formats[i].fmt;
                return 0;
            }
    return -1;
}

void
proto_format_names(char *buf, size_t len)
{
    size_t n = (size_t)snprintf(buf, len, "auto");

    for (size_t i = 0; i < NFORMATS && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, ", %s", formats[i].name);
}

ip_format
proto_format_from_path(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash ? slash : path, '.');
    ip_format f;

    if (!dot || proto_format_parse(dot + 1, &f) != 0)
        return IP_FMT_AUTO;
    return f;
}

static const struct {
    const char *name;           /* colour name */
    ip_colour c;                /* its value */
} colours[] = {
    { "black", { 0, 0, 0, 255 } },
    { "white", { 255, 255, 255, 255 } },
    { "gray", { 128, 128, 128, 255 } },
    { "grey", { 128, 128, 128, 255 } },
    { "red", { 255, 0, 0, 255 } },
    { "green", { 0, 128, 0, 255 } },
    { "blue", { 0, 0, 255, 255 } },
    { "yellow", { 255, 255, 0, 255 } },
    { "transparent", { 0, 0, 0, 0 } },
};

static int
hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int
proto_colour_parse(const char *text, ip_colour *out)
{
    size_t n;
    unsigned v[8];

    for (size_t i = 0; i < sizeof(colours) / sizeof(colours[0]); i++)
        if (strcasecmp(text, colours[i].name) == 0) {
            *out = colours[i].c;
            return 0;
        }
    if (text[0] != '#')
        return -1;
    text++;
    n = strlen(text);
    if (n != 3 && n != 6 && n != 8)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int h = hexval((unsigned char)text[i]);
        if (h < 0)
            return -1;
        v[i] = (unsigned)h;
    }
    if (n == 3) {
        out->r = v[0] * 17;
        out->g = v[1] * 17;
        out->b = v[2] * 17;
        out->a = 255;
    } else {
        out->r = v[0] * 16 + v[1];
        out->g = v[2] * 16 + v[3];
        out->b = v[4] * 16 + v[5];
        out->a = n == 8 ? v[6] * 16 + v[7] : 255;
    }
    return 0;
}

int
proto_parse_double(const char *s, double *out)
{
    char *end;
    double d;

    if (!s || !*s || isspace((unsigned char)*s))
        return -1;
    errno = 0;
    d = strtod(s, &end);
    if (errno || *end || !isfinite(d))
        return -1;
    *out = d;
    return 0;
}

int
proto_parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    unsigned long v;

    if (!s || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || *end || v > max)
        return -1;
    *out = v;
    return 0;
}

int
proto_parse_program(const char *s, unsigned long *out)
{
    struct rpcent ent, *found = NULL;
    char buf[1024], *end;
    unsigned long long v;

    if (!s || !*s)
        return -1;
    if (isdigit((unsigned char)*s)) {
        errno = 0;
        v = strtoull(s, &end, 0);
        if (errno || *end || v == 0 || v > 0xFFFFFFFFULL)
            return -1;
        *out = (unsigned long)v;
        return 0;
    }
    if (getrpcbyname_r(s, &ent, buf, sizeof(buf), &found) != 0 || !found ||
        found->r_number <= 0)
        return -1;
    *out = (unsigned long)found->r_number;
    return 0;
}

/* Bytes in the well-formed UTF-8 sequence at s (1..4), or 0 when it is not one. */
static int
utf8_len(const unsigned char *s)
{
    int n = s[0] < 0x80 ? 1 : (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3
          : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
    unsigned cp;

    if (n <= 1)
        return n;
    cp = s[0] & (0x7F >> n);
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    /* No overlong forms, no surrogates, nothing past U+10FFFF. */
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
        return 0;
    return n;
}

void
proto_json_string(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    fputc('"', f);
    while (p && *p) {
        int n = utf8_len(p);
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else if (n == 0) {
            /* Not UTF-8 (a Latin-1 file name...): the replacement character,
             * so the document stays valid JSON. */
            fputs("\\ufffd", f);
            n = 1;
        } else
            fwrite(p, 1, (size_t)n, f);
        p += n ? n : 1;
    }
    fputc('"', f);
}

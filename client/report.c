/* report.c - what went wrong, said once: on stderr for people, and kept for --json. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "proto.h"

/* The last failure said, for the error field of a --json object. */
static struct {
    char message[1024];         /* without "imgproc: " or a newline */
    const char *status;         /* the server's status name when it refused, else NULL */
    int json_started;           /* a command has begun its --json document */
} last;

static void
keep(const char *fmt, va_list ap)
{
    size_t n;

    vsnprintf(last.message, sizeof(last.message), fmt, ap);
    n = strlen(last.message);
    if (n && last.message[n - 1] == '\n')
        last.message[n - 1] = '\0';
}

void
cli_error(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    keep(fmt, ap);
    va_end(ap);
    cli_progress_interrupt();
    fprintf(stderr, "imgproc: %s\n", last.message);
}

void
cli_error_status(ip_status st)
{
    last.status = proto_status_name(st);
}

void
cli_note(const char *fmt, ...)
{
    va_list ap;

    cli_progress_interrupt();
    fputs("imgproc: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

void
cli_error_clear(void)
{
    last.message[0] = '\0';
    last.status = NULL;
}

const char *
cli_last_error(void)
{
    return last.message;
}

void
cli_json_begin(void)
{
    last.json_started = 1;
}

int
cli_json_begun(void)
{
    return last.json_started;
}

void
cli_json_failure(FILE *f, const char *fallback)
{
    fprintf(f, "\"ok\": false, \"status\": ");
    if (last.status)
        proto_json_string(f, last.status);
    else
        fprintf(f, "null");
    fprintf(f, ", \"error\": ");
    proto_json_string(f, last.message[0] ? last.message : fallback);
}

void
cli_usage(const char *synopsis)
{
    snprintf(last.message, sizeof(last.message), "usage: %s", synopsis);
    fprintf(stderr, "%s\n", last.message);
}

void
cli_json_file_failed(FILE *f, const char *path)
{
    fprintf(f, "{\"file\": ");
    proto_json_string(f, path);
    fprintf(f, ", ");
    cli_json_failure(f, "not tried: the server stopped answering");
    fprintf(f, "}");
}

int
cli_each_input(const cli_opts *o, CLIENT *clnt, char **files, int n, cli_input_fn one,
               void *ctx)
{
    int rc = clnt ? EXIT_OK : EXIT_RPC;

    if (o->json) {
        cli_json_begin();
        printf("[");
    }
    for (int i = 0; i < n; i++) {
        int r = EXIT_RPC;

        if (o->json)
            printf("%s\n  ", i ? "," : "");
        if (rc != EXIT_RPC) {
            cli_error_clear();
            r = one(o, clnt, files[i], ctx);
        }
        if (r != EXIT_OK && o->json)
            cli_json_file_failed(stdout, files[i]);
        if (r == EXIT_RPC && rc != EXIT_RPC)
            cli_error_clear();      /* the rest: not tried, as the server went away */
        if (r != EXIT_OK && rc != EXIT_RPC)
            rc = r;
    }
    if (o->json)
        printf("\n]\n");
    return rc;
}

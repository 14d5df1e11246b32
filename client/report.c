/* report.c - what went wrong, said once: on stderr for people, and kept for --json. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "proto.h"

/* The last failure said, for the error field of a --json object. */
static struct {
    char message[1024];         /* without "imgproc: " or a newline */
    const char *status;         /* the server's status name when it refused, else NULL */
    int json_started;           /* a command has begun its --json document */
    char command[64];           /* what the --json fallback calls the command */
} last;

/* --json and Ctrl-C: see cli_json_interruptible below. */
static struct {
    const cli_seg *segs;        /* what finishes the document */
    size_t n;
} tail;
static cli_seg fallback_seg;    /* the fallback object, before a document is begun */
static char *fallback_text;
static void set_fallback_tail(void);

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
    if (tail.segs == &fallback_seg)
        cli_json_tail(NULL, 0);     /* the command sets its own, where it matters */
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
    /* The reason said before it stays the error; the usage line is the hint. */
    if (!last.message[0])
        snprintf(last.message, sizeof(last.message), "usage: %s", synopsis);
    fprintf(stderr, "usage: %s\n", synopsis);
}

void
cli_json_command(const char *name)
{
    snprintf(last.command, sizeof(last.command), "%s", name);
    if (tail.segs == &fallback_seg)
        set_fallback_tail();
}

void
cli_json_fallback(const char *command, int rc)
{
    if (cli_json_begun())
        return;
    last.json_started = 1;
    printf("{\"command\": ");
    if (last.command[0] || *command)
        proto_json_string(stdout, last.command[0] ? last.command : command);
    else
        printf("null");    /* the command line failed before naming one */
    printf(", \"exit\": %d, ", rc);
    cli_json_failure(stdout, rc == EXIT_USAGE ? "wrong command line" : "failed");
    printf("}\n");
    fflush(stdout);
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
    cli_json_list tail_list;

    memset(&tail_list, 0, sizeof(tail_list));
    if (o->json) {
        cli_json_begin();
        if (cli_json_list_init(&tail_list, files, (size_t)n) < 0)
            cli_json_list_free(&tail_list);     /* no tail: Ctrl-C then cuts it short */
        printf("[");
    }
    for (int i = 0; i < n; i++) {
        int r = EXIT_RPC;

        if (o->json) {
            printf("%s\n  ", i ? "," : "");
            cli_json_list_from(&tail_list, (size_t)i, 1);
        }
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
    if (o->json) {
        printf("\n]\n");
        cli_json_list_free(&tail_list);
    }
    return rc;
}

/*
 * --json and Ctrl-C.  The document must still parse when the command is
 * interrupted, mid-call as often as not (libtirpc waits through EINTR, so a
 * flag would be seen only when the call ends).  So the command keeps, at
 * each point where its output is flushed, the text that would finish the
 * document from there ("tail": segments, so that a list of many inputs need
 * not be copied at each step), and the handler writes it with write(2) and
 * ends the process.  _exit drops what stdio holds beyond the last flush,
 * which is what the tail was made for.
 */

static void
on_interrupt(int sig)
{
    (void)sig;
    cli_output_unlink_all();    /* a result being written: its temporary file */
    for (size_t i = 0; i < tail.n; i++) {
        size_t done = 0;
        while (done < tail.segs[i].len) {
            ssize_t w = write(STDOUT_FILENO, tail.segs[i].text + done, tail.segs[i].len - done);
            if (w <= 0)
                break;
            done += (size_t)w;
        }
    }
    _exit(EXIT_INTERRUPTED);
}

void
cli_json_tail(const cli_seg *segs, size_t n)
{
    sigset_t set, old;

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, &old);
    fflush(stdout);
    tail.segs = segs;
    tail.n = n;
    sigprocmask(SIG_SETMASK, &old, NULL);
}

/* The fallback object for an interrupted command, as the tail until a document begins. */
static void
set_fallback_tail(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    if (!f)
        return;
    fprintf(f, "{\"command\": ");
    proto_json_string(f, last.command);
    fprintf(f, ", \"exit\": %d, \"ok\": false, \"status\": null, \"error\": "
            "\"interrupted\"}\n", EXIT_INTERRUPTED);
    fclose(f);
    cli_json_tail(NULL, 0);
    free(fallback_text);
    fallback_text = text;
    fallback_seg.text = text;
    fallback_seg.len = len;
    cli_json_tail(&fallback_seg, 1);
}

void
cli_json_interruptible(const char *command)
{
    struct sigaction sa;

    snprintf(last.command, sizeof(last.command), "%s", command);
    set_fallback_tail();
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    for (int sig = SIGINT; sig; sig = sig == SIGINT ? SIGTERM : 0) {
        struct sigaction was;
        /* A signal ignored when we started (a shell's background job, nohup)
         * stays ignored, as the shell meant. */
        if (sigaction(sig, NULL, &was) == 0 && was.sa_handler == SIG_IGN)
            continue;
        sigaction(sig, &sa, NULL);
    }
}

int
cli_json_list_init(cli_json_list *l, char **files, size_t n)
{
    memset(l, 0, sizeof(*l));
    l->segs = calloc(n + 1, sizeof(*l->segs));
    l->texts = calloc(n, sizeof(*l->texts));
    l->n = n;
    if (!l->segs || !l->texts)
        return -1;
    l->segs[0].text = "[\n  ";
    l->segs[0].len = strlen(l->segs[0].text);
    for (size_t i = 0; i < n; i++) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
            return -1;
        fprintf(f, "{\"file\": ");
        proto_json_string(f, files[i]);
        fprintf(f, ", \"ok\": false, \"status\": null, \"error\": \"interrupted\"}");
        fclose(f);
        if (cli_json_list_set(l, i, text) < 0) {
            free(text);
            return -1;
        }
        free(text);
    }
    return 0;
}

int
cli_json_list_set(cli_json_list *l, size_t i, const char *object)
{
    char *text = NULL;
    int len = asprintf(&text, "%s%s", object, i + 1 < l->n ? ",\n  " : "\n]\n");
    sigset_t set, old;

    if (len < 0)
        return -1;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, &old);
    free(l->texts[i]);
    l->texts[i] = text;
    l->segs[i + 1].text = text;
    l->segs[i + 1].len = (size_t)len;
    sigprocmask(SIG_SETMASK, &old, NULL);
    return 0;
}

void
cli_json_list_from(cli_json_list *l, size_t i, int begun)
{
    if (!l->segs)
        return;
    if (begun)
        cli_json_tail(l->segs + 1 + i, l->n - i);
    else
        cli_json_tail(l->segs, l->n + 1);
}

void
cli_json_list_free(cli_json_list *l)
{
    if (tail.segs >= l->segs && tail.segs <= l->segs + l->n && l->segs)
        cli_json_tail(NULL, 0);
    for (size_t i = 0; l->texts && i < l->n; i++)
        free(l->texts[i]);
    free(l->texts);
    free(l->segs);
    memset(l, 0, sizeof(*l));
}

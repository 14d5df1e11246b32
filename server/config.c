/* config.c - imgprocd's settings: one table declares each flag, its default, bounds and help. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "proto.h"
#include "service.h"

/* How a setting's value is written and stored. */
typedef enum cf_kind {
    CF_NUMBER,                  /* a count; K, M, G suffixes (1024s) */
    CF_BYTES,                   /* a size in bytes; printed with K, M, G */
    CF_SECONDS,                 /* a duration in seconds */
    CF_PROGRAM,                 /* an RPC program number; printed in hex */
    CF_PATH,                    /* a non-empty string */
    CF_LISTEN,                  /* an address, repeatable */
    CF_NET,                     /* a network, ADDR/BITS, repeatable */
    CF_NAME,                    /* a name, repeatable (--admin) */
    CF_UNTRUSTED,               /* anonymous or refuse */
    CF_ON,                      /* a flag that sets the field to 1 */
    CF_OFF                      /* a flag that sets the field to 0 */
} cf_kind;

/* One flag of imgprocd: parsing, the default, the bounds and --help come from here. */
typedef struct srv_setting {
    const char *name;           /* the long option, without "--" */
    const char *arg;            /* its argument in --help ("N", "S"...), NULL for a flag */
    cf_kind kind;               /* how it is read and stored */
    size_t offset;              /* the field in srv */
    size_t size;                /* its size: 4 or 8 for numbers */
    uint64_t def;               /* the default (numbers; 0 = as def_text says) */
    uint64_t min, max;          /* accepted range (numbers) */
    const char *def_text;       /* the default in words, when a number does not say it */
    const char *doc;            /* --help, wrapped there */
    int tasks;                  /* listed under "Tasks" */
    char letter;                /* its short option, or 0 */
} srv_setting;

#define FIELD(f) offsetof(srv, f), sizeof(((srv *)0)->f)
#define DAY 86400ULL

static const srv_setting settings[] = {
    { "program", "N|NAME", CF_PROGRAM, FIELD(cfg.program), IMGPROC, 1, 0xFFFFFFFFULL, NULL,
      "RPC program: a number, or a name in /etc/rpc", 0, 0 },
    { "port", "N", CF_NUMBER, FIELD(cfg.port), 0, 1, 65535, "any free port",
      "serve on port N", 0, 0 },
    { "listen", "ADDR", CF_LISTEN, FIELD(cfg.listen), 0, 0, 0, "127.0.0.1 and ::1",
      "address to serve on; repeatable", 0, 0 },
    { "no-rpcbind", NULL, CF_OFF, FIELD(cfg.use_rpcbind), 1, 0, 0, NULL,
      "do not register with rpcbind (clients then need -p PORT)", 0, 0 },
    { "max-request-bytes", "N", CF_BYTES, FIELD(cfg.max_request_bytes), IP_MAX_IMAGE, 1,
      IP_MAX_IMAGE, NULL, "largest image a call carries, in bytes; K, M, G suffixes "
      "(a task's upload chunks are 1M regardless)", 0, 0 },
    { "max-pixels", "N", CF_NUMBER, FIELD(cfg.max_pixels), 150000000, 1,
      (uint64_t)IP_MAX_DIMENSION * IP_MAX_DIMENSION, NULL,
      "largest width x height of any image", 0, 0 },
    { "max-steps", "N", CF_NUMBER, FIELD(cfg.max_steps), IP_MAX_STEPS, 1, IP_MAX_STEPS, NULL,
      "longest pipeline", 0, 0 },
    { "max-connections", "N", CF_NUMBER, FIELD(cfg.max_connections), 64, 1, 10000, NULL,
      "TCP connections served at once; when full, the quietest connection not in a "
      "call is closed", 0, 0 },
    { "max-connections-per-address", "N", CF_NUMBER, FIELD(cfg.max_per_address), 16, 0,
      10000, NULL, "... from one address, an IPv6 /64 counting as one; 0: no cap", 0, 0 },
    { "max-inflight-bytes", "N", CF_BYTES, FIELD(cfg.max_inflight_bytes), 512ULL << 20, 1,
      1ULL << 40, NULL, "image bytes of all calls being received or worked on; beyond it "
      "a call waits up to 10 s, then is refused as busy", 0, 0 },
    { "min-receive-rate", "N", CF_BYTES, FIELD(cfg.min_receive_rate), 16384, 0, 1ULL << 30,
      NULL, "a call must arrive at N bytes/s or more, measured over 10 s, or its "
      "connection is closed; 0: off", 0, 0 },
    { "idle-timeout", "S", CF_SECONDS, FIELD(cfg.idle_seconds), 300, 1, DAY, NULL,
      "close a TCP or local-socket connection silent for S seconds", 0, 0 },
    { "max-request-seconds", "S", CF_SECONDS, FIELD(cfg.max_request_seconds), 60, 1, DAY,
      NULL, "stop a synchronous call's image work after S seconds (too-large), or when "
      "its caller hangs up", 0, 0 },
    { "max-blur-work", "N", CF_NUMBER, FIELD(cfg.max_blur_work), OPS_MAX_BLUR_WORK, 1,
      100000000, NULL, "refuse a blur whose sigma x the image's megapixels is over N "
      "(too-large; 2000 is sigma 220 on 9 MP)", 0, 0 },
    { "local-socket", "PATH", CF_PATH, FIELD(cfg.local_socket), 0, 0, 0,
      "imgprocd.sock in $RUNTIME_DIRECTORY (systemd's RuntimeDirectory=), else in the "
      "state folder", "serve this machine's users on an AF_LOCAL socket, where the kernel "
      "vouches for each caller's uid; 'none': no local socket", 0, 0 },
    { "trust-sys-from", "NET", CF_NET, FIELD(cfg.trust_sys), 0, 0, 0, "none",
      "believe AUTH_SYS uids from callers in NET (192.0.2.0/24, 2001:db8::/32) over "
      "TCP from a port below 1024 (the host's root); repeatable", 0, 0 },
    { "untrusted", "anonymous|refuse", CF_UNTRUSTED, FIELD(cfg.refuse_untrusted), 0, 0, 0,
      "anonymous", "what an unverified caller (AUTH_SYS or AUTH_NONE over the network) "
      "gets: its own anonymous tasks, or nothing but NULL and SERVER_INFO", 0, 0 },
    { "krb5-service", "NAME", CF_PATH, FIELD(cfg.krb5_service), 0, 0, 0, "none",
      "accept Kerberos callers (RPCSEC_GSS, integrity or privacy) as service NAME: "
      "imgproc@HOST is the principal imgproc/HOST@REALM", 0, 0 },
    { "keytab", "FILE", CF_PATH, FIELD(cfg.keytab), 0, 0, 0, "$KRB5_KTNAME, else "
      "/etc/krb5.keytab", "the service's Kerberos keys", 0, 0 },
    { "admin", "PRINCIPAL", CF_NAME, FIELD(cfg.admins), 0, 0, 0, "none",
      "a Kerberos principal that may list, cancel and delete every caller's tasks, as "
      "uid 0 on the local socket may; repeatable", 0, 0 },
    { "verbose", NULL, CF_ON, FIELD(cfg.verbose), 0, 0, 0, NULL,
      "log one line per request and per task event", 0, 'v' },
    { "syslog", NULL, CF_ON, FIELD(cfg.syslog), 0, 0, 0, NULL,
      "log to syslog (facility daemon), not stderr; under systemd, stderr goes to the "
      "journal with each line's priority", 0, 0 },
    { "state-dir", "DIR", CF_PATH, FIELD(tcfg.state_dir), 0, 0, 0,
      "$STATE_DIRECTORY (systemd's StateDirectory=), else /var/lib/imgprocd for root, "
      "else $XDG_STATE_HOME/imgprocd or ~/.local/state/imgprocd",
      "task database and images (with a PostgreSQL --store, temporary files only)", 1, 0 },
    { "store", "URL", CF_PATH, FIELD(tcfg.store_url), 0, 0, 0, "sqlite: (the state folder)",
      "where tasks live: sqlite:, or postgres://USER@HOST:PORT/DATABASE (any libpq URL; "
      "the password from ~/.pgpass or PGPASSFILE), a queue that several servers share", 1,
      0 },
    { "lease", "S", CF_SECONDS, FIELD(tcfg.lease), 30, 2, 3600, NULL,
      "PostgreSQL store: a running task's claim lasts S seconds, renewed every S/3; a "
      "server silent longer loses its tasks to the others", 1, 0 },
    { "workers", "N", CF_NUMBER, FIELD(tcfg.workers), 0, 1, 256, "the number of cores",
      "tasks run at once", 1, 0 },
    { "queue-size", "N", CF_NUMBER, FIELD(tcfg.max_queued), 1000, 1, 1000000, NULL,
      "queued tasks at most; more are refused as busy", 1, 0 },
    { "max-tasks", "N", CF_NUMBER, FIELD(tcfg.max_tasks), 100000, 1, 100000000, NULL,
      "tasks kept at most, in any state", 1, 0 },
    { "result-ttl", "S", CF_SECONDS, FIELD(tcfg.result_ttl), DAY, 1, 3650 * DAY, NULL,
      "keep finished tasks S seconds", 1, 0 },
    { "max-upload-bytes", "N", CF_BYTES, FIELD(tcfg.max_upload_bytes), 1ULL << 30, 1,
      1ULL << 40, NULL, "largest image a task may upload", 1, 0 },
    { "max-task-seconds", "S", CF_SECONDS, FIELD(tcfg.max_task_seconds), 900, 1, 7 * DAY,
      NULL, "stop a task's pipeline after S seconds; it fails", 1, 0 },
};
#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

static void
store(srv *s, const srv_setting *t, uint64_t v)
{
    void *field = (char *)s + t->offset;

    if (t->size == sizeof(uint64_t))
        *(uint64_t *)field = v;
    else
        *(unsigned *)field = (unsigned)v;
}

/* Does a setting of this kind keep a number in its field (its def)? */
static int
has_number(cf_kind k)
{
    switch (k) {
    case CF_NUMBER: case CF_BYTES: case CF_SECONDS: case CF_PROGRAM: case CF_ON: case CF_OFF:
        return 1;
    case CF_PATH: case CF_LISTEN: case CF_NET: case CF_NAME: case CF_UNTRUSTED:
        return 0;
    }
    return 0;
}

/* Every setting at its default, before the command line is read; the locks ready. */
void
srv_defaults(srv *s)
{
    memset(s, 0, sizeof(*s));
    for (size_t i = 0; i < NSETTINGS; i++)
        if (has_number(settings[i].kind))
            store(s, &settings[i], settings[i].def);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->idle, NULL);
    pthread_cond_init(&s->budget, NULL);
}

/* "192.0.2.0/24", "2001:db8::/32", "127.0.0.1" (all its bits) -> n.  0 or -1. */
static int
parse_net(const char *text, srv_net *n)
{
    char addr[INET6_ADDRSTRLEN];
    const char *slash = strchr(text, '/');
    size_t len = slash ? (size_t)(slash - text) : strlen(text);
    unsigned long bits;
    char *end;

    if (len >= sizeof(addr))
        return -1;
    memcpy(addr, text, len);
    addr[len] = '\0';
    memset(n, 0, sizeof(*n));
    if (inet_pton(AF_INET, addr, n->addr) == 1)
        n->family = AF_INET;
    else if (inet_pton(AF_INET6, addr, n->addr) == 1)
        n->family = AF_INET6;
    else
        return -1;
    n->prefix = n->family == AF_INET ? 32 : 128;
    if (slash) {
        errno = 0;
        bits = strtoul(slash + 1, &end, 10);
        if (errno || end == slash + 1 || *end || bits > n->prefix)
            return -1;
        n->prefix = (unsigned)bits;
    }
    return 0;
}

int
srv_net_holds_loopback(const srv_net *n)
{
    static const unsigned char v4[4] = { 127, 0, 0, 1 }, v6[16] = { [15] = 1 };
    const unsigned char *a = n->family == AF_INET ? v4 : v6;
    unsigned full = n->prefix / 8, rest = n->prefix % 8;

    return memcmp(a, n->addr, full) == 0 &&
           (rest == 0 || ((a[full] ^ n->addr[full]) & (0xFF << (8 - rest)) & 0xFF) == 0);
}

/* "64M" -> 67108864 (suffixes are 1024s).  0 or -1. */
static int
parse_number(const char *text, uint64_t *out)
{
    char *end;
    unsigned long long v;
    uint64_t mult = 1;

    errno = 0;
    if (!text[0] || text[0] == '-')
        return -1;
    v = strtoull(text, &end, 0);
    if (errno || end == text)
        return -1;
    switch (*end) {
    case 'K': case 'k': mult = 1ULL << 10; end++; break;
    case 'M': case 'm': mult = 1ULL << 20; end++; break;
    case 'G': case 'g': mult = 1ULL << 30; end++; break;
    default: break;
    }
    if (*end || (mult > 1 && v > UINT64_MAX / mult))
        return -1;
    *out = v * mult;
    return 0;
}

/* A number as --help and messages write it: 64M, 0x20494D47, 86400. */
static void
format_value(const srv_setting *t, uint64_t v, char *buf, size_t len)
{
    if (t->kind == CF_PROGRAM)
        snprintf(buf, len, "0x%llX", (unsigned long long)v);
    else if (t->kind == CF_BYTES && v && v % (1ULL << 30) == 0)
        snprintf(buf, len, "%lluG", (unsigned long long)(v >> 30));
    else if (t->kind == CF_BYTES && v && v % (1ULL << 20) == 0)
        snprintf(buf, len, "%lluM", (unsigned long long)(v >> 20));
    else if (t->kind == CF_BYTES && v && v % (1ULL << 10) == 0)
        snprintf(buf, len, "%lluK", (unsigned long long)(v >> 10));
    else
        snprintf(buf, len, "%llu", (unsigned long long)v);
}

/* One flag's value into s.  0, or -1 having said what is wrong. */
static int
apply(srv *s, const srv_setting *t, const char *arg)
{
    char lo[32], hi[32];
    uint64_t v;

    switch (t->kind) {
    case CF_ON:
    case CF_OFF:
        store(s, t, t->kind == CF_ON);
        return 0;
    case CF_PATH:
        if (!*arg)
            break;
        *(const char **)((char *)s + t->offset) = arg;
        return 0;
    case CF_LISTEN:
        if (s->cfg.nlisten == SRV_MAX_LISTEN) {
            srv_log(SRV_LOG_ERROR, "at most %d --listen addresses", SRV_MAX_LISTEN);
            return -1;
        }
        s->cfg.listen[s->cfg.nlisten++] = arg;
        return 0;
    case CF_NET:
        if (s->cfg.ntrust_sys == SRV_MAX_NETS) {
            srv_log(SRV_LOG_ERROR, "at most %d --%s networks", SRV_MAX_NETS, t->name);
            return -1;
        }
        if (parse_net(arg, &s->cfg.trust_sys[s->cfg.ntrust_sys]) == 0) {
            s->cfg.ntrust_sys++;
            return 0;
        }
        srv_log(SRV_LOG_ERROR, "invalid value '%s' for --%s (an address, or ADDR/BITS: "
                "192.0.2.0/24, 2001:db8::/32)", arg, t->name);
        return -1;
    case CF_NAME:
        if (!*arg || strlen(arg) > SERVICE_MAX_PRINCIPAL)
            break;
        if (s->cfg.nadmins == SRV_MAX_ADMINS) {
            srv_log(SRV_LOG_ERROR, "at most %d --%s", SRV_MAX_ADMINS, t->name);
            return -1;
        }
        s->cfg.admins[s->cfg.nadmins++] = arg;
        return 0;
    case CF_UNTRUSTED:
        if (strcmp(arg, "anonymous") != 0 && strcmp(arg, "refuse") != 0)
            break;
        store(s, t, strcmp(arg, "refuse") == 0);
        return 0;
    case CF_PROGRAM: {
        unsigned long p;
        if (proto_parse_program(arg, &p)) {
            srv_log(SRV_LOG_ERROR, "invalid value '%s' for --%s (a number, or a name in "
                    "/etc/rpc)", arg, t->name);
            return -1;
        }
        store(s, t, p);
        return 0;
    }
    default:
        if (parse_number(arg, &v) || v < t->min || v > t->max)
            break;
        store(s, t, v);
        return 0;
    }
    format_value(t, t->min, lo, sizeof(lo));
    format_value(t, t->max, hi, sizeof(hi));
    if (t->kind == CF_PATH || t->kind == CF_NAME)
        srv_log(SRV_LOG_ERROR, "invalid value '%s' for --%s", arg, t->name);
    else if (t->kind == CF_UNTRUSTED)
        srv_log(SRV_LOG_ERROR, "invalid value '%s' for --%s (anonymous or refuse)", arg,
                t->name);
    else
        srv_log(SRV_LOG_ERROR, "invalid value '%s' for --%s (%s..%s)", arg, t->name, lo, hi);
    return -1;
}

/* "  --name ARG" and its doc, wrapped at 80 columns under column 25. */
static void
help_line(FILE *f, const srv_setting *t)
{
    char head[64], def[160], text[512];

    snprintf(head, sizeof(head), "  %s%s--%s%s%s", t->letter ? (char[]){ '-', t->letter, 0 }
             : "", t->letter ? ", " : "", t->name, t->arg ? " " : "", t->arg ? t->arg : "");
    def[0] = '\0';
    if (t->def_text)
        snprintf(def, sizeof(def), " (default: %s)", t->def_text);
    else if (t->kind != CF_ON && t->kind != CF_OFF) {
        char v[32];
        format_value(t, t->def, v, sizeof(v));
        snprintf(def, sizeof(def), " (default %s)", v);
    }
    snprintf(text, sizeof(text), "%s%s", t->doc, def);
    proto_help_line(f, head, text);
}

void
srv_usage(FILE *f)
{
    fprintf(f, "usage: imgprocd [options]\n"
               "Serves the imgproc ONC RPC program (see imgproc.x) over TCP and UDP.\n\n");
    for (size_t i = 0; i < NSETTINGS; i++)
        if (!settings[i].tasks)
            help_line(f, &settings[i]);
    fprintf(f, "\nTasks (TASK_* procedures):\n");
    for (size_t i = 0; i < NSETTINGS; i++)
        if (settings[i].tasks)
            help_line(f, &settings[i]);
    fprintf(f, "\n  -h, --help             this help\n"
               "  -V, --version          print the version\n\n"
               "Once serving, it prints 'imgprocd: ready ...' on stdout.  SIGINT or SIGTERM\n"
               "unregisters from rpcbind and stops at once: a synchronous call in progress is\n"
               "answered busy ('call again later'), and a running task is queued again, to\n"
               "run from the start when a server opens the state folder again.\n");
}

int
srv_parse_args(srv *s, int argc, char **argv)
{
    enum { FIRST = 256 };
    struct option opts[NSETTINGS + 3];
    int o;

    for (size_t i = 0; i < NSETTINGS; i++)
        opts[i] = (struct option){ settings[i].name, settings[i].arg ? required_argument
                                   : no_argument, NULL, FIRST + (int)i };
    opts[NSETTINGS] = (struct option){ "help", no_argument, NULL, 'h' };
    opts[NSETTINGS + 1] = (struct option){ "version", no_argument, NULL, 'V' };
    opts[NSETTINGS + 2] = (struct option){ NULL, 0, NULL, 0 };
    while ((o = getopt_long(argc, argv, "vhV", opts, NULL)) != -1) {
        if (o >= FIRST && o < FIRST + (int)NSETTINGS) {
            if (apply(s, &settings[o - FIRST], optarg))
                return 2;
            continue;
        }
        switch (o) {
        case 'v':
            s->cfg.verbose = 1;
            break;
        case 'h':
            srv_usage(stdout);
            exit(0);
        case 'V':
            printf("imgprocd %s\n", IMGPROC_VERSION);
            exit(0);
        default:
            srv_usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        srv_log(SRV_LOG_ERROR, "unexpected argument '%s' (see imgprocd --help)", argv[optind]);
        return 2;
    }
    return 0;
}

/* The settings that follow from others, once the command line is read. */
void
srv_settle(srv *s)
{
    s->limits.max_pixels = s->cfg.max_pixels;
    s->limits.max_result_bytes = IP_MAX_IMAGE;
    s->limits.max_blur_work = s->cfg.max_blur_work;
    if (!s->tcfg.workers) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        s->tcfg.workers = n > 0 ? (unsigned)n : 1;
    }
    s->tcfg.max_inline_bytes = s->cfg.max_request_bytes;
    s->tcfg.max_steps = s->cfg.max_steps;
    srv_log_verbose(s->cfg.verbose);
}

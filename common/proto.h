/* proto.h - shared helpers around the generated protocol: names, ranges, parsing. */
#ifndef IMGPROC_PROTO_H
#define IMGPROC_PROTO_H

#include <stddef.h>
#include <stdio.h>
#include "imgproc.h"

/* How a parameter is stored in its ip_step arm, written and checked. */
typedef enum proto_type {
    PT_DOUBLE,                  /* double: a finite number in range */
    PT_UINT,                    /* u_int in range */
    PT_FIT,                     /* ip_fit: inside, cover or fill */
    PT_BOOL,                    /* bool_t */
    PT_COLOUR                   /* ip_colour: red, #rgb, #rrggbb, #rrggbbaa */
} proto_type;

/*
 * One parameter of an operation, declared once: the --steps parser, the
 * range check (client and server), the text form, SERVER_INFO and the help
 * all read it.
 */
typedef struct proto_param {
    const char *name;           /* parameter name; its upper case stands for it in syntax */
    proto_type type;            /* how it is stored and written */
    double min, max;            /* range for numbers (inclusive, but see min_open) */
    int min_open;               /* the minimum itself is out of range (sigma > 0) */
    int required;               /* --steps must give it; otherwise def is used */
    double def;                 /* the value when left out (PT_COLOUR: opaque black) */
    size_t offset;              /* where it lives in ip_step */
    const char *doc;            /* one line for people */
} proto_param;

#define PROTO_MAX_PARAMS 4

/*
 * One pipeline operation: the one table both programs read.  Adding one is
 * an arm in imgproc.x, a row here and a step function in server/ops.c.
 */
typedef struct proto_op {
    ip_op op;                   /* protocol number */
    const char *name;           /* name in --steps, e.g. "blur" */
    const char *doc;            /* one line for people */
    const char *example;        /* a step as written, e.g. "blur=2.5" */
    int nparams;                /* entries used in params[] */
    proto_param params[PROTO_MAX_PARAMS];
    /* A --steps form of its own (resize=WxH..., crop=WxH+X+Y), with its
     * syntax line; NULL: NAME[=P1[:P2...]], params in order. */
    const char *syntax;
    int (*parse)(char *arg, ip_step *s, char *why, size_t len);
    void (*format)(const ip_step *s, char *buf, size_t len);
} proto_op;

/* The operations, and how many: the server's step table is checked against it. */
#define PROTO_NOPS 12
extern const proto_op proto_ops[PROTO_NOPS];
extern const size_t proto_nops;

/* A parameter's doc with what its range and type cannot say: "..., > 0", "(default 128)". */
void proto_param_doc(const proto_param *p, char *buf, size_t len);
/* A step of op with its parameters at their defaults. */
void proto_step_init(const proto_op *op, ip_step *s);
/*
 * One parameter's value, written as --steps and the command line write it
 * (a number, a colour, inside|cover|fill, 0|1), into its field of s.
 * 0, or -1 with a reason (syntax only: proto_step_check judges ranges).
 */
int proto_param_parse(const proto_op *op, const proto_param *p, const char *text, ip_step *s,
                      char *why, size_t len);

/* "double", "uint", "enum", "bool", "colour": a parameter's type as SERVER_INFO says it. */
const char *proto_type_name(proto_type t);
/* How to write op in --steps, e.g. "threshold[=LEVEL]  (LEVEL 128 if left out)". */
void proto_op_syntax(const proto_op *op, char *buf, size_t len);

const proto_op *proto_op_by_num(ip_op op);
const proto_op *proto_op_by_name(const char *name);

/* Status names ("ok", "invalid-argument"...) and their exit code meaning. */
const char *proto_status_name(ip_status st);
/* "busy" -> IP_EBUSY.  0 or -1. */
int proto_status_parse(const char *name, ip_status *out);

/* Task states: "created", "queued"... and back.  PROTO_NSTATES of them. */
#define PROTO_NSTATES 6
const char *proto_task_state_name(ip_task_state st);
int proto_task_state_parse(const char *name, ip_task_state *out);
/* DONE, FAILED and CANCELLED: nothing more happens to such a task. */
int proto_task_final(ip_task_state st);

/* Output formats: "jpeg" <-> IP_FMT_JPEG, file extensions. */
const char *proto_format_name(ip_format f);
const char *proto_format_ext(ip_format f);
const char *proto_format_mime(ip_format f);   /* "image/jpeg" */
int proto_format_parse(const char *name, ip_format *out);
/* "auto, jpeg, png, ...": the names proto_format_parse takes, for messages, into buf. */
void proto_format_names(char *buf, size_t len);
/* Format from a file name's extension; IP_FMT_AUTO when unknown or absent. */
ip_format proto_format_from_path(const char *path);

/* "red", "#rgb", "#rrggbb", "#rrggbbaa" -> colour.  0 or -1. */
int proto_colour_parse(const char *text, ip_colour *out);

/*
 * Checks one step's parameters against the ranges in proto_ops.
 * Returns 0, or -1 with a reason written to why (size whylen).
 */
int proto_step_check(const ip_step *step, char *why, size_t whylen);

/*
 * Parses a pipeline written as "blur=5,grayscale,resize=800x600".
 * Fills steps[0..*nsteps-1] (room for max); returns 0, or -1 with a reason.
 * Checks the syntax only; proto_step_check() checks the ranges.
 */
int proto_pipeline_parse(const char *text, ip_step *steps, unsigned max,
                         unsigned *nsteps, char *why, size_t whylen);

/* Writes a step back in --steps syntax, e.g. "resize=800x600:cover". */
void proto_step_format(const ip_step *step, char *buf, size_t len);

/* Strict number parsing: the whole string, finite, no overflow.  0 or -1. */
int proto_parse_double(const char *s, double *out);
int proto_parse_uint(const char *s, unsigned long max, unsigned long *out);
/*
 * An RPC program: a number (decimal, or hex with 0x) or a name from the rpc
 * database (/etc/rpc: "imgproc", as the Debian package adds it).  0 or -1.
 */
int proto_parse_program(const char *s, unsigned long *out);

/* SHA-256 in lowercase hex (as sha256sum prints it), of a buffer or of a whole file.  0 or -1. */
int proto_sha256_hex(const void *data, size_t len, char out[65]);
int proto_sha256_fd(int fd, char out[65]);
/* A SHA-256 computed piece by piece: new, update..., final (hex), free. */
typedef struct proto_sha256 proto_sha256;
proto_sha256 *proto_sha256_new(void);
int proto_sha256_update(proto_sha256 *h, const void *data, size_t len);
int proto_sha256_final(proto_sha256 *h, char out[65]);
void proto_sha256_free(proto_sha256 *h);

/* A malloc'ed printf; NULL when out of memory.  The caller frees it. */
char *proto_strdupf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* write() until all of data is written, through EINTR.  0 or -1 (errno). */
int proto_write_all(int fd, const void *data, size_t len);
/* Seconds on the monotonic clock: for measuring, not for dates. */
double proto_seconds(void);

/* SERVER_INFO, from any imgprocd: fields an older server lacks are left zero
 * (its guard limits).  xdr_free(xdr_ip_server_info_res) releases res. */
enum clnt_stat proto_server_info(CLIENT *c, ip_server_info_res *res, struct timeval timeout);
/*
 * SERVER_INFO as one JSON object on f (imgproc info --json, the web
 * gateway's GET /v1/info); g all zero is a server older than the guard
 * limits (null), state_dir NULL or empty is not told (null).
 */
/*
 * A client handle for imgprocd on host: through rpcbind, or straight to
 * port when not 0; proto "tcp", "udp", "local" (the server's local socket
 * on this machine, found through rpcbind) or "auto" (local when host is
 * this machine and the server has a local socket, else tcp); timeout
 * seconds for every call.  On success *why is NULL, or a notice for
 * people (malloc'ed): the local socket was out of reach, so TCP is used.
 * NULL with why (malloc'ed, or NULL if out of memory) when it cannot.
 */
CLIENT *proto_connect(const char *host, int port, rpcprog_t prog, const char *proto,
                      unsigned timeout, char **why);
/*
 * Bytes of record buffer each way on a connection, client and server:
 * libtirpc's largest (its default is 64 KiB).  A Kerberos message is signed
 * or encrypted whole in it, which bounds the Kerberos sizes below.
 */
#define PROTO_RECORD_BUFFER (256 * 1024)

/*
 * The bytes of image one call may carry over clnt: IP_MAX_CHUNK, but under
 * Kerberos (RPCSEC_GSS) PROTO_KRB5_CHUNK, since libtirpc signs or encrypts
 * each message whole in its 256 KiB record buffer.  Task uploads and
 * results go in pieces of this size.
 */
#define PROTO_KRB5_CHUNK (128 * 1024)
_Static_assert(PROTO_KRB5_CHUNK <= IP_MAX_CHUNK && 2 * PROTO_KRB5_CHUNK <= PROTO_RECORD_BUFFER,
               "a Kerberos piece, with its call around it, must fit the record buffer");
size_t proto_chunk_size(const CLIENT *clnt);
/* GSS-API's words for a failure (major and minor status) into buf. */
void proto_gss_text(unsigned major, unsigned minor, char *buf, size_t len);

/* The transport clnt travels over: "local", "tcp" or "udp". */
const char *proto_transport(CLIENT *clnt);
/*
 * Task id's result, fetched in IP_MAX_CHUNK pieces into *data (malloc'ed),
 * with its facts (facts' data left empty) when facts is not NULL; progress,
 * when not NULL, hears of each piece.  PROTO_FETCH_OK; _RPC when a call
 * failed (clnt says why); _REFUSED with the server's *st and message in why;
 * _BAD when out of memory or the server's chunks disagree (why says).
 */
enum { PROTO_FETCH_OK, PROTO_FETCH_RPC, PROTO_FETCH_REFUSED, PROTO_FETCH_BAD,
       PROTO_FETCH_SINK };
int proto_fetch_result(CLIENT *clnt, ip_task_id id, char **data, uint64_t *len,
                       ip_task_chunk *facts, void (*progress)(void *, uint64_t, uint64_t),
                       void *ctx, ip_status *st, char *why, size_t whylen);
/*
 * Where proto_fetch_result_to puts each piece as it arrives: len bytes
 * (0 only for an empty result) at offset of total, in order, the first at
 * offset 0.  0, or -1 with a reason in why.
 */
typedef int (*proto_fetch_sink)(void *sctx, const void *data, size_t len, uint64_t offset,
                                uint64_t total, char *why, size_t whylen);
/*
 * proto_fetch_result without holding the result: each piece goes to sink
 * and is let go, so memory stays at one chunk whatever the size (the
 * client writes a file with it).  The same outcomes, and _SINK when sink
 * failed (its reason in why).
 */
int proto_fetch_result_to(CLIENT *clnt, ip_task_id id, proto_fetch_sink sink, void *sctx,
                          ip_task_chunk *facts, void (*progress)(void *, uint64_t, uint64_t),
                          void *ctx, ip_status *st, char *why, size_t whylen);
void proto_info_json(FILE *f, const ip_server_info *si, const ip_guard_limits *g,
                     const char *state_dir, const char *caller, const char *store);
/*
 * A task as one JSON object.  ok: 1 or 0 adds "ok" (a call's answer about
 * it), -1 leaves it out (a list's entry); why, when not NULL, is the error
 * rather than the task's own.
 */
void proto_task_json(FILE *f, const ip_task_info *i, int ok, const char *why);

/*
 * One option's --help line, as both programs print them: head ("  -o,
 * --output OUT"), then text from column 25 (or two spaces after a long
 * head), wrapped word by word at 79 columns under column 25.
 */
void proto_help_line(FILE *f, const char *head, const char *text);

/*
 * An XDR routine as clnt_call and svc_sendreply take it (xdrproc_t): the
 * generated routines take two arguments, xdr_void none, and xdrproc_t is
 * variadic, so the cast goes through void (*)(void), which GCC allows.
 */
#define PROTO_XDR(fn) ((xdrproc_t)(void (*)(void))(fn))

/* Writes s as a JSON string literal, quotes included. */
void proto_json_string(FILE *f, const char *s);

#endif

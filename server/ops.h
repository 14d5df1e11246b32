/* ops.h - the image operations, done with libvips. */
#ifndef IMGPROC_OPS_H
#define IMGPROC_OPS_H

#include <stdint.h>
#include "imgproc.h"

/* What the operations may do, set from the server's flags. */
typedef struct ops_limits {
    uint64_t max_pixels;        /* width x height of any input, intermediate or output */
    uint64_t max_result_bytes;  /* largest encoded result */
    unsigned max_blur_work;     /* a blur's sigma x its input's megapixels, at most */
} ops_limits;

#define OPS_MAX_BLUR_WORK 2000  /* max_blur_work's default: sigma 220 on a 9 MP photo */

/*
 * Watches a long operation: progress() is called now and then, from any of
 * libvips' threads, with the percentage done; when it returns nonzero the
 * evaluation is killed and the operation fails.  When it fails, why() is
 * asked whether the watch stopped it: it returns 1 and fills the status and
 * message, or 0 (the failure was the image's).
 */
typedef struct ops_watch {
    int (*progress)(void *ctx, int percent); /* reports, and says whether to stop */
    int (*why)(void *ctx, ip_status *st, char *msg, size_t len); /* did it stop, and why */
    void *ctx;                  /* passed back */
} ops_watch;

/* Starts libvips for a hostile world: untrusted loaders blocked, no cache. 0 or -1. */
int ops_init(const char *argv0);
void ops_shutdown(void);

/* Releases libvips' per-thread state; call before a worker thread exits. */
void ops_thread_done(void);

/*
 * Decodes buf, runs steps in order, encodes as out says, into res.
 * watch may be NULL.
 * On success res->ip_image_res_u.ok.image holds a buffer that
 * ops_free_image_res() releases; on failure res carries the status and a
 * malloc'ed message.  Never fails to fill res.
 */
void ops_process(const ops_limits *lim, const void *buf, size_t len,
                 const ip_step *steps, unsigned nsteps, const ip_output *out,
                 const ops_watch *watch, ip_image_res *res);

/* What ops_process_file() wrote, or why it could not. */
typedef struct ops_file_res {
    ip_status status;           /* IP_OK, or why not */
    char msg[IP_MAX_MESSAGE];   /* when not */
    ip_format format;           /* the result's format */
    uint64_t size;              /* its bytes */
    u_int width, height, bands; /* read back from its header */
} ops_file_res;

/*
 * As ops_process(), from a file to a file: the image is read a piece at a
 * time and the result encoded straight into out_path (created or emptied;
 * left for the caller to remove when this fails), so neither is held whole
 * in memory.  0, or -1 with res->status and res->msg.
 */
int ops_process_file(const ops_limits *lim, const char *in_path, const char *out_path,
                     const ip_step *steps, unsigned nsteps, const ip_output *out,
                     const ops_watch *watch, ops_file_res *res);

/*
 * Checks a pipeline and output options without an image: step ranges,
 * known operations, quality, format.  0, or -1 with *st and why filled.
 */
int ops_validate(const ip_step *steps, unsigned nsteps, const ip_output *out,
                 ip_status *st, char *why, size_t whylen);

/* Reads buf's header into res (strings malloc'ed, freed by xdr_free). */
void ops_info(const ops_limits *lim, const void *buf, size_t len, ip_info_res *res);

/* Frees what ops_process() put in res. */
void ops_free_image_res(ip_image_res *res);

/* Readable and writable formats for SERVER_INFO: NULL-terminated static lists. */
const char *const *ops_input_formats(void);
const char *const *ops_output_formats(void);
const char *ops_vips_version(void);

#endif

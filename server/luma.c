/* luma.c - grayscale straight from a JPEG: libjpeg decodes only the Y (luma) channel. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>
#include <vips/vips.h>

#include "luma.h"

/* A JPEG being decoded, scanline by scanline, as the pipeline asks. */
typedef struct luma_src {
    struct jpeg_decompress_struct cinfo; /* libjpeg's state */
    struct jpeg_error_mgr pub;  /* its error handler (ours below) */
    jmp_buf jump;               /* where an error goes back to */
    char msg[JMSG_LENGTH_MAX];  /* what went wrong */
    int failed;                 /* an error happened: every later request fails */
    GMutex lock;                /* one reader of cinfo at a time */
    unsigned char *row;         /* one scanline, for requests narrower than the image */
} luma_src;

/* libjpeg reports errors through error_exit, which must not return. */
static void
on_error(j_common_ptr c)
{
    luma_src *src = c->client_data;

    c->err->format_message(c, src->msg);
    longjmp(src->jump, 1);
}

/*
 * Warnings (level -1) that mean missing data, a truncated file or a cut
 * segment, are refused, as the server's loaders (fail_on "error") refuse
 * truncation; harmless ones (extraneous bytes before a marker) are not.
 */
static void
on_message(j_common_ptr c, int level)
{
    if (level < 0 && (c->err->msg_code == JWRN_JPEG_EOF || c->err->msg_code == JWRN_HIT_MARKER))
        on_error(c);
}

static void
luma_free(luma_src *src)
{
    jpeg_destroy_decompress(&src->cinfo);
    g_mutex_clear(&src->lock);
    free(src->row);
    g_free(src);
}

static void
on_close(VipsImage *im, void *src)
{
    (void)im;
    luma_free(src);
}

/* Fills region out with the next scanlines; the sequential wrapper asks in order. */
static int
luma_generate(VipsRegion *out, void *seq, void *a, void *b, gboolean *stop)
{
    luma_src *src = a;
    const VipsRect *r = &out->valid;
    int full = r->left == 0 && r->width == out->im->Xsize;
    volatile int rc = -1;       /* volatile: set after setjmp, read after a longjmp */

    (void)seq;
    (void)b;
    (void)stop;
    g_mutex_lock(&src->lock);
    if (src->failed)
        goto done;
    if (setjmp(src->jump)) {
        src->failed = 1;
        goto done;
    }
    for (int y = r->top; y < VIPS_RECT_BOTTOM(r); y++) {
        JSAMPROW row = full ? (JSAMPROW)VIPS_REGION_ADDR(out, 0, y) : src->row;
        if ((JDIMENSION)y != src->cinfo.output_scanline) {
            snprintf(src->msg, sizeof(src->msg), "line %d asked for after line %u", y,
                     src->cinfo.output_scanline);
            src->failed = 1;
            goto done;
        }
        jpeg_read_scanlines(&src->cinfo, &row, 1);
        if (!full)
            memcpy(VIPS_REGION_ADDR(out, r->left, y), src->row + r->left, (size_t)r->width);
    }
    rc = 0;
done:
    if (rc)
        vips_error("libjpeg", "%s", src->msg);
    g_mutex_unlock(&src->lock);
    return rc;
}

/* Decodes every scanline into a memory image: any later step may read any row. */
static VipsImage *
luma_decode_all(luma_src *src, char *why, size_t whylen)
{
    struct jpeg_decompress_struct *c = &src->cinfo;
    VipsImage *volatile im = vips_image_new_memory();

    vips_image_init_fields(im, (int)c->output_width, (int)c->output_height, 1,
                           VIPS_FORMAT_UCHAR, VIPS_CODING_NONE, VIPS_INTERPRETATION_B_W,
                           1.0, 1.0);
    if (vips_image_write_prepare(im)) {
        snprintf(why, whylen, "%s", vips_error_buffer());
        vips_error_clear();
        g_object_unref(im);
        return NULL;
    }
    if (setjmp(src->jump)) {
        snprintf(why, whylen, "%s", src->msg);
        g_object_unref(im);
        return NULL;
    }
    while (c->output_scanline < c->output_height) {
        JSAMPROW row = VIPS_IMAGE_ADDR(im, 0, c->output_scanline);
        jpeg_read_scanlines(c, &row, 1);
    }
    return im;
}

VipsImage *
luma_open(const void *buf, size_t len, int stream, int *skipped, char *why, size_t whylen)
{
    luma_src *src = g_new0(luma_src, 1);
    VipsImage *im, *seq = NULL;

    *skipped = 0;
    why[0] = '\0';
    g_mutex_init(&src->lock);
    src->cinfo.err = jpeg_std_error(&src->pub);
    src->pub.error_exit = on_error;
    src->pub.emit_message = on_message;
    src->cinfo.client_data = src;
    if (setjmp(src->jump)) {
        snprintf(why, whylen, "%s", src->msg);
        luma_free(src);
        return NULL;
    }
    jpeg_create_decompress(&src->cinfo);
    src->cinfo.client_data = src;
    jpeg_mem_src(&src->cinfo, buf, (unsigned long)len);
    jpeg_read_header(&src->cinfo, TRUE);
    /* Only YCbCr has a luma channel to take alone; CMYK and others go the long way. */
    if (src->cinfo.jpeg_color_space != JCS_YCbCr || src->cinfo.num_components != 3) {
        luma_free(src);
        *skipped = 1;
        return NULL;
    }
    src->cinfo.out_color_space = JCS_GRAYSCALE;
    jpeg_start_decompress(&src->cinfo);
    if (!stream) {
        im = luma_decode_all(src, why, whylen);
        luma_free(src);
        return im;
    }
    src->row = malloc(src->cinfo.output_width);
    if (!src->row) {
        snprintf(why, whylen, "%s", "out of memory");
        luma_free(src);
        return NULL;
    }
    im = vips_image_new();
    vips_image_init_fields(im, (int)src->cinfo.output_width, (int)src->cinfo.output_height, 1,
                           VIPS_FORMAT_UCHAR, VIPS_CODING_NONE, VIPS_INTERPRETATION_B_W,
                           1.0, 1.0);
    vips_image_pipelinev(im, VIPS_DEMAND_STYLE_THINSTRIP, NULL);
    /* From here the image owns src. */
    g_signal_connect(im, "close", G_CALLBACK(on_close), src);
    if (vips_image_generate(im, NULL, luma_generate, NULL, src, NULL) ||
        vips_sequential(im, &seq, "tile_height", 16, NULL))
        snprintf(why, whylen, "%s", vips_error_buffer());
    g_object_unref(im);
    return seq;
}

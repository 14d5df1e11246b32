/* luma.c - grayscale straight from a JPEG: libjpeg decodes only the Y (luma) channel. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <vips/vips.h>

#include "luma.h"

#define LUMA_ROWS 16            /* scanlines asked of libjpeg at a time */

/* libjpeg reports errors by calling error_exit, which must not return. */
typedef struct luma_err {
    struct jpeg_error_mgr pub;  /* libjpeg's part: first */
    jmp_buf jump;               /* back to luma_decode */
    char msg[JMSG_LENGTH_MAX];  /* what went wrong */
} luma_err;

static void
on_error(j_common_ptr c)
{
    luma_err *e = (luma_err *)c->err;

    c->err->format_message(c, e->msg);
    longjmp(e->jump, 1);
}

/* A warning (level -1) means damaged data: refused, as the server's loaders refuse it. */
static void
on_message(j_common_ptr c, int level)
{
    if (level < 0)
        on_error(c);
}

static void
free_pixels(VipsImage *im, void *pixels)
{
    (void)im;
    free(pixels);
}

VipsImage *
luma_decode(const void *buf, size_t len, int *skipped, char *why, size_t whylen)
{
    struct jpeg_decompress_struct cinfo;
    luma_err err;
    unsigned char *volatile pixels = NULL;
    VipsImage *im;
    size_t w, h;

    *skipped = 0;
    why[0] = '\0';
    memset(&cinfo, 0, sizeof(cinfo));
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = on_error;
    err.pub.emit_message = on_message;
    if (setjmp(err.jump)) {
        snprintf(why, whylen, "%s", err.msg);
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        return NULL;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, buf, (unsigned long)len);
    jpeg_read_header(&cinfo, TRUE);
    /* Only YCbCr has a luma channel to take alone; CMYK and others go the long way. */
    if (cinfo.jpeg_color_space != JCS_YCbCr || cinfo.num_components != 3) {
        jpeg_destroy_decompress(&cinfo);
        *skipped = 1;
        return NULL;
    }
    cinfo.out_color_space = JCS_GRAYSCALE;
    jpeg_start_decompress(&cinfo);
    w = cinfo.output_width;
    h = cinfo.output_height;
    pixels = malloc(w * h > 0 ? w * h : 1);
    if (!pixels) {
        snprintf(why, whylen, "out of memory for %zux%zu pixels", w, h);
        jpeg_destroy_decompress(&cinfo);
        return NULL;
    }
    while (cinfo.output_scanline < h) {
        JSAMPROW rows[LUMA_ROWS];
        size_t n = h - cinfo.output_scanline < LUMA_ROWS ? h - cinfo.output_scanline : LUMA_ROWS;
        for (size_t i = 0; i < n; i++)
            rows[i] = pixels + (cinfo.output_scanline + i) * w;
        jpeg_read_scanlines(&cinfo, rows, (JDIMENSION)n);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    im = vips_image_new_from_memory(pixels, w * h, (int)w, (int)h, 1, VIPS_FORMAT_UCHAR);
    if (!im) {
        snprintf(why, whylen, "%s", "cannot wrap the pixels");
        free(pixels);
        return NULL;
    }
    /* The pixels live as long as the image. */
    g_signal_connect(im, "postclose", G_CALLBACK(free_pixels), pixels);
    im->Type = VIPS_INTERPRETATION_B_W;
    return im;
}

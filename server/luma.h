/* luma.h - grayscale straight from a JPEG's luma channel (libjpeg). */
#ifndef IMGPROC_LUMA_H
#define IMGPROC_LUMA_H

#include <stddef.h>
#include <vips/vips.h>

/*
 * Decodes only the Y channel of a YCbCr JPEG into a one-band memory image
 * (the caller unrefs it).  No chroma is decoded, upsampled or converted, so
 * this costs less than a plain decode.  Y is the JPEG standard's luma,
 * 0.299 R + 0.587 G + 0.114 B, the same grayscale step_grayscale computes
 * for other images.
 *
 * NULL with *skipped set when the JPEG is not YCbCr (use the general
 * path), or NULL with why filled when it is damaged: libjpeg's warnings
 * count as errors, as they do for the server's loaders.
 */
VipsImage *luma_decode(const void *buf, size_t len, int *skipped, char *why, size_t whylen);

#endif

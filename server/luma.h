/* luma.h - grayscale straight from a JPEG's luma channel (libjpeg). */
#ifndef IMGPROC_LUMA_H
#define IMGPROC_LUMA_H

#include <stddef.h>
#include <vips/vips.h>

/*
 * Opens a YCbCr JPEG as a one-band image of its Y channel (the caller
 * unrefs it).  Only Y is decoded, a few scanlines at a time as the pipeline
 * asks (sequential access), so no chroma is decoded, upsampled or
 * converted, and decoding overlaps encoding as in libvips' own loaders.  Y is
 * the JPEG standard's luma, 0.299 R + 0.587 G + 0.114 B, the same gray that
 * step_grayscale computes for other images.  buf must outlive the image.
 *
 * NULL with *skipped set when the JPEG is not YCbCr (use the general path),
 * or NULL with why filled when its header is damaged.  Damage found later
 * fails the pipeline with libjpeg's message; a truncated file counts as
 * damage, as it does for the server's loaders.
 */
VipsImage *luma_open(const void *buf, size_t len, int *skipped, char *why, size_t whylen);

#endif

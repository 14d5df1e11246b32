/* luma.h - grayscale straight from a JPEG's luma channel (libjpeg). */
#ifndef IMGPROC_LUMA_H
#define IMGPROC_LUMA_H

#include <stddef.h>
#include <vips/vips.h>

/*
 * Opens a YCbCr JPEG as a one-band image of its Y channel (the caller
 * unrefs it).  Only Y is decoded, so no chroma is decoded, upsampled or
 * converted.  With stream set, a few scanlines are decoded at a time as the
 * pipeline asks, and decoding overlaps encoding; the pipeline must then ask
 * for rows strictly top to bottom, each once (steps that map row y to row y
 * only).  Otherwise the whole channel is decoded into memory (one byte per
 * pixel) before this returns, and any step may read it in any order.  Y is
 * the JPEG standard's luma, 0.299 R + 0.587 G + 0.114 B, the same gray that
 * step_grayscale computes for other images.  buf must outlive the image.
 *
 * NULL with *skipped set when the JPEG is not YCbCr (use the general path),
 * or NULL with why filled when its header is damaged.  Damage found later
 * fails the pipeline with libjpeg's message; a truncated file counts as
 * damage, as it does for the server's loaders.
 */
VipsImage *luma_open(const void *buf, size_t len, int stream, int *skipped,
                     char *why, size_t whylen);

#endif

/* test_ops.c - the image operations in-process, on a real photograph from the
 * corpus (make corpus), checked against what libvips itself reads and computes. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <vips/vips.h>

#include "ops.h"
#include "proto.h"

static const ops_limits limits = { 150000000, IP_MAX_IMAGE, OPS_MAX_BLUR_WORK };
static char *photo;             /* the corpus photograph's bytes */
static size_t photo_len;
static VipsImage *reference;    /* the same photograph, decoded by libvips here */

/* Runs steps (--steps text) on data into res, PNG out. */
static void
run(const char *steps_text, const void *data, size_t len, ip_image_res *res)
{
    ip_step steps[IP_MAX_STEPS];
    ip_output out = { IP_FMT_PNG, 0, FALSE };
    unsigned n;
    char why[256];

    if (proto_pipeline_parse(steps_text, steps, IP_MAX_STEPS, &n, why, sizeof(why)))
        fail_msg("'%s': %s", steps_text, why);
    ops_process(&limits, data, len, steps, n, &out, NULL, res);
}

/* The result as libvips reads it (caller unrefs). */
static VipsImage *
decoded(const ip_image_res *res)
{
    VipsImage *im;

    assert_int_equal(res->status, IP_OK);
    im = vips_image_new_from_buffer(res->ip_image_res_u.ok.image.ip_image_val,
                                    res->ip_image_res_u.ok.image.ip_image_len, "", NULL);
    assert_non_null(im);
    return im;
}

static double
band_mean(VipsImage *im, int band)
{
    VipsImage *b;
    double mean;

    assert_int_equal(vips_extract_band(im, &b, band, NULL), 0);
    assert_int_equal(vips_avg(b, &mean, NULL), 0);
    g_object_unref(b);
    return mean;
}

/* Grayscale: one band, the photograph's size, reported as it is. */
static void
grayscale_of_a_photo(void **state)
{
    ip_image_res res;
    VipsImage *im;

    (void)state;
    run("grayscale", photo, photo_len, &res);
    im = decoded(&res);
    assert_int_equal(vips_image_get_width(im), vips_image_get_width(reference));
    assert_int_equal(vips_image_get_height(im), vips_image_get_height(reference));
    assert_int_equal(vips_image_get_bands(im), 1);
    assert_int_equal(res.ip_image_res_u.ok.bands, 1);
    assert_int_equal(res.ip_image_res_u.ok.width, (u_int)vips_image_get_width(reference));
    g_object_unref(im);
    ops_free_image_res(&res);
}

/* extract_band=1 is the photograph's green band, level for level. */
static void
extract_band_is_the_band(void **state)
{
    ip_image_res res;
    VipsImage *im;

    (void)state;
    run("extract_band=1", photo, photo_len, &res);
    im = decoded(&res);
    assert_int_equal(vips_image_get_bands(im), 1);
    assert_true(fabs(band_mean(im, 0) - band_mean(reference, 1)) < 1e-9);
    g_object_unref(im);
    ops_free_image_res(&res);
    run("extract_band=2:2", photo, photo_len, &res);    /* a 3-band photograph */
    assert_int_equal(res.status, IP_EINVAL);
    assert_non_null(strstr(res.ip_image_res_u.message, "3-band"));
    ops_free_image_res(&res);
}

/* gamma=2.2 lifts the mid-tones: every band's mean rises; 1 changes nothing. */
static void
gamma_brightens(void **state)
{
    ip_image_res res;
    VipsImage *im;

    (void)state;
    run("gamma=2.2", photo, photo_len, &res);
    im = decoded(&res);
    for (int b = 0; b < 3; b++)
        assert_true(band_mean(im, b) > band_mean(reference, b) + 5);
    g_object_unref(im);
    ops_free_image_res(&res);
    run("gamma=1", photo, photo_len, &res);
    im = decoded(&res);
    for (int b = 0; b < 3; b++)
        assert_true(fabs(band_mean(im, b) - band_mean(reference, b)) < 0.5);
    g_object_unref(im);
    ops_free_image_res(&res);
}

/* What the caller did wrong, or the image, comes back as a status. */
static void
refusals(void **state)
{
    ip_image_res res;
    ops_limits small = { 1000, IP_MAX_IMAGE, OPS_MAX_BLUR_WORK };
    ip_step step = { .op = IP_OP_GRAYSCALE };
    ip_output out = { IP_FMT_PNG, 0, FALSE };

    (void)state;
    run("crop=100x100+100000+0", photo, photo_len, &res);
    assert_int_equal(res.status, IP_EINVAL);
    ops_free_image_res(&res);
    run("blur=1000", photo, photo_len, &res);          /* sigma x megapixels over 2000 */
    assert_int_equal(res.status, IP_ETOOBIG);
    ops_free_image_res(&res);
    run("grayscale", photo, photo_len / 2, &res);       /* the photograph cut in half */
    assert_int_equal(res.status, IP_ECORRUPT);
    ops_free_image_res(&res);
    run("grayscale", "not an image at all", 19, &res);
    assert_int_equal(res.status, IP_EFORMAT);
    ops_free_image_res(&res);
    ops_process(&small, photo, photo_len, &step, 1, &out, NULL, &res);
    assert_int_equal(res.status, IP_ETOOBIG);
    ops_free_image_res(&res);
}

/* A task's way, file to file: the photograph in, its grayscale PNG out, and
 * a result over the limit stopped as it is written, not once it is whole. */
static void
file_to_file(void **state)
{
    char dir[] = "/tmp/imgproc-test-ops.XXXXXX", in[4096], outp[4096];
    ip_step step = { .op = IP_OP_GRAYSCALE };
    ip_output out = { IP_FMT_PNG, 0, FALSE };
    ops_limits small_result = { 150000000, 100000, OPS_MAX_BLUR_WORK };
    ops_file_res res;
    VipsImage *im;
    FILE *f;
    struct stat st;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(in, sizeof(in), "%s/in.jpg", dir);
    snprintf(outp, sizeof(outp), "%s/out", dir);
    assert_non_null(f = fopen(in, "wb"));
    assert_int_equal(fwrite(photo, 1, photo_len, f), photo_len);
    fclose(f);

    assert_int_equal(ops_process_file(&limits, in, outp, &step, 1, &out, NULL, &res), 0);
    assert_int_equal(res.status, IP_OK);
    assert_int_equal(res.format, IP_FMT_PNG);
    assert_int_equal(stat(outp, &st), 0);
    assert_int_equal((uint64_t)st.st_size, res.size);
    assert_non_null(im = vips_image_new_from_file(outp, NULL));
    assert_int_equal(im->Xsize, reference->Xsize);
    assert_int_equal(im->Ysize, reference->Ysize);
    assert_int_equal(im->Bands, 1);
    assert_int_equal(res.bands, 1);
    g_object_unref(im);

    /* The grayscale PNG is about 2 MB: over a 100000-byte limit. */
    assert_int_equal(ops_process_file(&small_result, in, outp, &step, 1, &out, NULL, &res),
                     -1);
    assert_int_equal(res.status, IP_ETOOBIG);
    assert_non_null(strstr(res.msg, "100000"));
    assert_int_equal(stat(outp, &st), 0);
    assert_true(st.st_size <= 100000);

    unlink(in);
    unlink(outp);
    rmdir(dir);
}

int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(grayscale_of_a_photo),
        cmocka_unit_test(extract_band_is_the_band),
        cmocka_unit_test(gamma_brightens),
        cmocka_unit_test(refusals),
        cmocka_unit_test(file_to_file),
    };
    const char *corpus = getenv("IMGPROC_CORPUS"), *cache = getenv("XDG_CACHE_HOME");
    char path[4096];
    gchar *data;
    gsize len;

    (void)argc;
    if (ops_init(argv[0]))
        return 1;
    if (corpus && *corpus)
        snprintf(path, sizeof(path), "%s/jpeg-photo-ladybird.jpg", corpus);
    else if (cache && *cache)
        snprintf(path, sizeof(path), "%s/imgproc/corpus/jpeg-photo-ladybird.jpg", cache);
    else
        snprintf(path, sizeof(path), "%s/.cache/imgproc/corpus/jpeg-photo-ladybird.jpg",
                 getenv("HOME") ? getenv("HOME") : ".");
    if (!g_file_get_contents(path, &data, &len, NULL)) {
        printf("Bail out! the corpus photograph %s is missing: run 'make corpus'\n", path);
        return 1;
    }
    photo = data;
    photo_len = len;
    reference = vips_image_new_from_file(path, NULL);
    if (!reference) {
        printf("Bail out! libvips cannot read %s\n", path);
        return 1;
    }
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}

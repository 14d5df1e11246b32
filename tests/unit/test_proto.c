/* test_proto.c - unit tests for the shared protocol helpers and the XDR bounds. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proto.h"

static void
pipeline_parses_values(void **state)
{
    ip_step s[IP_MAX_STEPS];
    unsigned n = 0;
    char why[128];

    (void)state;
    assert_int_equal(proto_pipeline_parse("blur=5,grayscale,resize=800x600", s,
                                          IP_MAX_STEPS, &n, why, sizeof(why)), 0);
    assert_int_equal(n, 3);
    assert_int_equal(s[0].op, IP_OP_BLUR);
    assert_true(s[0].ip_step_u.sigma == 5.0);
    assert_int_equal(s[1].op, IP_OP_GRAYSCALE);
    assert_int_equal(s[2].op, IP_OP_RESIZE);
    assert_int_equal(s[2].ip_step_u.resize.width, 800);
    assert_int_equal(s[2].ip_step_u.resize.height, 600);
    assert_int_equal(s[2].ip_step_u.resize.fit, IP_FIT_INSIDE);
    assert_false(s[2].ip_step_u.resize.enlarge);

    assert_int_equal(proto_pipeline_parse("resize=300x:enlarge,crop=10x20+3+4,"
                                          "rotate=45:#ff000080,threshold,sharpen=2",
                                          s, IP_MAX_STEPS, &n, why, sizeof(why)), 0);
    assert_int_equal(n, 5);
    assert_int_equal(s[0].ip_step_u.resize.width, 300);
    assert_int_equal(s[0].ip_step_u.resize.height, IP_MAX_DIMENSION);
    assert_true(s[0].ip_step_u.resize.enlarge);
    assert_int_equal(s[1].ip_step_u.crop.width, 10);
    assert_int_equal(s[1].ip_step_u.crop.height, 20);
    assert_int_equal(s[1].ip_step_u.crop.left, 3);
    assert_int_equal(s[1].ip_step_u.crop.top, 4);
    assert_true(s[2].ip_step_u.rotate.angle == 45.0);
    assert_int_equal(s[2].ip_step_u.rotate.background.r, 255);
    assert_int_equal(s[2].ip_step_u.rotate.background.a, 128);
    assert_true(s[3].ip_step_u.level == 128.0);
    assert_true(s[4].ip_step_u.sharpen_sigma == 2.0);
}

static void
pipeline_refuses_bad_syntax(void **state)
{
    static const char *const bad[] = {
        "", "blur", "blur=x", "blur=nan", "wobble", "grayscale=3", "resize=0x10",
        "resize=x", "resize=10x10:sideways", "resize=10x:cover", "crop=10x10",
        "rotate=inf", "rotate=10:mauve", "blur=1,,", "resize=100000000x1",
    };
    ip_step s[IP_MAX_STEPS];
    unsigned n;
    char why[128];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why[0] = '\0';
        if (proto_pipeline_parse(bad[i], s, IP_MAX_STEPS, &n, why, sizeof(why)) == 0)
            fail_msg("'%s' was accepted", bad[i]);
        assert_true(why[0] != '\0');
    }
}

/* The table is the one source: every operation of imgproc.x has a row whose
 * example parses, passes its own range check, and comes back the same from
 * its text form. */
static void
every_op_round_trips(void **state)
{
    (void)state;
    for (int op = IP_OP_GRAYSCALE; op <= IP_OP_EXTRACT_BAND; op++)
        if (!proto_op_by_num((ip_op)op))
            fail_msg("operation %d of imgproc.x has no row in proto_ops", op);
    for (size_t i = 0; i < proto_nops; i++) {
        const proto_op *op = &proto_ops[i];
        ip_step a, b;
        unsigned n;
        char why[256], text[256], syntax[256];

        proto_op_syntax(op, syntax, sizeof(syntax));
        if (strncmp(syntax, op->name, strlen(op->name)) != 0)
            fail_msg("%s: its syntax '%s' does not start with its name", op->name, syntax);
        for (int k = 0; k < op->nparams; k++)
            assert_true(op->params[k].offset + sizeof(double) <= sizeof(ip_step) ||
                        op->params[k].type != PT_DOUBLE);
        if (proto_pipeline_parse(op->example, &a, 1, &n, why, sizeof(why)))
            fail_msg("%s: its example '%s' does not parse: %s", op->name, op->example, why);
        assert_int_equal(a.op, op->op);
        if (proto_step_check(&a, why, sizeof(why)))
            fail_msg("%s: its example is out of range: %s", op->name, why);
        proto_step_format(&a, text, sizeof(text));
        if (proto_pipeline_parse(text, &b, 1, &n, why, sizeof(why)))
            fail_msg("%s: its text form '%s' does not parse: %s", op->name, text, why);
        if (memcmp(&a, &b, sizeof(a)) != 0)
            fail_msg("%s: '%s' -> '%s' is another step", op->name, op->example, text);
    }
}

/* The two operations added through the table alone: gamma and extract_band. */
static void
table_added_ops(void **state)
{
    static const char *const bad[] = {
        "gamma=x", "gamma=1:2", "extract_band", "extract_band=a", "extract_band=1:2:3",
    };
    static const char *const out_of_range[] = {
        "gamma=0", "gamma=10.5", "gamma=-1", "extract_band=64", "extract_band=0:0",
        "extract_band=0:65",
    };
    ip_step s;
    unsigned n;
    char why[256], text[64];

    (void)state;
    assert_int_equal(proto_pipeline_parse("gamma", &s, 1, &n, why, sizeof(why)), 0);
    assert_true(s.op == IP_OP_GAMMA && s.ip_step_u.gamma == 2.4);
    assert_int_equal(proto_pipeline_parse("extract_band=2", &s, 1, &n, why, sizeof(why)), 0);
    assert_true(s.ip_step_u.extract.band == 2 && s.ip_step_u.extract.n == 1);
    proto_step_format(&s, text, sizeof(text));
    assert_string_equal(text, "extract_band=2:1");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (proto_pipeline_parse(bad[i], &s, 1, &n, why, sizeof(why)) == 0)
            fail_msg("'%s' was accepted", bad[i]);
    for (size_t i = 0; i < sizeof(out_of_range) / sizeof(out_of_range[0]); i++) {
        if (proto_pipeline_parse(out_of_range[i], &s, 1, &n, why, sizeof(why)))
            fail_msg("'%s' does not parse: %s", out_of_range[i], why);
        if (proto_step_check(&s, why, sizeof(why)) == 0)
            fail_msg("'%s' passed the range check", out_of_range[i]);
    }
    /* The text form keeps every digit: a third reads back as the same double. */
    s.op = IP_OP_BLUR;
    s.ip_step_u.sigma = 1.0 / 3.0;
    proto_step_format(&s, text, sizeof(text));
    assert_int_equal(proto_pipeline_parse(text, &s, 1, &n, why, sizeof(why)), 0);
    assert_true(s.ip_step_u.sigma == 1.0 / 3.0);
    s.ip_step_u.sigma = 0.1;
    proto_step_format(&s, text, sizeof(text));
    assert_string_equal(text, "blur=0.1");
}

static void
pipeline_caps_length(void **state)
{
    char text[512] = "flip";
    ip_step s[IP_MAX_STEPS];
    unsigned n;
    char why[128];

    (void)state;
    for (int i = 1; i < IP_MAX_STEPS; i++)
        strcat(text, ",flip");
    assert_int_equal(proto_pipeline_parse(text, s, IP_MAX_STEPS, &n, why, sizeof(why)), 0);
    assert_int_equal(n, IP_MAX_STEPS);
    strcat(text, ",flop");
    assert_int_equal(proto_pipeline_parse(text, s, IP_MAX_STEPS, &n, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "more than 16"));
}

static void
step_check_ranges(void **state)
{
    ip_step s;
    char why[128];

    (void)state;
    memset(&s, 0, sizeof(s));
    s.op = IP_OP_BLUR;
    s.ip_step_u.sigma = 0;
    assert_int_equal(proto_step_check(&s, why, sizeof(why)), -1);
    s.ip_step_u.sigma = -1;
    assert_int_equal(proto_step_check(&s, why, sizeof(why)), -1);
    s.ip_step_u.sigma = 2.5;
    assert_int_equal(proto_step_check(&s, why, sizeof(why)), 0);

    s.op = IP_OP_ROTATE;
    s.ip_step_u.rotate.angle = NAN;
    assert_int_equal(proto_step_check(&s, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "finite"));
    s.ip_step_u.rotate.angle = 33;
    s.ip_step_u.rotate.background.g = 256;
    assert_int_equal(proto_step_check(&s, why, sizeof(why)), -1);

    memset(&s, 0, sizeof(s));
    s.op = IP_OP_RESIZE;
    s.ip_step_u.resize.width = 0;
    s.ip_step_u.resize.height = 10;
    assert_int_equal(proto_step_check(&s, why, sizeof(why)), -1);
    s.ip_step_u.resize.width = 10;
    s.ip_step_u.resize.fit = (ip_fit)7;
    assert_int_equal(proto_step_check(&s, why, sizeof(why)), -1);

    s.op = (ip_op)99;
    assert_int_equal(proto_step_check(&s, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "unknown step 99"));
}

/* JSON strings: escapes, UTF-8 kept, bytes that are not UTF-8 replaced. */
static void
json_strings(void **state)
{
    static const struct { const char *in, *out; } cases[] = {
        { "plain", "\"plain\"" },
        { "a\"b\\c\nd\te", "\"a\\\"b\\\\c\\nd\\u0009e\"" },
        { "caf\xc3\xa9 \xe2\x82\xac", "\"caf\xc3\xa9 \xe2\x82\xac\"" },  /* kept */
        { "caf\xe9.jpg", "\"caf\\ufffd.jpg\"" },                    /* Latin-1 */
        { "\xc0\xaf", "\"\\ufffd\\ufffd\"" },                          /* overlong */
        { "\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"" },                  /* a surrogate */
    };
    char *buf;
    size_t len;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        FILE *f = open_memstream(&buf, &len);
        assert_non_null(f);
        proto_json_string(f, cases[i].in);
        fclose(f);
        assert_string_equal(buf, cases[i].out);
        free(buf);
    }
}

static void
names_and_colours(void **state)
{
    ip_colour c;
    ip_format f;

    (void)state;
    assert_int_equal(proto_format_from_path("a/b.JPG"), IP_FMT_JPEG);
    assert_int_equal(proto_format_from_path("x.tif"), IP_FMT_TIFF);
    assert_int_equal(proto_format_from_path("dir.png/noext"), IP_FMT_AUTO);
    assert_int_equal(proto_format_parse("webp", &f), 0);
    assert_int_equal(f, IP_FMT_WEBP);
    assert_int_equal(proto_format_parse("bmp", &f), -1);
    assert_string_equal(proto_status_name(IP_ETOOBIG), "too-large");
    assert_string_equal(proto_status_name((ip_status)1234), "unknown-status");

    assert_int_equal(proto_colour_parse("#f80", &c), 0);
    assert_int_equal(c.r, 255);
    assert_int_equal(c.g, 136);
    assert_int_equal(c.b, 0);
    assert_int_equal(c.a, 255);
    assert_int_equal(proto_colour_parse("transparent", &c), 0);
    assert_int_equal(c.a, 0);
    assert_int_equal(proto_colour_parse("#12345", &c), -1);
    assert_int_equal(proto_colour_parse("#gg0000", &c), -1);
}

/* Encodes args into buf with XDR; returns the bytes used. */
static u_int
encode_process(ip_process_args *a, char *buf, u_int len)
{
    XDR x;
    u_int used;

    xdrmem_create(&x, buf, len, XDR_ENCODE);
    assert_true(xdr_ip_process_args(&x, a));
    used = xdr_getpos(&x);
    xdr_destroy(&x);
    return used;
}

static void
xdr_round_trip(void **state)
{
    char img[] = "not really an image";
    ip_step steps[2];
    ip_process_args in, out;
    char buf[1024];
    u_int used;
    XDR x;

    (void)state;
    memset(&in, 0, sizeof(in));
    memset(steps, 0, sizeof(steps));
    steps[0].op = IP_OP_ROTATE;
    steps[0].ip_step_u.rotate.angle = 12.5;
    steps[0].ip_step_u.rotate.background = (ip_colour){ 1, 2, 3, 4 };
    steps[1].op = IP_OP_BLUR;
    steps[1].ip_step_u.sigma = 3;
    in.image.ip_image_val = img;
    in.image.ip_image_len = sizeof(img);
    in.steps.steps_val = steps;
    in.steps.steps_len = 2;
    in.output.format = IP_FMT_WEBP;
    in.output.quality = 70;
    in.output.strip = TRUE;
    used = encode_process(&in, buf, sizeof(buf));

    memset(&out, 0, sizeof(out));
    xdrmem_create(&x, buf, used, XDR_DECODE);
    assert_true(xdr_ip_process_args(&x, &out));
    xdr_destroy(&x);
    assert_int_equal(out.image.ip_image_len, sizeof(img));
    assert_memory_equal(out.image.ip_image_val, img, sizeof(img));
    assert_int_equal(out.steps.steps_len, 2);
    assert_true(out.steps.steps_val[0].ip_step_u.rotate.angle == 12.5);
    assert_int_equal(out.steps.steps_val[0].ip_step_u.rotate.background.b, 3);
    assert_true(out.steps.steps_val[1].ip_step_u.sigma == 3.0);
    assert_int_equal(out.output.format, IP_FMT_WEBP);
    assert_int_equal(out.output.quality, 70);
    assert_true(out.output.strip);
    xdr_free((xdrproc_t)xdr_ip_process_args, (char *)&out);
}

/* The .x bounds are enforced while decoding: hostile lengths never allocate. */
static void
xdr_bounds_refuse(void **state)
{
    ip_step steps[IP_MAX_STEPS + 1];
    ip_process_args in, out;
    char buf[4096];
    uint32_t raw[2];
    ip_image im;
    u_int used;
    XDR x;

    (void)state;
    memset(steps, 0, sizeof(steps));
    for (int i = 0; i <= IP_MAX_STEPS; i++)
        steps[i].op = IP_OP_FLIP;
    memset(&in, 0, sizeof(in));
    in.steps.steps_val = steps;
    in.steps.steps_len = IP_MAX_STEPS;
    used = encode_process(&in, buf, sizeof(buf));
    /* Patch the step count (after the empty image's length word) to 17. */
    raw[0] = htonl(IP_MAX_STEPS + 1);
    memcpy(buf + 4, raw, 4);
    memset(&out, 0, sizeof(out));
    xdrmem_create(&x, buf, used + 8, XDR_DECODE);
    assert_false(xdr_ip_process_args(&x, &out));
    xdr_destroy(&x);
    xdr_free((xdrproc_t)xdr_ip_process_args, (char *)&out);

    /* An image claiming one byte more than IP_MAX_IMAGE. */
    raw[0] = htonl((uint32_t)IP_MAX_IMAGE + 1);
    raw[1] = 0;
    memset(&im, 0, sizeof(im));
    xdrmem_create(&x, (char *)raw, sizeof(raw), XDR_DECODE);
    assert_false(xdr_ip_image(&x, &im));
    assert_null(im.ip_image_val);
    xdr_destroy(&x);

    /* An unknown operation decodes (default arm), so the server can name it. */
    raw[0] = htonl(99);
    memset(&steps[0], 0, sizeof(steps[0]));
    xdrmem_create(&x, (char *)raw, 4, XDR_DECODE);
    assert_true(xdr_ip_step(&x, &steps[0]));
    assert_int_equal(steps[0].op, 99);
    xdr_destroy(&x);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pipeline_parses_values),
        cmocka_unit_test(pipeline_refuses_bad_syntax),
        cmocka_unit_test(pipeline_caps_length),
        cmocka_unit_test(every_op_round_trips),
        cmocka_unit_test(table_added_ops),
        cmocka_unit_test(step_check_ranges),
        cmocka_unit_test(names_and_colours),
        cmocka_unit_test(json_strings),
        cmocka_unit_test(xdr_round_trip),
        cmocka_unit_test(xdr_bounds_refuse),
    };

    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}

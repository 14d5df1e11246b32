/*
 * fuzz_steps.c - libFuzzer harness for the --steps parser (common/pipeline.c):
 * any text parses or fails with a reason, and a parsed pipeline written
 * back with proto_step_format parses again to the same steps.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

/*
 * proto_step_format writes numbers with %g (six significant digits), so
 * blur=0.1234567 comes back as 0.123457: numbers are compared to that
 * precision, unless built with -DFUZZ_EXACT_NUMBERS (then they must come
 * back bit for bit; see tests/fuzz/found/README.md).
 */
#ifdef FUZZ_EXACT_NUMBERS
#define NUMBER_TOLERANCE 0.0
#else
#define NUMBER_TOLERANCE 5e-6   /* what six significant digits guarantee, relatively */
#endif

#define WHY_LEN 256             /* as the client's buffers */
#define TEXT_LEN 4096           /* room for IP_MAX_STEPS formatted steps */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fail(const char *what, const char *text, const char *again)
{
    fprintf(stderr, "fuzz_steps: %s\n  parsed:    '%s'\n  formatted: '%s'\n",
            what, text, again);
    abort();
}

static int
same_number(double a, double b)
{
    if (a == b)
        return 1;
    return fabs(a - b) <= NUMBER_TOLERANCE * fmax(fabs(a), fabs(b));
}

/* Are two steps the same operation with the same parameters? */
static int
same_step(const ip_step *a, const ip_step *b)
{
    if (a->op != b->op)
        return 0;
    switch (a->op) {
    case IP_OP_RESIZE:
        return memcmp(&a->ip_step_u.resize, &b->ip_step_u.resize,
                      sizeof(a->ip_step_u.resize)) == 0;
    case IP_OP_ROTATE:
        return same_number(a->ip_step_u.rotate.angle, b->ip_step_u.rotate.angle) &&
               memcmp(&a->ip_step_u.rotate.background, &b->ip_step_u.rotate.background,
                      sizeof(ip_colour)) == 0;
    case IP_OP_BLUR:
        return same_number(a->ip_step_u.sigma, b->ip_step_u.sigma);
    case IP_OP_THRESHOLD:
        return same_number(a->ip_step_u.level, b->ip_step_u.level);
    case IP_OP_SHARPEN:
        return same_number(a->ip_step_u.sharpen_sigma, b->ip_step_u.sharpen_sigma);
    case IP_OP_CROP:
        return memcmp(&a->ip_step_u.crop, &b->ip_step_u.crop,
                      sizeof(a->ip_step_u.crop)) == 0;
    default:
        return 1;
    }
}

/* The whole pipeline in --steps syntax, as a client would write it. */
static void
format_all(const ip_step *steps, unsigned n, char *buf, size_t len)
{
    buf[0] = '\0';
    for (unsigned i = 0; i < n; i++) {
        char one[256];
        size_t used = strlen(buf);
        proto_step_format(&steps[i], one, sizeof(one));
        snprintf(buf + used, len - used, "%s%s", i ? "," : "", one);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Heap arrays of the exact size: ASan sees one step or byte too many. */
    ip_step *steps = malloc(IP_MAX_STEPS * sizeof(ip_step));
    ip_step *again = malloc(IP_MAX_STEPS * sizeof(ip_step));
    char *text = malloc(size + 1);
    char *why = malloc(WHY_LEN);
    char formatted[TEXT_LEN], reformatted[TEXT_LEN];
    unsigned n = 0, m = 0;

    if (!steps || !again || !text || !why)
        abort();
    memcpy(text, data, size);
    text[size] = '\0';
    why[0] = '\0';
    if (proto_pipeline_parse(text, steps, IP_MAX_STEPS, &n, why, WHY_LEN) != 0) {
        /* A refusal always says why: the client prints it as it is. */
        if (!why[0] || strnlen(why, WHY_LEN) == WHY_LEN)
            fail("refused without a reason", text, "");
        goto cleanup;
    }
    if (n < 1 || n > IP_MAX_STEPS)
        fail("step count out of range", text, "");

    /* Written back in --steps syntax... */
    format_all(steps, n, formatted, sizeof(formatted));
    /* ...it parses again, to the same steps... */
    if (proto_pipeline_parse(formatted, again, IP_MAX_STEPS, &m, why, WHY_LEN) != 0)
        fail(why, text, formatted);
    if (m != n)
        fail("another number of steps", text, formatted);
    for (unsigned i = 0; i < n; i++)
        if (!same_step(&steps[i], &again[i]))
            fail("another step", text, formatted);
    /* ...which are written the same way: the text is a fixed point. */
    format_all(again, m, reformatted, sizeof(reformatted));
    if (strcmp(formatted, reformatted) != 0)
        fail("formatted differently the second time", formatted, reformatted);
    /* The range check takes any parsed step without tripping (ASan, UBSan). */
    for (unsigned i = 0; i < n; i++)
        proto_step_check(&steps[i], why, WHY_LEN);

cleanup:
    free(steps);
    free(again);
    free(text);
    free(why);
    return 0;
}

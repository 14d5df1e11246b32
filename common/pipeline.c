/* pipeline.c - the table of pipeline operations: ranges, the --steps syntax, the text form. */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

static int parse_resize(char *arg, ip_step *s, char *why, size_t len);
static void format_resize(const ip_step *s, char *buf, size_t len);
static int parse_crop(char *arg, ip_step *s, char *why, size_t len);
static void format_crop(const ip_step *s, char *buf, size_t len);

#define AT(field) offsetof(ip_step, ip_step_u.field)

static const char *const fit_names[] = { "inside", "cover", "fill" };
#define DIM (double)IP_MAX_DIMENSION

const proto_op proto_ops[PROTO_NOPS] = {
    { IP_OP_GRAYSCALE, "grayscale", "to one luminance band (alpha kept)", "grayscale",
      0, { { 0 } }, NULL, NULL, NULL },
    { IP_OP_RESIZE, "resize", "scale into a width x height box", "resize=800x600", 4,
      { { "width", PT_UINT, 1, DIM, 0, 1, 0, AT(resize.width), "box width in pixels" },
        { "height", PT_UINT, 1, DIM, 0, 1, 0, AT(resize.height), "box height in pixels" },
        { "fit", PT_FIT, 0, 2, 0, 0, IP_FIT_INSIDE, AT(resize.fit),
          "inside (default), cover or fill" },
        { "enlarge", PT_BOOL, 0, 1, 0, 0, 0, AT(resize.enlarge), "allow scaling up" } },
      "resize=WxH[:inside|cover|fill][:enlarge]  (W or H may be left out)",
      parse_resize, format_resize },
    { IP_OP_ROTATE, "rotate", "rotate clockwise; the canvas grows to hold the result",
      "rotate=90", 2,
      { { "angle", PT_DOUBLE, -1e6, 1e6, 0, 1, 0, AT(rotate.angle),
          "degrees clockwise; multiples of 90 are exact" },
        { "background", PT_COLOUR, 0, 255, 0, 0, 0, AT(rotate.background),
          "corner fill, e.g. white or #rrggbbaa (default black)" } },
      NULL, NULL, NULL },
    { IP_OP_BLUR, "blur", "Gaussian blur", "blur=2.5", 1,
      { { "sigma", PT_DOUBLE, 0, 1000, 1, 1, 0, AT(sigma), "standard deviation in pixels" } },
      NULL, NULL, NULL },
    { IP_OP_THRESHOLD, "threshold", "black and white: luminance >= level is white",
      "threshold=100", 1,
      { { "level", PT_DOUBLE, 0, 255, 0, 0, 128, AT(level), "luminance level" } },
      NULL, NULL, NULL },
    { IP_OP_CROP, "crop", "keep a rectangle", "crop=100x80+10+20", 4,
      { { "width", PT_UINT, 1, DIM, 0, 1, 0, AT(crop.width), "columns kept" },
        { "height", PT_UINT, 1, DIM, 0, 1, 0, AT(crop.height), "rows kept" },
        { "left", PT_UINT, 0, DIM, 0, 1, 0, AT(crop.left), "first column kept" },
        { "top", PT_UINT, 0, DIM, 0, 1, 0, AT(crop.top), "first row kept" } },
      "crop=WxH+LEFT+TOP", parse_crop, format_crop },
    { IP_OP_FLIP, "flip", "mirror top to bottom", "flip", 0, { { 0 } }, NULL, NULL, NULL },
    { IP_OP_FLOP, "flop", "mirror left to right", "flop", 0, { { 0 } }, NULL, NULL, NULL },
    { IP_OP_SHARPEN, "sharpen", "unsharp mask", "sharpen=2", 1,
      { { "sigma", PT_DOUBLE, 0, 100, 1, 0, 1, AT(sharpen_sigma), "mask radius in pixels" } },
      NULL, NULL, NULL },
    { IP_OP_AUTOROT, "autorot", "apply the EXIF orientation, then clear it", "autorot",
      0, { { 0 } }, NULL, NULL, NULL },
    { IP_OP_GAMMA, "gamma", "brighten the mid-tones (v^(1/exponent)), or darken them "
      "with an exponent below 1", "gamma=2.2", 1,
      { { "exponent", PT_DOUBLE, 0, 10, 1, 0, 2.4, AT(gamma), "gamma exponent" } },
      NULL, NULL, NULL },
    { IP_OP_EXTRACT_BAND, "extract_band", "keep some bands: one channel of a colour image",
      "extract_band=1", 2,
      { { "band", PT_UINT, 0, IP_MAX_BANDS - 1, 0, 1, 0, AT(extract.band),
          "first band kept, from 0" },
        { "n", PT_UINT, 1, IP_MAX_BANDS, 0, 0, 1, AT(extract.n), "how many bands" } },
      NULL, NULL, NULL },
};
const size_t proto_nops = PROTO_NOPS;
_Static_assert(sizeof(proto_ops) / sizeof(proto_ops[0]) == PROTO_NOPS,
               "PROTO_NOPS counts the rows of proto_ops");

const proto_op *
proto_op_by_num(ip_op op)
{
    for (size_t i = 0; i < proto_nops; i++)
        if (proto_ops[i].op == op)
            return &proto_ops[i];
    return NULL;
}

const proto_op *
proto_op_by_name(const char *name)
{
    if (strcmp(name, "gray") == 0 || strcmp(name, "grey") == 0 ||
        strcmp(name, "greyscale") == 0)
        name = "grayscale";
    for (size_t i = 0; i < proto_nops; i++)
        if (strcmp(proto_ops[i].name, name) == 0)
            return &proto_ops[i];
    return NULL;
}

const char *
proto_type_name(proto_type t)
{
    static const char *const names[] = {
        [PT_DOUBLE] = "double", [PT_UINT] = "uint", [PT_FIT] = "enum", [PT_BOOL] = "bool",
        [PT_COLOUR] = "colour",
    };

    return (unsigned)t < sizeof(names) / sizeof(names[0]) ? names[t] : "?";
}

static int
fail(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
fail(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
    return -1;
}

/* A double as short as it can be written and still read back the same. */
static void
format_double(char *buf, size_t len, double d)
{
    snprintf(buf, len, "%.15g", d);
    if (strtod(buf, NULL) != d)
        snprintf(buf, len, "%.17g", d);
}

/* The parameter p of step s, where the table says it lives. */
static void *
field(const ip_step *s, const proto_param *p)
{
    return (char *)s + p->offset;
}

/* ---------------------------------------------------------------- ranges */

static int
check_param(const proto_op *op, const proto_param *p, const ip_step *s, char *why,
            size_t len)
{
    const void *v = field(s, p);

    switch (p->type) {
    case PT_DOUBLE: {
        double d = *(const double *)v;
        if (!isfinite(d))
            return fail(why, len, "%s: %s must be a finite number", op->name, p->name);
        if (d < p->min || d > p->max || (p->min_open && d == p->min))
            return fail(why, len, "%s: %s must be %s %g and <= %g, not %g", op->name, p->name,
                        p->min_open ? ">" : ">=", p->min, p->max, d);
        return 0;
    }
    case PT_UINT: {
        u_int u = *(const u_int *)v;
        if (u < p->min || u > p->max)
            return fail(why, len, "%s: %s must be %g..%g, not %u", op->name, p->name, p->min,
                        p->max, u);
        return 0;
    }
    case PT_FIT:
        if ((unsigned)*(const ip_fit *)v > IP_FIT_FILL)
            return fail(why, len, "%s: unknown %s %d", op->name, p->name,
                        (int)*(const ip_fit *)v);
        return 0;
    case PT_BOOL:
        return 0;
    case PT_COLOUR: {
        const ip_colour *c = v;
        if (c->r > 255 || c->g > 255 || c->b > 255 || c->a > 255)
            return fail(why, len, "%s: %s channels must be 0..255", op->name, p->name);
        return 0;
    }
    }
    return fail(why, len, "%s: %s has an unknown type", op->name, p->name);
}

int
proto_step_check(const ip_step *s, char *why, size_t len)
{
    const proto_op *op = proto_op_by_num(s->op);

    if (!op)
        return fail(why, len, "unknown step %d", (int)s->op);
    for (int i = 0; i < op->nparams; i++)
        if (check_param(op, &op->params[i], s, why, len))
            return -1;
    return 0;
}

/* ---------------------------------------------------------------- syntax */

static void
upper(char *out, size_t len, const char *name)
{
    size_t i;

    for (i = 0; name[i] && i + 1 < len; i++)
        out[i] = (char)(name[i] >= 'a' && name[i] <= 'z' ? name[i] - 'a' + 'A' : name[i]);
    out[i] = '\0';
}

void
proto_op_syntax(const proto_op *op, char *buf, size_t len)
{
    size_t used;
    int optional = 0, defaults = 0;

    if (op->syntax) {
        snprintf(buf, len, "%s", op->syntax);
        return;
    }
    used = (size_t)snprintf(buf, len, "%s", op->name);
    for (int i = 0; i < op->nparams && used < len; i++) {
        const proto_param *p = &op->params[i];
        char name[32];
        upper(name, sizeof(name), p->name);
        optional |= !p->required;
        used += (size_t)snprintf(buf + used, len - used, "%s%s%s", !p->required ? "[" : "",
                                 i ? ":" : "=", name);
    }
    for (int i = 0; i < op->nparams && used < len; i++)
        if (!op->params[i].required)
            used += (size_t)snprintf(buf + used, len - used, "]");
    for (int i = 0; optional && i < op->nparams && used < len; i++) {
        const proto_param *p = &op->params[i];
        char name[32], value[32];
        if (p->required || (p->type != PT_DOUBLE && p->type != PT_UINT))
            continue;
        upper(name, sizeof(name), p->name);
        format_double(value, sizeof(value), p->def);
        used += (size_t)snprintf(buf + used, len - used, "%s%s %s", defaults++ ? ", " : "  (",
                                 name, value);
    }
    if (defaults && used < len)
        snprintf(buf + used, len - used, " if left out)");
}

void
proto_param_doc(const proto_param *p, char *buf, size_t len)
{
    char def[32];

    format_double(def, sizeof(def), p->def);
    if (p->min_open)
        snprintf(buf, len, "%s, > %g", p->doc, p->min);
    else if (!p->required && (p->type == PT_DOUBLE || p->type == PT_UINT))
        snprintf(buf, len, "%s (default %s)", p->doc, def);
    else
        snprintf(buf, len, "%s", p->doc);
}

int
proto_param_parse(const proto_op *op, const proto_param *p, const char *text, ip_step *s,
                  char *why, size_t len)
{
    void *v = field(s, p);
    unsigned long u;

    switch (p->type) {
    case PT_DOUBLE:
        if (proto_parse_double(text, v))
            return fail(why, len, "%s: %s '%s' is not a number, as in %s", op->name, p->name,
                        text, op->example);
        return 0;
    case PT_UINT:
        if (proto_parse_uint(text, 0xFFFFFFFFUL, &u))
            return fail(why, len, "%s: %s '%s' is not a whole number, as in %s", op->name,
                        p->name, text, op->example);
        *(u_int *)v = (u_int)u;
        return 0;
    case PT_COLOUR:
        if (proto_colour_parse(text, v))
            return fail(why, len, "%s: unknown colour '%s'", op->name, text);
        return 0;
    case PT_FIT:
        for (int f = IP_FIT_INSIDE; f <= IP_FIT_FILL; f++)
            if (strcmp(text, fit_names[f]) == 0) {
                *(ip_fit *)v = (ip_fit)f;
                return 0;
            }
        return fail(why, len, "%s: %s is inside, cover or fill, not '%s'", op->name, p->name,
                    text);
    case PT_BOOL:
        if (strcmp(text, "1") == 0 || strcmp(text, "0") == 0) {
            *(bool_t *)v = text[0] == '1';
            return 0;
        }
        return fail(why, len, "%s: %s is 0 or 1, not '%s'", op->name, p->name, text);
    }
    return fail(why, len, "%s: %s has an unknown type", op->name, p->name);
}

void
proto_step_init(const proto_op *op, ip_step *s)
{
    memset(s, 0, sizeof(*s));
    s->op = op->op;
    for (int i = 0; i < op->nparams; i++) {
        const proto_param *p = &op->params[i];
        void *v = field(s, p);
        switch (p->type) {
        case PT_DOUBLE: *(double *)v = p->def; break;
        case PT_UINT: *(u_int *)v = (u_int)p->def; break;
        case PT_FIT: *(ip_fit *)v = (ip_fit)p->def; break;
        case PT_BOOL: *(bool_t *)v = p->def != 0; break;
        case PT_COLOUR: *(ip_colour *)v = (ip_colour){ 0, 0, 0, 255 }; break;
        }
    }
}

/* NAME[=V1[:V2...]]: arg holds the values (NULL: none given). */
static int
parse_values(const proto_op *op, char *arg, ip_step *s, char *why, size_t len)
{
    char *save = NULL;
    char *part = arg ? strtok_r(arg, ":", &save) : NULL;
    int i;

    for (i = 0; part; i++, part = strtok_r(NULL, ":", &save)) {
        if (i == op->nparams)
            return fail(why, len, "%s takes %d value%s, as in %s", op->name, op->nparams,
                        op->nparams == 1 ? "" : "s", op->example);
        if (proto_param_parse(op, &op->params[i], part, s, why, len))
            return -1;
    }
    if (i < op->nparams && op->params[i].required)
        return fail(why, len, "%s needs its %s (%s), as in %s", op->name,
                    op->params[i].name, op->params[i].doc, op->example);
    return 0;
}

/* "800x600", "800x", "x600": a missing side means "no limit". */
static int
parse_box(const char *text, unsigned *w, unsigned *h)
{
    char buf[64];
    char *x;
    unsigned long v;

    if (strlen(text) >= sizeof(buf))
        return -1;
    strcpy(buf, text);
    x = strchr(buf, 'x');
    if (!x)
        return -1;
    *x = '\0';
    *w = *h = IP_MAX_DIMENSION;
    if (buf[0]) {
        if (proto_parse_uint(buf, IP_MAX_DIMENSION, &v) || v == 0)
            return -1;
        *w = (unsigned)v;
    }
    if (x[1]) {
        if (proto_parse_uint(x + 1, IP_MAX_DIMENSION, &v) || v == 0)
            return -1;
        *h = (unsigned)v;
    }
    return (buf[0] || x[1]) ? 0 : -1;
}

static int
parse_resize(char *arg, ip_step *s, char *why, size_t len)
{
    ip_resize_params *r = &s->ip_step_u.resize;
    char *save = NULL;
    char *part = arg ? strtok_r(arg, ":", &save) : NULL;
    int one_side;

    if (!arg)
        return fail(why, len, "resize needs a size, e.g. resize=800x600");
    if (!part || parse_box(part, &r->width, &r->height))
        return fail(why, len, "resize: expected WxH, Wx or xH, not '%s'",
                    part ? part : "");
    one_side = r->width == IP_MAX_DIMENSION || r->height == IP_MAX_DIMENSION;
    r->fit = IP_FIT_INSIDE;
    while ((part = strtok_r(NULL, ":", &save))) {
        if (strcmp(part, "inside") == 0)
            r->fit = IP_FIT_INSIDE;
        else if (strcmp(part, "cover") == 0)
            r->fit = IP_FIT_COVER;
        else if (strcmp(part, "fill") == 0)
            r->fit = IP_FIT_FILL;
        else if (strcmp(part, "enlarge") == 0)
            r->enlarge = TRUE;
        else
            return fail(why, len, "resize: unknown option '%s'", part);
    }
    if (one_side && r->fit != IP_FIT_INSIDE)
        return fail(why, len, "resize: cover and fill need both width and height");
    return 0;
}

static int
parse_crop(char *arg, ip_step *s, char *why, size_t len)
{
    ip_crop_params *c = &s->ip_step_u.crop;
    char tail;

    if (!arg || sscanf(arg, "%ux%u+%u+%u%c", &c->width, &c->height, &c->left, &c->top,
                       &tail) != 4)
        return fail(why, len, "crop needs WxH+LEFT+TOP, e.g. crop=100x80+10+20");
    return 0;
}

static int
parse_step(char *text, ip_step *s, char *why, size_t len)
{
    char *arg = strchr(text, '=');
    const proto_op *op;

    if (arg)
        *arg++ = '\0';
    op = proto_op_by_name(text);
    if (!op)
        return fail(why, len, "unknown step '%s'", text);
    proto_step_init(op, s);
    if (op->nparams == 0 && arg)
        return fail(why, len, "%s takes no value", op->name);
    return op->parse ? op->parse(arg, s, why, len) : parse_values(op, arg, s, why, len);
}

/*
 * In a step's text (n bytes), a separator other than a comma followed by
 * an operation's name ("blur=5;grayscale", "flip grayscale"), or NULL.
 * A '+' in crop=WxH+X+Y is followed by a number: not taken for one.
 */
static const char *
other_separator(const char *step, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strchr(";| \t+/&", step[i]) && step[i]) {
            size_t j = i + 1, k = 0;
            char name[32];
            while (j < n && step[j] == ' ')
                j++;
            while (j + k < n && k + 1 < sizeof(name) && (isalpha((unsigned char)step[j + k]) ||
                                                         step[j + k] == '_')) {
                name[k] = step[j + k];
                k++;
            }
            name[k] = '\0';
            if (k && proto_op_by_name(name))
                return step + i;
        }
    return NULL;
}

int
proto_pipeline_parse(const char *text, ip_step *steps, unsigned max,
                     unsigned *nsteps, char *why, size_t len)
{
    char *copy = strdup(text);
    char *rest = copy;
    char *part;
    unsigned n = 0;
    int rc = -1;

    if (!copy)
        return fail(why, len, "out of memory");
    while (*text && (part = strsep(&rest, ","))) {
        if (!*part) {
            fail(why, len, "an empty step (at character %zu of '%s'): two commas in a row, "
                 "or one at an end", (size_t)(part - copy) + 1, text);
            goto cleanup;
        }
        if (n == max) {
            fail(why, len, "more than %u steps", max);
            goto cleanup;
        }
        /* Syntax only: ranges are proto_step_check's. */
        if (parse_step(part, &steps[n], why, len)) {
            /* Where it went wrong (parse_step cut part up: the text says it
             * whole), and the likeliest cause: another separator before a
             * step's name. */
            size_t at = (size_t)(part - copy), used = strlen(why);
            int step_len = (int)strcspn(text + at, ",");
            const char *sep = other_separator(text + at, (size_t)step_len);
            if (sep)
                snprintf(why, len, "'%.*s' is not one step: steps are separated by commas, "
                         "not '%c' (at character %zu of '%s')", step_len, text + at, *sep,
                         (size_t)(sep - text) + 1, text);
            else
                snprintf(why + used, len - used, " (step %u, '%.*s', at character %zu of '%s')",
                         n + 1, step_len, text + at, at + 1, text);
            goto cleanup;
        }
        n++;
    }
    if (n == 0) {
        fail(why, len, "empty pipeline");
        goto cleanup;
    }
    *nsteps = n;
    rc = 0;
cleanup:
    free(copy);
    return rc;
}

/* ---------------------------------------------------------------- text form */

static void
format_resize(const ip_step *s, char *buf, size_t len)
{
    const ip_resize_params *r = &s->ip_step_u.resize;

    snprintf(buf, len, "resize=%ux%u:%s%s", r->width, r->height,
             (unsigned)r->fit <= IP_FIT_FILL ? fit_names[r->fit] : "?",
             r->enlarge ? ":enlarge" : "");
}

static void
format_crop(const ip_step *s, char *buf, size_t len)
{
    const ip_crop_params *c = &s->ip_step_u.crop;

    snprintf(buf, len, "crop=%ux%u+%u+%u", c->width, c->height, c->left, c->top);
}

void
proto_step_format(const ip_step *s, char *buf, size_t len)
{
    const proto_op *op = proto_op_by_num(s->op);
    size_t used;

    if (!op) {
        snprintf(buf, len, "step%d", (int)s->op);
        return;
    }
    if (op->format) {
        op->format(s, buf, len);
        return;
    }
    used = (size_t)snprintf(buf, len, "%s", op->name);
    for (int i = 0; i < op->nparams && used < len; i++) {
        const proto_param *p = &op->params[i];
        const void *v = field(s, p);
        char value[48];
        switch (p->type) {
        case PT_DOUBLE:
            format_double(value, sizeof(value), *(const double *)v);
            break;
        case PT_UINT:
            snprintf(value, sizeof(value), "%u", *(const u_int *)v);
            break;
        case PT_COLOUR: {
            const ip_colour *c = v;
            snprintf(value, sizeof(value), "#%02x%02x%02x%02x", c->r & 255, c->g & 255,
                     c->b & 255, c->a & 255);
            break;
        }
        default:
            snprintf(value, sizeof(value), "?");
            break;
        }
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ":" : "=", value);
    }
}

/*
 * xmlrpc.c - POST /RPC2: the course labs' XML-RPC calls, on xmlrpc-c's
 * registry (which also answers system.listMethods and system.multicall).
 * Each call is an ONC RPC call to imgprocd, never a second implementation:
 *
 *   convert_to_grayscale(image)        PROCESS grayscale
 *   resize_image(image, width, height) PROCESS resize=WxH (fits inside the box)
 *   rotate_image(image, angle)         PROCESS rotate=ANGLE
 *   apply_blur(image)                  PROCESS blur=5 (a Gaussian of radius 5)
 *
 * An image comes as a base64 string, as the labs send it (XML-RPC's own
 * base64 type is taken too), and goes back as one, a JPEG.  A refusal is a
 * fault whose code is the service's status number and whose string starts
 * with its name ("invalid-argument: ...").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <xmlrpc-c/base.h>
#include <xmlrpc-c/server.h>

#include "proto.h"
#include "web.h"

/* Fault codes beyond the service's statuses (1..9 are ip_status). */
#define FAULT_GATEWAY 100           /* imgprocd could not be asked */

/* An image argument: a base64 string (the labs') or XML-RPC base64, into *data (malloc'ed). */
static int
read_image(xmlrpc_env *env, xmlrpc_value *v, unsigned char **data, size_t *len)
{
    if (xmlrpc_value_type(v) == XMLRPC_TYPE_BASE64) {
        const unsigned char *b;
        xmlrpc_read_base64(env, v, len, &b);
        if (env->fault_occurred)
            return -1;
        *data = (unsigned char *)b;
        return 0;
    }
    if (xmlrpc_value_type(v) == XMLRPC_TYPE_STRING) {
        const char *s;
        size_t slen, pad = 0;
        int n;
        xmlrpc_read_string_lp(env, v, &slen, &s);
        if (env->fault_occurred)
            return -1;
        /* EVP_DecodeBlock counts the padding as data: take it off after. */
        while (slen > 0 && (s[slen - 1] == '\n' || s[slen - 1] == '\r'))
            slen--;
        if (slen >= 1 && s[slen - 1] == '=')
            pad++;
        if (slen >= 2 && s[slen - 2] == '=')
            pad++;
        *data = malloc(slen / 4 * 3 + 3);
        n = *data && slen % 4 == 0 ? EVP_DecodeBlock(*data, (const unsigned char *)s, (int)slen)
                                   : -1;
        free((void *)s);
        if (n < 0 || (size_t)n < pad) {
            free(*data);
            xmlrpc_env_set_fault(env, IP_EINVAL, "invalid-argument: the image is not base64");
            return -1;
        }
        *len = (size_t)n - pad;
        return 0;
    }
    xmlrpc_env_set_fault(env, IP_EINVAL, "invalid-argument: the image must be a base64 "
                         "string or XML-RPC base64");
    return -1;
}

/* PROCESS's call, for web_call. */
typedef struct process_call {
    ip_process_args a;
    ip_image_res res;
} process_call;

static enum clnt_stat
call_process(CLIENT *clnt, void *ctx)
{
    process_call *k = ctx;

    xdr_free((xdrproc_t)xdr_ip_image_res, (char *)&k->res);
    memset(&k->res, 0, sizeof(k->res));
    return process_1(&k->a, &k->res, clnt);
}

/*
 * The lab calls' common part: params[0] is the image, steps the pipeline
 * (the other parameters already in it); the result as a base64 string, JPEG.
 */
static xmlrpc_value *
run(xmlrpc_env *env, xmlrpc_value *params, const web_config *cfg, const char *steps)
{
    ip_step parsed[IP_MAX_STEPS];
    unsigned char *image = NULL;
    char why_parse[IP_MAX_MESSAGE], *why, *b64;
    xmlrpc_value *v, *out = NULL;
    unsigned nsteps;
    process_call k;
    size_t len;

    xmlrpc_array_read_item(env, params, 0, &v);
    if (env->fault_occurred)
        return NULL;
    if (read_image(env, v, &image, &len)) {
        xmlrpc_DECREF(v);
        return NULL;
    }
    xmlrpc_DECREF(v);
    if (proto_pipeline_parse(steps, parsed, IP_MAX_STEPS, &nsteps, why_parse,
                             sizeof(why_parse)) ||
        proto_step_check(&parsed[0], why_parse, sizeof(why_parse))) {
        free(image);
        xmlrpc_env_set_fault_formatted(env, IP_EINVAL, "invalid-argument: %s", why_parse);
        return NULL;
    }
    memset(&k, 0, sizeof(k));
    k.a.image.ip_image_len = (u_int)len;
    k.a.image.ip_image_val = (char *)image;
    k.a.steps.steps_len = nsteps;
    k.a.steps.steps_val = parsed;
    k.a.output.format = IP_FMT_JPEG;
    if (web_call(cfg, "PROCESS", call_process, &k, 1, &why)) {
        xmlrpc_env_set_fault_formatted(env, FAULT_GATEWAY, "%s", why ? why : "imgprocd");
        free(why);
    } else if (k.res.status != IP_OK) {
        xmlrpc_env_set_fault_formatted(env, (int)k.res.status, "%s: %s",
                                       proto_status_name(k.res.status),
                                       k.res.ip_image_res_u.message);
    } else {
        const ip_image *r = &k.res.ip_image_res_u.ok.image;
        size_t blen = ((size_t)r->ip_image_len + 2) / 3 * 4;
        if ((b64 = malloc(blen + 1))) {
            EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)r->ip_image_val,
                            (int)r->ip_image_len);
            out = xmlrpc_string_new_lp(env, blen, b64);
            free(b64);
        } else
            xmlrpc_env_set_fault(env, IP_EINTERNAL, "internal-error: out of memory");
    }
    free(image);
    xdr_free((xdrproc_t)xdr_ip_image_res, (char *)&k.res);
    return out;
}

static xmlrpc_value *
m_grayscale(xmlrpc_env *env, xmlrpc_value *params, void *cfg, void *call)
{
    (void)call;
    return run(env, params, cfg, "grayscale");
}

static xmlrpc_value *
m_resize(xmlrpc_env *env, xmlrpc_value *params, void *cfg, void *call)
{
    xmlrpc_value *img;
    int w, h;
    char steps[64];

    (void)call;
    xmlrpc_decompose_value(env, params, "(Vii)", &img, &w, &h);
    if (env->fault_occurred)
        return NULL;
    xmlrpc_DECREF(img);
    if (w <= 0 || h <= 0) {
        xmlrpc_env_set_fault_formatted(env, IP_EINVAL, "invalid-argument: width and height "
                                       "must be over 0, not %d and %d", w, h);
        return NULL;
    }
    snprintf(steps, sizeof(steps), "resize=%dx%d", w, h);
    return run(env, params, cfg, steps);
}

static xmlrpc_value *
m_rotate(xmlrpc_env *env, xmlrpc_value *params, void *cfg, void *call)
{
    xmlrpc_value *img, *a;
    double angle;
    char steps[64];

    (void)call;
    xmlrpc_decompose_value(env, params, "(VV)", &img, &a);
    if (env->fault_occurred)
        return NULL;
    /* The labs send an int or a double. */
    if (xmlrpc_value_type(a) == XMLRPC_TYPE_INT) {
        int i;
        xmlrpc_read_int(env, a, &i);
        angle = i;
    } else
        xmlrpc_read_double(env, a, &angle);
    xmlrpc_DECREF(img);
    xmlrpc_DECREF(a);
    if (env->fault_occurred)
        return NULL;
    snprintf(steps, sizeof(steps), "rotate=%.17g", angle);
    return run(env, params, cfg, steps);
}

static xmlrpc_value *
m_blur(xmlrpc_env *env, xmlrpc_value *params, void *cfg, void *call)
{
    (void)call;
    return run(env, params, cfg, "blur=5");
}

static const struct xmlrpc_method_info3 methods[] = {
    { "convert_to_grayscale", m_grayscale, NULL, 0, "s:s",
      "The image (a base64 string) in one band of luma; a JPEG, as a base64 string." },
    { "resize_image", m_resize, NULL, 0, "s:sii",
      "The image scaled to fit inside WIDTH x HEIGHT, keeping its shape; a JPEG." },
    { "rotate_image", m_rotate, NULL, 0, "s:sd,s:si",
      "The image rotated clockwise by ANGLE degrees; a JPEG." },
    { "apply_blur", m_blur, NULL, 0, "s:s",
      "The image under a Gaussian blur of radius 5; a JPEG." },
};

xmlrpc_registry *
web_xmlrpc_registry(const web_config *cfg)
{
    xmlrpc_env env;
    xmlrpc_registry *reg;

    xmlrpc_env_init(&env);
    /* An image in base64 is a third larger than the body cap allows. */
    xmlrpc_limit_set(XMLRPC_XML_SIZE_LIMIT_ID, (size_t)(cfg->max_body / 3 * 4 + 65536));
    reg = xmlrpc_registry_new(&env);
    for (size_t i = 0; reg && i < sizeof(methods) / sizeof(methods[0]); i++) {
        struct xmlrpc_method_info3 m = methods[i];
        m.serverInfo = (void *)cfg;
        xmlrpc_registry_add_method3(&env, reg, &m);
    }
    if (env.fault_occurred) {
        fprintf(stderr, "imgproc-web: XML-RPC: %s\n", env.fault_string);
        if (reg)
            xmlrpc_registry_free(reg);
        reg = NULL;
    }
    xmlrpc_env_clean(&env);
    return reg;
}

int
web_xmlrpc_answer(xmlrpc_registry *reg, const char *xml, size_t len, char **out,
                  size_t *outlen)
{
    xmlrpc_mem_block *resp = NULL;
    xmlrpc_env env;
    int rc = -1;

    xmlrpc_env_init(&env);
    xmlrpc_registry_process_call2(&env, reg, xml, len, NULL, &resp);
    if (!env.fault_occurred && resp) {
        *outlen = XMLRPC_MEMBLOCK_SIZE(char, resp);
        if ((*out = malloc(*outlen))) {
            memcpy(*out, XMLRPC_MEMBLOCK_CONTENTS(char, resp), *outlen);
            rc = 0;
        }
    }
    if (resp)
        XMLRPC_MEMBLOCK_FREE(char, resp);
    xmlrpc_env_clean(&env);
    return rc;
}

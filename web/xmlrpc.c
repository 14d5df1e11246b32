/*
 * xmlrpc.c - POST /RPC2: the course labs' XML-RPC calls, on xmlrpc-c's
 * registry (which also answers system.listMethods and system.multicall).
 * Each call is an ONC RPC call to imgprocd, never a second implementation:
 *
 *   convert_to_grayscale(image)        PROCESS grayscale
 *   resize_image(image, width, height) PROCESS resize=WxH (fits inside the box)
 *   rotate_image(image, angle)         PROCESS rotate=ANGLE
 *   apply_blur(image)                  PROCESS blur=5 (a Gaussian of radius 5)
 *   create_task(binary)                TASK_CREATE blur=5,grayscale, held: its id
 *   get_task_status(id)                TASK_STATUS, in the labs' words
 *   change_task_status(id, s)          TASK_START ("In Progress"), TASK_WAIT ("Completed")
 *   get_processed_image(id)            TASK_RESULT, as binary
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
    ip_process_args a;
    ip_image_res res;
    unsigned nsteps;
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
    memset(&a, 0, sizeof(a));
    memset(&res, 0, sizeof(res));
    a.image.ip_image_len = (u_int)len;
    a.image.ip_image_val = (char *)image;
    a.steps.steps_len = nsteps;
    a.steps.steps_val = parsed;
    a.output.format = IP_FMT_JPEG;
    if (web_rpc_call(cfg, NULL, "PROCESS", PROCESS, PROTO_XDR(xdr_ip_process_args), &a,
                     PROTO_XDR(xdr_ip_image_res), &res, 1, &why)) {
        xmlrpc_env_set_fault_formatted(env, FAULT_GATEWAY, "%s", why ? why : "imgprocd");
        free(why);
    } else if (res.status != IP_OK) {
        xmlrpc_env_set_fault_formatted(env, (int)res.status, "%s: %s",
                                       proto_status_name(res.status),
                                       res.ip_image_res_u.message);
    } else {
        const ip_image *r = &res.ip_image_res_u.ok.image;
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
    xdr_free((xdrproc_t)xdr_ip_image_res, (char *)&res);
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

/* ---- the lab's tasks: blur then grayscale, as real imgprocd tasks */

#define LAB_TASK_STEPS "blur=5,grayscale"

/* The task calls' arguments and results, for web_call. */
typedef struct task_call {
    const web_config *cfg;
    ip_task_id id;
    ip_task_create_args create;     /* create_task */
    ip_task_create_res created;
    ip_task_info_res info;          /* get_task_status, and waits */
    ip_task_res res;                /* TASK_START */
    char *data;                     /* get_processed_image */
    uint64_t len;
    ip_status st;
    char why[IP_MAX_MESSAGE];
    int fetched;                    /* PROTO_FETCH_* */
} task_call;

static enum clnt_stat
call_fetch(CLIENT *c, void *ctx)
{
    task_call *k = ctx;

    free(k->data);
    k->data = NULL;
    k->fetched = proto_fetch_result(c, k->id, &k->data, &k->len, NULL, NULL, NULL, &k->st,
                                    k->why, sizeof(k->why));
    return k->fetched == PROTO_FETCH_RPC ? RPC_CANTRECV : RPC_SUCCESS;
}

static void
task_call_free(task_call *k)
{
    xdr_free((xdrproc_t)xdr_ip_task_create_res, (char *)&k->created);
    xdr_free((xdrproc_t)xdr_ip_task_info_res, (char *)&k->info);
    xdr_free((xdrproc_t)xdr_ip_task_res, (char *)&k->res);
    free(k->data);
}

/* web_call, its failure said as a fault: 0 when the call went through. */
static int
call_or_fault(xmlrpc_env *env, const web_config *cfg, const char *what, web_call_fn fn,
              task_call *k, int repeatable)
{
    char *why = NULL;

    if (web_call(cfg, NULL, what, fn, k, repeatable, &why) == 0)
        return 0;
    xmlrpc_env_set_fault_formatted(env, FAULT_GATEWAY, "%s", why ? why : "imgprocd");
    free(why);
    return -1;
}

/* web_rpc_call, its failure said as a fault: 0 when the call went through. */
static int
rpc_or_fault(xmlrpc_env *env, const web_config *cfg, const char *what, rpcproc_t proc,
             xdrproc_t xargs, void *args, xdrproc_t xres, void *res, int repeatable)
{
    char *why = NULL;

    if (web_rpc_call(cfg, NULL, what, proc, xargs, args, xres, res, repeatable, &why) == 0)
        return 0;
    xmlrpc_env_set_fault_formatted(env, FAULT_GATEWAY, "%s", why ? why : "imgprocd");
    free(why);
    return -1;
}

/* TASK_STATUS of k->id into k->info; 0 when the call went through. */
static int
task_status(xmlrpc_env *env, task_call *k)
{
    return rpc_or_fault(env, k->cfg, "TASK_STATUS", TASK_STATUS, PROTO_XDR(xdr_ip_task_id),
                        &k->id, PROTO_XDR(xdr_ip_task_info_res), &k->info, 1);
}

/* A task id as the labs send it: a string of digits, or an int. */
static int
read_id(xmlrpc_env *env, xmlrpc_value *params, ip_task_id *id)
{
    xmlrpc_value *v;
    unsigned long long n = 0;
    char *end = NULL;

    *id = 0;
    xmlrpc_array_read_item(env, params, 0, &v);
    if (env->fault_occurred)
        return -1;
    if (xmlrpc_value_type(v) == XMLRPC_TYPE_INT) {
        int i;
        xmlrpc_read_int(env, v, &i);
        n = i > 0 ? (unsigned long long)i : 0;
    } else if (xmlrpc_value_type(v) == XMLRPC_TYPE_STRING) {
        const char *s;
        xmlrpc_read_string(env, v, &s);
        if (!env->fault_occurred) {
            n = strtoull(s, &end, 10);
            if (!*s || *end)
                n = 0;
            free((void *)s);
        }
    }
    xmlrpc_DECREF(v);
    if (env->fault_occurred)
        return -1;
    *id = n;
    return 0;
}

/* "Created", "In Progress", "Completed": the labs' names of a task's states. */
static const char *
lab_state(ip_task_state st)
{
    switch (st) {
    case IP_TASK_CREATED: return "Created";
    case IP_TASK_QUEUED:
    case IP_TASK_RUNNING: return "In Progress";
    case IP_TASK_DONE: return "Completed";
    case IP_TASK_FAILED: return "Failed";
    case IP_TASK_CANCELLED: return "Cancelled";
    }
    return "Unknown";
}

/* create_task(image as XML-RPC binary): a held task; its id, as a string. */
static xmlrpc_value *
m_create_task(xmlrpc_env *env, xmlrpc_value *params, void *cfg, void *call)
{
    ip_step steps[IP_MAX_STEPS];
    unsigned char *image = NULL;
    task_call k = { .cfg = cfg };
    xmlrpc_value *v, *out = NULL;
    char why[IP_MAX_MESSAGE], id[32];
    unsigned nsteps;
    size_t len;

    (void)call;
    xmlrpc_array_read_item(env, params, 0, &v);
    if (env->fault_occurred)
        return NULL;
    if (read_image(env, v, &image, &len)) {
        xmlrpc_DECREF(v);
        return NULL;
    }
    xmlrpc_DECREF(v);
    if (proto_pipeline_parse(LAB_TASK_STEPS, steps, IP_MAX_STEPS, &nsteps, why, sizeof(why))) {
        free(image);
        xmlrpc_env_set_fault_formatted(env, IP_EINTERNAL, "internal-error: %s", why);
        return NULL;
    }
    k.create.source.kind = IP_SOURCE_INLINE;
    k.create.source.ip_task_source_u.image.ip_image_len = (u_int)len;
    k.create.source.ip_task_source_u.image.ip_image_val = (char *)image;
    k.create.spec.steps.steps_len = nsteps;
    k.create.spec.steps.steps_val = steps;
    k.create.spec.output.format = IP_FMT_JPEG;
    k.create.token = "";
    k.create.hold = TRUE;           /* the lab starts it: change_task_status */
    /* Creating is not repeated: a second try could make a second task. */
    if (!rpc_or_fault(env, cfg, "TASK_CREATE", TASK_CREATE, PROTO_XDR(xdr_ip_task_create_args),
                      &k.create, PROTO_XDR(xdr_ip_task_create_res), &k.created, 0)) {
        if (k.created.status != IP_OK)
            xmlrpc_env_set_fault_formatted(env, (int)k.created.status, "%s: %s",
                                           proto_status_name(k.created.status),
                                           k.created.ip_task_create_res_u.message);
        else {
            snprintf(id, sizeof(id), "%llu",
                     (unsigned long long)k.created.ip_task_create_res_u.created.id);
            out = xmlrpc_string_new(env, id);
        }
    }
    free(image);
    task_call_free(&k);
    return out;
}

/* get_task_status(id): "Created", "In Progress", "Completed"..., or "Invalid Task ID". */
static xmlrpc_value *
m_task_status(xmlrpc_env *env, xmlrpc_value *params, void *cfg, void *call)
{
    task_call k = { .cfg = cfg };
    xmlrpc_value *out = NULL;

    (void)call;
    if (read_id(env, params, &k.id))
        return NULL;
    if (!k.id)
        return xmlrpc_string_new(env, "Invalid Task ID");
    if (!task_status(env, &k))
        out = xmlrpc_string_new(env, k.info.status == IP_OK
                                     ? lab_state(k.info.ip_task_info_res_u.info.state)
                                     : "Invalid Task ID");
    task_call_free(&k);
    return out;
}

/*
 * change_task_status(id, "In Progress" | "Completed"): "In Progress" starts
 * a created task; "Completed" waits for a started one to finish.  true when
 * the task is then in that state; false for a jump (Created to Completed),
 * an unknown task, or a task that failed.
 */
static xmlrpc_value *
m_change_status(xmlrpc_env *env, xmlrpc_value *params, void *cfg, void *call)
{
    const web_config *c = cfg;
    task_call k = { .cfg = cfg };
    const char *want = NULL;
    xmlrpc_value *idv, *out = NULL;
    int ok = 0, progress;

    (void)call;
    xmlrpc_decompose_value(env, params, "(Vs)", &idv, &want);
    if (env->fault_occurred)
        return NULL;
    xmlrpc_DECREF(idv);
    progress = strcmp(want, "In Progress") == 0;
    if (!progress && strcmp(want, "Completed") != 0) {
        xmlrpc_env_set_fault_formatted(env, IP_EINVAL, "invalid-argument: a task's status "
                                       "becomes 'In Progress' or 'Completed', not '%s'", want);
        free((void *)want);
        return NULL;
    }
    free((void *)want);
    if (read_id(env, params, &k.id))
        return NULL;
    if (k.id && !task_status(env, &k) && k.info.status == IP_OK) {
        ip_task_state st = k.info.ip_task_info_res_u.info.state;
        if (progress && st == IP_TASK_CREATED) {
            ok = !rpc_or_fault(env, c, "TASK_START", TASK_START, PROTO_XDR(xdr_ip_task_id),
                               &k.id, PROTO_XDR(xdr_ip_task_res), &k.res, 1) &&
                 k.res.status == IP_OK;
        } else if (progress)
            ok = st == IP_TASK_QUEUED || st == IP_TASK_RUNNING;
        else if (st != IP_TASK_CREATED) {
            /* Waits as long as the task runs (each TASK_WAIT a minute at most). */
            while (!env->fault_occurred && k.info.status == IP_OK &&
                   !proto_task_final(k.info.ip_task_info_res_u.info.state)) {
                ip_task_wait_args wa = { k.id, k.info.ip_task_info_res_u.info.state,
                                         IP_MAX_WAIT };
                rpc_or_fault(env, c, "TASK_WAIT", TASK_WAIT, PROTO_XDR(xdr_ip_task_wait_args),
                             &wa, PROTO_XDR(xdr_ip_task_info_res), &k.info, 1);
            }
            ok = !env->fault_occurred && k.info.status == IP_OK &&
                 k.info.ip_task_info_res_u.info.state == IP_TASK_DONE;
        }
    }
    if (!env->fault_occurred)
        out = xmlrpc_bool_new(env, ok);
    task_call_free(&k);
    return out;
}

/* get_processed_image(id): the done task's JPEG, as XML-RPC binary. */
static xmlrpc_value *
m_processed_image(xmlrpc_env *env, xmlrpc_value *params, void *cfg, void *call)
{
    task_call k = { .cfg = cfg };
    xmlrpc_value *out = NULL;

    (void)call;
    if (read_id(env, params, &k.id))
        return NULL;
    if (!call_or_fault(env, cfg, "TASK_RESULT", call_fetch, &k, 1)) {
        if (k.fetched == PROTO_FETCH_REFUSED)
            xmlrpc_env_set_fault_formatted(env, (int)k.st, "%s: %s", proto_status_name(k.st),
                                           k.why);
        else if (k.fetched != PROTO_FETCH_OK)
            xmlrpc_env_set_fault_formatted(env, FAULT_GATEWAY, "imgprocd: %s", k.why);
        else
            out = xmlrpc_base64_new(env, (size_t)k.len, (const unsigned char *)k.data);
    }
    task_call_free(&k);
    return out;
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
    { "create_task", m_create_task, NULL, 0, "s:6",
      "A task for the image (XML-RPC binary): blur then grayscale, a JPEG; its id." },
    { "get_task_status", m_task_status, NULL, 0, "s:s",
      "Created, In Progress, Completed (or Failed, Cancelled), or Invalid Task ID." },
    { "change_task_status", m_change_status, NULL, 0, "b:ss",
      "In Progress starts a created task; Completed waits for a started one; true if so." },
    { "get_processed_image", m_processed_image, NULL, 0, "6:s",
      "A completed task's JPEG, as XML-RPC binary." },
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

/* digest.c - SHA-256 of uploaded images, with OpenSSL's libcrypto (hardware SHA where the CPU has it). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "proto.h"

static void
to_hex(const unsigned char *md, unsigned n, char out[65])
{
    static const char hex[] = "0123456789abcdef";

    for (unsigned i = 0; i < n && i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

int
proto_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;

    if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL))
        return -1;
    to_hex(md, n, out);
    return 0;
}

int
proto_sha256_fd(int fd, char out[65])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char md[EVP_MAX_MD_SIZE];
    size_t bufsize = 1 << 20;
    char *buf = malloc(bufsize);
    unsigned n = 0;
    off_t off = 0;
    int rc = -1;

    if (!ctx || !buf || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
        goto cleanup;
    for (;;) {
        ssize_t got = pread(fd, buf, bufsize, off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            goto cleanup;
        if (got == 0)
            break;
        if (!EVP_DigestUpdate(ctx, buf, (size_t)got))
            goto cleanup;
        off += got;
    }
    if (!EVP_DigestFinal_ex(ctx, md, &n))
        goto cleanup;
    to_hex(md, n, out);
    rc = 0;

cleanup:
    EVP_MD_CTX_free(ctx);
    free(buf);
    return rc;
}

struct proto_sha256 {
    EVP_MD_CTX *ctx;            /* libcrypto's running state */
};

proto_sha256 *
proto_sha256_new(void)
{
    proto_sha256 *h = malloc(sizeof(*h));

    if (!h)
        return NULL;
    h->ctx = EVP_MD_CTX_new();
    if (!h->ctx || !EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL)) {
        EVP_MD_CTX_free(h->ctx);
        free(h);
        return NULL;
    }
    return h;
}

int
proto_sha256_update(proto_sha256 *h, const void *data, size_t len)
{
    return EVP_DigestUpdate(h->ctx, data, len) ? 0 : -1;
}

int
proto_sha256_final(proto_sha256 *h, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;

    if (!EVP_DigestFinal_ex(h->ctx, md, &n))
        return -1;
    to_hex(md, n, out);
    return 0;
}

void
proto_sha256_free(proto_sha256 *h)
{
    if (!h)
        return;
    EVP_MD_CTX_free(h->ctx);
    free(h);
}

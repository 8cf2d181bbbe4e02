/* tls.c - the server's OpenSSL context: TLS 1.2 and later, the configured
 * certificate chain and key, buffers released while a connection is idle
 * (SSL_MODE_RELEASE_BUFFERS) so idle TLS sessions stay small.  On request it
 * makes a self-signed certificate for the configured domains (demo and test
 * setups); production deployments point tls.certificate at a real chain.
 */
#include "tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void ssl_err(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_get_error();
    snprintf(err, errlen, "%s: %s", what, e ? ERR_reason_error_string(e) : "unknown error");
    ERR_clear_error();
}

static int mkdir_for(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    for (char *p = dir + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(dir, 0755) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    return 0;
}

int tls_ensure_certificate(const config *cfg, char *err, size_t errlen)
{
    bool have_cert = access(cfg->tls_certificate, R_OK) == 0;
    bool have_key = access(cfg->tls_key, R_OK) == 0;
    if (have_cert && have_key)
        return 0;
    if (!cfg->tls_generate) {
        snprintf(err, errlen, "%s:%d: tls.%s: cannot read %s (set tls.generate = true for a self-signed one)",
                 cfg->path ? cfg->path : "config", have_cert ? cfg->tls_key_line : cfg->tls_certificate_line,
                 have_cert ? "key" : "certificate",
                 have_cert ? cfg->tls_key : cfg->tls_certificate);
        return -1;
    }
    int rc = -1;
    EVP_PKEY *pkey = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    FILE *f = NULL;
    if (!pkey || !x) {
        ssl_err(err, errlen, "generating a key");
        goto out;
    }
    X509_set_version(x, 2);
    unsigned char serial[16];
    RAND_bytes(serial, sizeof serial);
    serial[0] &= 0x7f;
    BIGNUM *bn = BN_bin2bn(serial, sizeof serial, NULL);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3650L * 24 * 3600);
    X509_set_pubkey(x, pkey);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cfg->domain, -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"onair self-signed", -1, -1, 0);
    X509_set_issuer_name(x, name);
    char san[1024];
    snprintf(san, sizeof san, "DNS:%s,DNS:*.%s%s%s", cfg->domain, cfg->domain, cfg->guest_domain ? ",DNS:" : "",
             cfg->guest_domain ? cfg->guest_domain : "");
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
    if (!ext) {
        ssl_err(err, errlen, "building the certificate");
        goto out;
    }
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    if (!X509_sign(x, pkey, EVP_sha256())) {
        ssl_err(err, errlen, "signing the certificate");
        goto out;
    }
    if (mkdir_for(cfg->tls_key) != 0 || mkdir_for(cfg->tls_certificate) != 0) {
        snprintf(err, errlen, "tls: cannot create the folder for %s: %s", cfg->tls_key, strerror(errno));
        goto out;
    }
    mode_t old = umask(077);
    f = fopen(cfg->tls_key, "w");
    umask(old);
    if (!f || !PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL)) {
        snprintf(err, errlen, "tls: cannot write %s: %s", cfg->tls_key, strerror(errno));
        goto out;
    }
    fclose(f);
    f = fopen(cfg->tls_certificate, "w");
    if (!f || !PEM_write_X509(f, x)) {
        snprintf(err, errlen, "tls: cannot write %s: %s", cfg->tls_certificate, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (f)
        fclose(f);
    X509_free(x);
    EVP_PKEY_free(pkey);
    return rc;
}

SSL_CTX *tls_context_new(const config *cfg, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        ssl_err(err, errlen, "tls");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
    /* No server-side session cache: TLS 1.3 resumption uses stateless
     * tickets, and a cache would keep a session per connection in memory. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_certificate) != 1) {
        char what[4200];
        snprintf(what, sizeof what, "%s:%d: tls.certificate: cannot load %s", cfg->path ? cfg->path : "config",
                 cfg->tls_certificate_line, cfg->tls_certificate);
        ssl_err(err, errlen, what);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        char what[4200];
        snprintf(what, sizeof what, "%s:%d: tls.key: cannot load %s or it does not match the certificate",
                 cfg->path ? cfg->path : "config", cfg->tls_key_line, cfg->tls_key);
        ssl_err(err, errlen, what);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

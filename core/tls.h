/* tls.h - the server's TLS context (OpenSSL): certificate and key from the
 * configuration, or a self-signed pair made on first start when asked to.
 */
#ifndef ONAIR_TLS_H
#define ONAIR_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>

#include "config.h"

/* Creates a self-signed certificate (P-256 key, SAN DNS names for domain,
 * *.domain and guest_domain) at cfg's paths if either file is missing and
 * cfg->tls_generate is set.  Returns 0, or -1 with a message in err. */
int tls_ensure_certificate(const config *cfg, char *err, size_t errlen);

/* Builds a server SSL_CTX (TLS 1.2+) from cfg's certificate and key.
 * Returns NULL with a message in err.  Caller owns the context (SSL_CTX_free). */
SSL_CTX *tls_context_new(const config *cfg, char *err, size_t errlen);

#endif

/* sasl.c - onair-bench: GNU SASL in client mode, and the SCRAM cache.
 *
 * Mechanisms: whatever GNU SASL's client supports; the bench is meant for
 * SCRAM-SHA-256, SCRAM-SHA-1 and PLAIN.  A SCRAM client has to derive
 * SaltedPassword with PBKDF2 (thousands of HMAC rounds) for every login,
 * which would make the load generator, not the server, the bottleneck.  So
 * the salted password is cached per (hash, iterations, salt) for the one
 * password of the run, and a miss is computed with OpenSSL's PBKDF2 (about
 * three times faster than GNU SASL's).  GNU SASL asks the callback for
 * GSASL_SCRAM_SALTED_PASSWORD after it has set GSASL_SCRAM_ITER and
 * GSASL_SCRAM_SALT; on a miss it computes the value from GSASL_PASSWORD and
 * stores it in the session, where sasl_step() picks it up for the cache.
 * With --scram-cache FILE the entries are also appended to a file (one
 * write(2) per line on an O_APPEND descriptor, so forked generators can
 * share it) and loaded at start, so later runs skip PBKDF2 entirely.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

static scram_entry *cache_slot(scram_cache *sc, const char *key)
{
    size_t mask = sc->cap - 1;
    for (size_t i = fnv1a(key) & mask;; i = (i + 1) & mask) {
        scram_entry *e = &sc->slots[i];
        if (!e->key || strcmp(e->key, key) == 0)
            return e;
    }
}

static const char *cache_get(scram_cache *sc, const char *key)
{
    if (sc->cap == 0)
        return NULL;
    scram_entry *e = cache_slot(sc, key);
    return e->key ? e->hex : NULL;
}

static int cache_grow(scram_cache *sc)
{
    size_t ncap = sc->cap ? sc->cap * 2 : 256;
    scram_entry *ns = calloc(ncap, sizeof *ns);
    if (!ns)
        return -1;
    scram_entry *old = sc->slots;
    size_t ocap = sc->cap;
    sc->slots = ns;
    sc->cap = ncap;
    for (size_t i = 0; i < ocap; i++)
        if (old[i].key)
            *cache_slot(sc, old[i].key) = old[i];
    free(old);
    return 0;
}

/* Returns 1 if added, 0 if it was there, -1 on allocation failure. */
static int cache_put(scram_cache *sc, const char *key, const char *hex)
{
    if ((sc->len + 1) * 2 > sc->cap && cache_grow(sc) < 0)
        return -1;
    scram_entry *e = cache_slot(sc, key);
    if (e->key)
        return 0;
    e->key = strdup(key);
    e->hex = strdup(hex);
    if (!e->key || !e->hex) {
        free(e->key);
        free(e->hex);
        e->key = e->hex = NULL;
        return -1;
    }
    sc->len++;
    return 1;
}

static void password_fingerprint(const char *password, char out[17])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    static const char tag[] = "onair-bench scram cache:";
    if (m && EVP_DigestInit_ex(m, EVP_sha256(), NULL) == 1 &&
        EVP_DigestUpdate(m, tag, sizeof tag - 1) == 1 &&
        EVP_DigestUpdate(m, password, strlen(password)) == 1 &&
        EVP_DigestFinal_ex(m, md, &mdlen) == 1 && mdlen >= 8) {
        for (int i = 0; i < 8; i++)
            snprintf(out + 2 * i, 3, "%02x", md[i]);
    } else {
        snprintf(out, 17, "%016x", 0);
    }
    EVP_MD_CTX_free(m);
}

/* Loads "<pwfp> <key> <hex>" lines that belong to this password. */
static void cache_load(scram_cache *sc, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[1024];
    unsigned long lines = 0;
    while (fgets(line, sizeof line, f) && lines++ < 10000000ul) {
        char fp[32], key[512], hex[160];
        if (sscanf(line, "%31s %511s %159s", fp, key, hex) != 3)
            continue;
        if (strcmp(fp, sc->pwfp) != 0)
            continue;
        if (cache_put(sc, key, hex) < 0)
            break;
    }
    fclose(f);
}

/* Adds an entry and appends it to the cache file. */
static void cache_add(bench *b, const char *key, const char *hex)
{
    if (cache_put(&b->cache, key, hex) != 1 || b->cache.append_fd < 0)
        return;
    char line[1024];
    int n = snprintf(line, sizeof line, "%s %s %s\n", b->cache.pwfp, key, hex);
    if (n > 0 && (size_t)n < sizeof line && write(b->cache.append_fd, line, (size_t)n) != n) {
        close(b->cache.append_fd);
        b->cache.append_fd = -1;
    }
}

/* SaltedPassword = PBKDF2-HMAC(password, salt, iterations) with OpenSSL,
 * about three times faster than GNU SASL's own code.  Only for printable
 * ASCII passwords, which SASLprep leaves unchanged; others return -1 and
 * GNU SASL does the work. */
static int derive_salted(bench *b, unsigned hlen, const char *iter, const char *salt_b64, char *hex)
{
    const char *pw = b->o->password;
    for (const char *p = pw; *p; p++)
        if (*p < 0x21 || *p > 0x7e)
            return -1;
    char *end;
    unsigned long it = strtoul(iter, &end, 10);
    if (*end || it == 0 || it > 10000000ul)
        return -1;
    char *salt = NULL;
    size_t salt_len = 0;
    if (gsasl_base64_from(salt_b64, strlen(salt_b64), &salt, &salt_len) != GSASL_OK)
        return -1;
    unsigned char out[32];
    int ok = PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), (const unsigned char *)salt, (int)salt_len, (int)it,
                               hlen == 32 ? EVP_sha256() : EVP_sha1(), (int)hlen, out);
    gsasl_free(salt);
    if (ok != 1)
        return -1;
    for (unsigned i = 0; i < hlen; i++)
        snprintf(hex + 2 * i, 3, "%02x", out[i]);
    return 0;
}

static int sasl_callback(Gsasl *ctx, Gsasl_session *sctx, Gsasl_property prop)
{
    bench *b = gsasl_callback_hook_get(ctx);
    conn *c = gsasl_session_hook_get(sctx);
    if (!b || !c)
        return GSASL_NO_CALLBACK;
    switch (prop) {
    case GSASL_SCRAM_SALTED_PASSWORD: {
        const char *iter = gsasl_property_fast(sctx, GSASL_SCRAM_ITER);
        const char *salt = gsasl_property_fast(sctx, GSASL_SCRAM_SALT);
        if (!iter || !salt)
            return GSASL_NO_CALLBACK;
        char key[512];
        unsigned hlen = strstr(b->o->mech, "SHA-256") ? 32 : 20;
        snprintf(key, sizeof key, "%u:%s:%s", hlen, iter, salt);
        const char *hex = cache_get(&b->cache, key);
        if (hex) {
            b->cache.hits++;
            return gsasl_property_set(sctx, GSASL_SCRAM_SALTED_PASSWORD, hex);
        }
        b->cache.misses++;
        char computed[2 * 32 + 1];
        if (derive_salted(b, hlen, iter, salt, computed) == 0) {
            cache_add(b, key, computed);
            return gsasl_property_set(sctx, GSASL_SCRAM_SALTED_PASSWORD, computed);
        }
        c->scram_miss = true;
        return GSASL_NO_CALLBACK; /* GNU SASL derives it from the password */
    }
    default:
        return GSASL_NO_CALLBACK;
    }
}

int sasl_init(bench *b)
{
    b->cache.append_fd = -1;
    password_fingerprint(b->o->password, b->cache.pwfp);
    int rc = gsasl_init(&b->gsasl);
    if (rc != GSASL_OK) {
        fprintf(stderr, "onair-bench: gsasl_init: %s\n", gsasl_strerror(rc));
        b->gsasl = NULL;
        return -1;
    }
    gsasl_callback_hook_set(b->gsasl, b);
    gsasl_callback_set(b->gsasl, sasl_callback);
    if (b->o->mode != MODE_REGISTER && b->o->mode != MODE_PROBE &&
        !gsasl_client_support_p(b->gsasl, b->o->mech)) {
        fprintf(stderr, "onair-bench: GNU SASL has no client for %s\n", b->o->mech);
        return -1;
    }
    if (b->o->scram_cache) {
        cache_load(&b->cache, b->o->scram_cache);
        b->cache.append_fd = open(b->o->scram_cache, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (b->cache.append_fd < 0)
            fprintf(stderr, "onair-bench: %s: %s (cache not saved)\n", b->o->scram_cache,
                    strerror(errno));
    }
    return 0;
}

void sasl_done(bench *b)
{
    for (size_t i = 0; i < b->cache.cap; i++) {
        free(b->cache.slots[i].key);
        free(b->cache.slots[i].hex);
    }
    free(b->cache.slots);
    b->cache.slots = NULL;
    b->cache.cap = b->cache.len = 0;
    if (b->cache.append_fd >= 0)
        close(b->cache.append_fd);
    b->cache.append_fd = -1;
    if (b->gsasl)
        gsasl_done(b->gsasl);
    b->gsasl = NULL;
}

int sasl_begin(conn *c, char **out, bool *complete)
{
    bench *b = c->b;
    char user[256];
    snprintf(user, sizeof user, "%s%lu", b->o->prefix, c->user);
    int rc = gsasl_client_start(b->gsasl, b->o->mech, &c->sasl);
    if (rc != GSASL_OK) {
        c->sasl = NULL;
        return rc;
    }
    gsasl_session_hook_set(c->sasl, c);
    if ((rc = gsasl_property_set(c->sasl, GSASL_AUTHID, user)) != GSASL_OK ||
        (rc = gsasl_property_set(c->sasl, GSASL_PASSWORD, b->o->password)) != GSASL_OK)
        return rc;
    rc = gsasl_step64(c->sasl, "", out);
    *complete = rc == GSASL_OK;
    return rc == GSASL_NEEDS_MORE || rc == GSASL_OK ? GSASL_OK : rc;
}

int sasl_step(conn *c, const char *in, char **out)
{
    *out = NULL;
    int rc = gsasl_step64(c->sasl, in, out);
    if (c->scram_miss && !c->scram_checked && (rc == GSASL_OK || rc == GSASL_NEEDS_MORE)) {
        /* The step that answered server-first computed SaltedPassword. */
        c->scram_checked = true;
        const char *hex = gsasl_property_fast(c->sasl, GSASL_SCRAM_SALTED_PASSWORD);
        const char *iter = gsasl_property_fast(c->sasl, GSASL_SCRAM_ITER);
        const char *salt = gsasl_property_fast(c->sasl, GSASL_SCRAM_SALT);
        if (hex && iter && salt) {
            bench *b = c->b;
            char key[512];
            unsigned hlen = strstr(b->o->mech, "SHA-256") ? 32 : 20;
            snprintf(key, sizeof key, "%u:%s:%s", hlen, iter, salt);
            cache_add(b, key, hex);
        }
    }
    return rc;
}

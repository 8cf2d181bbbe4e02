/* sasl.c - the glue between client streams and GNU SASL.
 *
 * The mechanisms themselves are libgsasl's; this file decides which ones a
 * stream may use (RFC 6120 section 6.4: PLAIN never without TLS, ANONYMOUS
 * only for the guest host) and answers libgsasl's property callback from the
 * account store: for SCRAM the salt, iteration count, StoredKey and ServerKey
 * (no password is ever needed or kept), for PLAIN a check of the offered
 * password against those keys.
 */
#include "sasl.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jid.h"

static void b64(const unsigned char *in, size_t len, char *out, size_t cap)
{
    if (4 * ((len + 2) / 3) + 1 > cap) {
        out[0] = '\0';
        return;
    }
    EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

/* Loads the SCRAM secrets of the user named in the client-first message.
 * An unknown user gets random secrets so that the exchange fails only at
 * the proof, like a wrong password. */
static int load_scram(sasl_exchange *x, Gsasl_session *sctx)
{
    if (x->has_scram)
        return 0;
    const char *authid = gsasl_property_fast(sctx, GSASL_AUTHID);
    if (!authid)
        return -1;
    account_hash hash = strcmp(x->mech, "SCRAM-SHA-1") == 0 ? ACCOUNT_SHA1 : ACCOUNT_SHA256;
    char *user = jid_nodeprep(authid);
    if (!user || account_get_scram(x->store, user, hash, &x->scram) != STORE_OK) {
        memset(&x->scram, 0, sizeof x->scram);
        x->scram.iterations = ACCOUNT_SCRAM_ITER_DEFAULT;
        x->scram.salt_len = 16;
        x->scram.key_len = hash == ACCOUNT_SHA1 ? 20 : 32;
        RAND_bytes(x->scram.salt, (int)x->scram.salt_len);
        RAND_bytes(x->scram.stored_key, (int)x->scram.key_len);
        RAND_bytes(x->scram.server_key, (int)x->scram.key_len);
    }
    free(user);
    snprintf(x->iter_str, sizeof x->iter_str, "%u", x->scram.iterations);
    b64(x->scram.salt, x->scram.salt_len, x->salt_b64, sizeof x->salt_b64);
    b64(x->scram.stored_key, x->scram.key_len, x->stored_b64, sizeof x->stored_b64);
    b64(x->scram.server_key, x->scram.key_len, x->server_b64, sizeof x->server_b64);
    x->has_scram = true;
    return 0;
}

static int callback(Gsasl *ctx, Gsasl_session *sctx, Gsasl_property prop)
{
    sasl_exchange *x = sctx ? gsasl_session_hook_get(sctx) : NULL;
    if (!x)
        return GSASL_NO_CALLBACK;
    switch (prop) {
    case GSASL_SCRAM_ITER:
    case GSASL_SCRAM_SALT:
    case GSASL_SCRAM_STOREDKEY:
    case GSASL_SCRAM_SERVERKEY:
        if (load_scram(x, sctx) != 0)
            return GSASL_NO_CALLBACK;
        gsasl_property_set(sctx, prop,
                           prop == GSASL_SCRAM_ITER        ? x->iter_str
                           : prop == GSASL_SCRAM_SALT      ? x->salt_b64
                           : prop == GSASL_SCRAM_STOREDKEY ? x->stored_b64
                                                           : x->server_b64);
        return GSASL_OK;
    case GSASL_VALIDATE_SIMPLE: {
        const char *authid = gsasl_property_fast(sctx, GSASL_AUTHID);
        const char *password = gsasl_property_fast(sctx, GSASL_PASSWORD);
        if (!authid || !password)
            return GSASL_AUTHENTICATION_ERROR;
        char *user = jid_nodeprep(authid);
        int ok = user && account_check_password(x->store, user, password) == 0;
        free(user);
        return ok ? GSASL_OK : GSASL_AUTHENTICATION_ERROR;
    }
    case GSASL_VALIDATE_ANONYMOUS:
        return x->is_guest ? GSASL_OK : GSASL_AUTHENTICATION_ERROR;
    default:
        return GSASL_NO_CALLBACK;
    }
}

int sasl_setup(Gsasl **out)
{
    if (gsasl_init(out) != GSASL_OK)
        return -1;
    gsasl_callback_set(*out, callback);
    return 0;
}

size_t sasl_mechanisms(const sasl_policy *policy, const char **names, size_t cap)
{
    size_t n = 0;
    if (policy->require_tls && !policy->is_secure)
        return 0;
    if (policy->is_guest_host) {
        if (n < cap)
            names[n++] = "ANONYMOUS";
        return n;
    }
    if (n < cap)
        names[n++] = "SCRAM-SHA-256";
    if (n < cap)
        names[n++] = "SCRAM-SHA-1";
    if (policy->allow_plain && policy->is_secure && n < cap)
        names[n++] = "PLAIN";
    return n;
}

#define ANONYMOUS_EMPTY_TRACE "YW5vbnltb3Vz" /* base64 of "anonymous" */

/* Runs one gsasl step and maps the outcome. */
static sasl_status run_step(sasl_exchange *x, const char *b64_in, char **b64_out, const char **condition)
{
    *b64_out = NULL;
    const char *in = b64_in;
    if (!in || strcmp(in, "=") == 0)
        in = "";
    /* RFC 4505 allows an empty ANONYMOUS message (the trace is optional);
     * GNU SASL wants 1 to 255 characters, so it gets a neutral one. */
    if (in[0] == '\0' && strcmp(x->mech, "ANONYMOUS") == 0)
        in = ANONYMOUS_EMPTY_TRACE;
    int rc = gsasl_step64(x->gs, in, b64_out);
    if (rc == GSASL_NEEDS_MORE)
        return SASL_CONTINUE;
    if (rc == GSASL_OK) {
        if (x->is_guest) {
            char node[13];
            unsigned char rnd[9];
            RAND_bytes(rnd, sizeof rnd);
            EVP_EncodeBlock((unsigned char *)node, rnd, sizeof rnd);
            for (char *p = node; *p; p++)
                *p = (*p == '+' || *p == '/') ? 'x' : (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
            x->user = strdup(node);
        } else {
            const char *authid = gsasl_property_fast(x->gs, GSASL_AUTHID);
            const char *authzid = gsasl_property_fast(x->gs, GSASL_AUTHZID);
            x->user = authid ? jid_nodeprep(authid) : NULL;
            if (x->user && authzid && authzid[0]) {
                /* We only allow authorizing as oneself (user or user@domain). */
                char *az = jid_normalize(authzid);
                size_t ul = strlen(x->user);
                bool same = az && strncmp(az, x->user, ul) == 0 && (az[ul] == '\0' || az[ul] == '@');
                free(az);
                if (!same) {
                    free(*b64_out);
                    *b64_out = NULL;
                    *condition = "invalid-authzid";
                    return SASL_FAILURE;
                }
            }
        }
        if (!x->user) {
            free(*b64_out);
            *b64_out = NULL;
            *condition = "not-authorized";
            return SASL_FAILURE;
        }
        if (!*b64_out)
            *b64_out = strdup("");
        return SASL_SUCCESS;
    }
    free(*b64_out);
    *b64_out = NULL;
    *condition = (rc == GSASL_MECHANISM_PARSE_ERROR || rc == GSASL_BASE64_ERROR) ? "malformed-request"
                                                                                   : "not-authorized";
    return SASL_FAILURE;
}

sasl_status sasl_start(sasl_exchange *x, Gsasl *ctx, store *st, const sasl_policy *policy, const char *mech,
                       const char *b64_in, char **b64_out, const char **condition)
{
    *b64_out = NULL;
    const char *names[4];
    size_t n = sasl_mechanisms(policy, names, 4);
    const char *chosen = NULL;
    for (size_t i = 0; i < n; i++)
        if (mech && strcmp(mech, names[i]) == 0)
            chosen = names[i];
    if (!chosen) {
        if (mech && strcmp(mech, "PLAIN") == 0 && !policy->is_secure && !policy->is_guest_host) {
            *condition = "encryption-required";
        } else {
            *condition = (policy->require_tls && !policy->is_secure) ? "encryption-required" : "invalid-mechanism";
        }
        return SASL_FAILURE;
    }
    x->store = st;
    x->mech = chosen;
    x->is_guest = policy->is_guest_host;
    if (gsasl_server_start(ctx, chosen, &x->gs) != GSASL_OK) {
        *condition = "temporary-auth-failure";
        return SASL_FAILURE;
    }
    gsasl_session_hook_set(x->gs, x);
    /* No initial response: ANONYMOUS logs in at once, as if with the trace
     * "anonymous" (RFC 4505 makes the trace optional and onair keeps none;
     * clients that send a bare <auth/> for it (strophe.js, @xmpp/client,
     * libstrophe) expect the outcome at once, as XEP-0175's examples show,
     * and GNU SASL wants a token of 1 to 255 characters); the other
     * mechanisms that need client data first get an empty challenge
     * (RFC 6120 6.4.2). */
    if (!b64_in && strcmp(chosen, "ANONYMOUS") == 0)
        return run_step(x, "YW5vbnltb3Vz", b64_out, condition);
    if (!b64_in) {
        if (strcmp(chosen, "PLAIN") == 0 || strncmp(chosen, "SCRAM", 5) == 0) {
            *b64_out = strdup("");
            return SASL_CONTINUE;
        }
    }
    return run_step(x, b64_in, b64_out, condition);
}

sasl_status sasl_step(sasl_exchange *x, const char *b64_in, char **b64_out, const char **condition)
{
    if (!x->gs) {
        *b64_out = NULL;
        *condition = "malformed-request";
        return SASL_FAILURE;
    }
    return run_step(x, b64_in, b64_out, condition);
}

void sasl_exchange_clear(sasl_exchange *x)
{
    if (x->gs)
        gsasl_finish(x->gs);
    free(x->user);
    OPENSSL_cleanse(&x->scram, sizeof x->scram);
    memset(x, 0, sizeof *x);
}

/* sasl.h - SASL for client streams (RFC 6120 section 6) through GNU SASL:
 * SCRAM-SHA-256 and SCRAM-SHA-1 from stored keys (RFC 5802, RFC 7677),
 * PLAIN only over TLS, ANONYMOUS only on the guest host (RFC 4505).
 *
 * One sasl_exchange lives for one authentication attempt; the stream owns it
 * and clears it when the exchange ends.
 */
#ifndef ONAIR_SASL_H
#define ONAIR_SASL_H

#include <gsasl.h>
#include <stdbool.h>
#include <stddef.h>

#include "account.h"
#include "store.h"

typedef struct sasl_policy {
    bool is_secure;   /* the stream runs over TLS */
    bool is_guest_host; /* the stream is for the guest domain */
    bool allow_plain;
    bool require_tls;
} sasl_policy;

typedef enum sasl_status { SASL_CONTINUE = 0, SASL_SUCCESS, SASL_FAILURE } sasl_status;

typedef struct sasl_exchange {
    Gsasl_session *gs;  /* owned */
    store *store;       /* borrowed */
    const char *mech;   /* static string */
    char *user;         /* owned: authenticated local part (generated for guests) */
    bool is_guest;
    bool has_scram;
    account_scram scram;
    char iter_str[16];
    char salt_b64[64];
    char stored_b64[64];
    char server_b64[64];
} sasl_exchange;

/* Creates the GNU SASL context with onair's callback.  Returns 0 or -1. */
int sasl_setup(Gsasl **out);

/* The mechanisms to advertise under policy, strongest first.  Returns the
 * count written to names (static strings), at most cap. */
size_t sasl_mechanisms(const sasl_policy *policy, const char **names, size_t cap);

/* Starts an exchange for mechanism `mech` with the optional initial response
 * (base64; "" or "=" for empty; NULL for none).  On SASL_CONTINUE *b64_out is
 * the challenge; on SASL_SUCCESS it is the additional data (possibly "");
 * caller frees *b64_out with free().  On SASL_FAILURE *condition names the
 * RFC 6120 SASL failure condition (static string).  x must be zeroed before;
 * clear it with sasl_exchange_clear afterwards. */
sasl_status sasl_start(sasl_exchange *x, Gsasl *ctx, store *st, const sasl_policy *policy, const char *mech,
                       const char *b64_in, char **b64_out, const char **condition);
sasl_status sasl_step(sasl_exchange *x, const char *b64_in, char **b64_out, const char **condition);
void sasl_exchange_clear(sasl_exchange *x);

#endif

/* media_srtp.c - SRTP contexts over libsrtp2 and SDES keys (media_srtp.h;
 * RFC 3711, RFC 4568 section 6.1).  The only file that includes libsrtp.
 */
#include "media_srtp.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <srtp2/srtp.h>
#include <stdlib.h>
#include <string.h>

struct media_srtp {
    srtp_t ctx; /* libsrtp derives its session keys at creation: the master key is not kept */
};

int media_srtp_init(void)
{
    if (srtp_init() != srtp_err_status_ok)
        return -1;
    /* AES-GCM exists only when libsrtp2 was built over a crypto library. */
    uint8_t key[MEDIA_SRTP_KEY_MAX] = {0};
    media_srtp *probe = media_srtp_new(MEDIA_SRTP_AEAD_AES_128_GCM, key, true);
    if (!probe)
        return -1;
    media_srtp_free(probe);
    return 0;
}

void media_srtp_shutdown(void)
{
    srtp_shutdown();
}

media_srtp_suite media_srtp_suite_by_name(const char *name)
{
    if (!name)
        return MEDIA_SRTP_NONE;
    if (strcmp(name, "AES_CM_128_HMAC_SHA1_80") == 0)
        return MEDIA_SRTP_AES_CM_128_HMAC_SHA1_80;
    if (strcmp(name, "AES_CM_128_HMAC_SHA1_32") == 0)
        return MEDIA_SRTP_AES_CM_128_HMAC_SHA1_32;
    if (strcmp(name, "AEAD_AES_128_GCM") == 0)
        return MEDIA_SRTP_AEAD_AES_128_GCM;
    return MEDIA_SRTP_NONE;
}

const char *media_srtp_suite_name(media_srtp_suite s)
{
    switch (s) {
    case MEDIA_SRTP_AES_CM_128_HMAC_SHA1_80:
        return "AES_CM_128_HMAC_SHA1_80";
    case MEDIA_SRTP_AES_CM_128_HMAC_SHA1_32:
        return "AES_CM_128_HMAC_SHA1_32";
    case MEDIA_SRTP_AEAD_AES_128_GCM:
        return "AEAD_AES_128_GCM";
    case MEDIA_SRTP_NONE:
        break;
    }
    return "";
}

size_t media_srtp_key_len(media_srtp_suite s)
{
    return s == MEDIA_SRTP_AEAD_AES_128_GCM ? 28 : 30;
}

static bool is_b64(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

int media_srtp_parse_key(media_srtp_suite suite, const char *kp, uint8_t key[MEDIA_SRTP_KEY_MAX], const char **why)
{
    static const char prefix[] = "inline:";
    if (!kp || strncmp(kp, prefix, sizeof prefix - 1) != 0) {
        *why = "key-params must be inline:<key||salt in base64>";
        return -1;
    }
    const char *b = kp + sizeof prefix - 1;
    size_t n = strcspn(b, "|");
    const char *rest = b + n;
    /* 30 bytes are 40 base64 characters; 28 are 38 and the padding "==". */
    size_t len = media_srtp_key_len(suite), pad = (3 - len % 3) % 3;
    const char *wrong_len = len == 30 ? "key-params: the key and salt must be 30 bytes (40 base64 characters)"
                                      : "key-params: the key and salt must be 28 bytes (38 base64 characters and \"==\")";
    if (n != (len + 2) / 3 * 4) {
        *why = wrong_len;
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (i >= n - pad ? b[i] != '=' : !is_b64(b[i])) {
            *why = i >= n - pad && is_b64(b[i]) ? wrong_len : "key-params: the key is not base64";
            return -1;
        }
    }
    if (*rest == '|') {
        /* |lifetime and then perhaps |MKI:length; a lifetime has no ':' */
        const char *second = strchr(rest + 1, '|');
        if (second || strchr(rest + 1, ':')) {
            *why = "key-params: a master key identifier (MKI) is not supported";
            return -1;
        }
    }
    unsigned char out[48];
    int got = EVP_DecodeBlock(out, (const unsigned char *)b, (int)n); /* counts the padding's zeros */
    if (got < 0 || (size_t)got - pad != len) {
        OPENSSL_cleanse(out, sizeof out);
        *why = "key-params: the key is not base64";
        return -1;
    }
    memcpy(key, out, len);
    OPENSSL_cleanse(out, sizeof out);
    return 0;
}

int media_srtp_new_key(media_srtp_suite suite, uint8_t key[MEDIA_SRTP_KEY_MAX], char out[MEDIA_SRTP_INLINE_MAX])
{
    size_t len = media_srtp_key_len(suite);
    if (RAND_bytes(key, (int)len) != 1)
        return -1;
    memcpy(out, "inline:", 7);
    EVP_EncodeBlock((unsigned char *)out + 7, key, (int)len); /* 40 characters and a NUL */
    return 0;
}

media_srtp *media_srtp_new(media_srtp_suite suite, const uint8_t key[MEDIA_SRTP_KEY_MAX], bool outbound)
{
    if (suite == MEDIA_SRTP_NONE)
        return NULL;
    media_srtp *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    uint8_t master[MEDIA_SRTP_KEY_MAX];
    memcpy(master, key, media_srtp_key_len(suite));
    srtp_policy_t p;
    memset(&p, 0, sizeof p);
    if (suite == MEDIA_SRTP_AEAD_AES_128_GCM) {
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&p.rtp);
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&p.rtcp); /* RFC 7714: SRTCP under the same AEAD */
    } else {
        if (suite == MEDIA_SRTP_AES_CM_128_HMAC_SHA1_32)
            srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&p.rtp);
        else
            srtp_crypto_policy_set_rtp_default(&p.rtp);
        srtp_crypto_policy_set_rtcp_default(&p.rtcp); /* SRTCP keeps the 80-bit tag (RFC 4568 6.2.1) */
    }
    p.ssrc.type = outbound ? ssrc_any_outbound : ssrc_any_inbound;
    p.key = master;
    p.window_size = 1024;
    p.allow_repeat_tx = 0;
    p.next = NULL;
    srtp_err_status_t st = srtp_create(&s->ctx, &p);
    OPENSSL_cleanse(master, sizeof master);
    if (st != srtp_err_status_ok) {
        free(s);
        return NULL;
    }
    return s;
}

void media_srtp_free(media_srtp *s)
{
    if (!s)
        return;
    srtp_dealloc(s->ctx);
    free(s);
}

static int result(srtp_err_status_t st)
{
    switch (st) {
    case srtp_err_status_ok:
        return MEDIA_SRTP_OK;
    case srtp_err_status_auth_fail:
        return MEDIA_SRTP_AUTH_FAIL;
    case srtp_err_status_replay_fail:
    case srtp_err_status_replay_old:
        return MEDIA_SRTP_REPLAY;
    default:
        return MEDIA_SRTP_BAD;
    }
}

int media_srtp_protect(media_srtp *s, uint8_t *pkt, size_t *len)
{
    int n = (int)*len;
    int rc = result(srtp_protect(s->ctx, pkt, &n));
    *len = (size_t)n;
    return rc;
}

int media_srtp_protect_rtcp(media_srtp *s, uint8_t *pkt, size_t *len)
{
    int n = (int)*len;
    int rc = result(srtp_protect_rtcp(s->ctx, pkt, &n));
    *len = (size_t)n;
    return rc;
}

int media_srtp_unprotect(media_srtp *s, uint8_t *pkt, size_t *len)
{
    if (*len < 12 + 10)
        return MEDIA_SRTP_BAD;
    int n = (int)*len;
    int rc = result(srtp_unprotect(s->ctx, pkt, &n));
    *len = (size_t)n;
    return rc;
}

int media_srtp_unprotect_rtcp(media_srtp *s, uint8_t *pkt, size_t *len)
{
    if (*len < 8 + 4 + 10)
        return MEDIA_SRTP_BAD;
    int n = (int)*len;
    int rc = result(srtp_unprotect_rtcp(s->ctx, pkt, &n));
    *len = (size_t)n;
    return rc;
}

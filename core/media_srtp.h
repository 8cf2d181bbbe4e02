/* media_srtp.h - SRTP behind one header (libsrtp2 is the backend; nothing
 * else in onair includes <srtp2/srtp.h>): SDES key parameters (RFC 4568
 * "inline:" keys), the crypto suites onair speaks, and one SRTP context per
 * direction of a media content.
 *
 * A context is either inbound (unprotects what one peer sends, under that
 * peer's key, for any SSRC it uses) or outbound (protects what the server
 * sends to one peer, under the server's key for it).  Keys are secrets:
 * callers never log them, and contexts wipe their copies when freed.
 */
#ifndef ONAIR_MEDIA_SRTP_H
#define ONAIR_MEDIA_SRTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MEDIA_SRTP_KEY_MAX 30     /* the longest key||salt: 16 + 14 bytes (AES-CM); AEAD 16 + 12 */
#define MEDIA_SRTP_TRAILER_MAX 32 /* room protect may need after a packet (tag and MKI at most) */
#define MEDIA_SRTP_INLINE_MAX 64  /* "inline:" + base64 of a key, with its NUL */

typedef enum media_srtp_suite {
    MEDIA_SRTP_NONE = 0,
    MEDIA_SRTP_AES_CM_128_HMAC_SHA1_80,
    MEDIA_SRTP_AES_CM_128_HMAC_SHA1_32,
    MEDIA_SRTP_AEAD_AES_128_GCM /* RFC 7714: AES-GCM, 16-byte tag, SRTCP too */
} media_srtp_suite;

/* Results of unprotect. */
enum {
    MEDIA_SRTP_OK = 0,
    MEDIA_SRTP_AUTH_FAIL = -1, /* forged, tampered, or under another key */
    MEDIA_SRTP_REPLAY = -2,    /* an index seen before, or older than the window */
    MEDIA_SRTP_BAD = -3        /* too short, or any other failure */
};

typedef struct media_srtp media_srtp; /* opaque */

/* Once per process, before any context (libsrtp keeps library-wide
 * tables).  0, or -1 (also when this libsrtp2 has no AES-GCM: it was built
 * without a crypto library). */
int media_srtp_init(void);
void media_srtp_shutdown(void);

/* The suite named by an SDP crypto-suite token, or MEDIA_SRTP_NONE. */
media_srtp_suite media_srtp_suite_by_name(const char *name);
const char *media_srtp_suite_name(media_srtp_suite s);
/* The length of the suite's key||salt: 30 (AES-CM) or 28 (AEAD AES-GCM). */
size_t media_srtp_key_len(media_srtp_suite s);

/* Reads RFC 4568 key-params "inline:<base64>[|lifetime]" of suite into
 * key (media_srtp_key_len bytes).  Returns 0, or -1 with a reason in *why
 * (a static string): not inline, not base64 of the suite's length, or a
 * master key identifier (unsupported). */
int media_srtp_parse_key(media_srtp_suite suite, const char *key_params, uint8_t key[MEDIA_SRTP_KEY_MAX],
                         const char **why);
/* Fills key with fresh random bytes (OpenSSL) for suite and writes its
 * key-params "inline:<base64>" into out.  0 or -1. */
int media_srtp_new_key(media_srtp_suite suite, uint8_t key[MEDIA_SRTP_KEY_MAX], char out[MEDIA_SRTP_INLINE_MAX]);

/* A context for suite and key (copied).  outbound: protects; else
 * unprotects.  Caller owns the result (media_srtp_free); NULL when out of
 * memory or libsrtp refuses. */
media_srtp *media_srtp_new(media_srtp_suite suite, const uint8_t key[MEDIA_SRTP_KEY_MAX], bool outbound);
void media_srtp_free(media_srtp *s);

/* In place.  *len is the packet's length in and out.  Protect needs
 * MEDIA_SRTP_TRAILER_MAX bytes of room after the packet.  MEDIA_SRTP_OK or
 * one of the codes above. */
int media_srtp_protect(media_srtp *s, uint8_t *pkt, size_t *len);
int media_srtp_protect_rtcp(media_srtp *s, uint8_t *pkt, size_t *len);
int media_srtp_unprotect(media_srtp *s, uint8_t *pkt, size_t *len);
int media_srtp_unprotect_rtcp(media_srtp *s, uint8_t *pkt, size_t *len);

#endif

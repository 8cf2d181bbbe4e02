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

#define MEDIA_SRTP_KEY_LEN 30     /* 16-byte master key + 14-byte master salt */
#define MEDIA_SRTP_TRAILER_MAX 32 /* room protect may need after a packet (tag and MKI at most) */
#define MEDIA_SRTP_INLINE_MAX 64  /* "inline:" + base64 of a key, with its NUL */

typedef enum media_srtp_suite {
    MEDIA_SRTP_NONE = 0,
    MEDIA_SRTP_AES_CM_128_HMAC_SHA1_80,
    MEDIA_SRTP_AES_CM_128_HMAC_SHA1_32
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
 * tables).  0 or -1. */
int media_srtp_init(void);
void media_srtp_shutdown(void);

/* The suite named by an SDP crypto-suite token, or MEDIA_SRTP_NONE. */
media_srtp_suite media_srtp_suite_by_name(const char *name);
const char *media_srtp_suite_name(media_srtp_suite s);

/* Reads RFC 4568 key-params "inline:<base64>[|lifetime]" into key.
 * Returns 0, or -1 with a reason in *why (a static string): not inline,
 * not base64 of 30 bytes, or a master key identifier (unsupported). */
int media_srtp_parse_key(const char *key_params, uint8_t key[MEDIA_SRTP_KEY_LEN], const char **why);
/* Fills key with fresh random bytes (OpenSSL) and writes its key-params
 * "inline:<base64>" into out.  0 or -1. */
int media_srtp_new_key(uint8_t key[MEDIA_SRTP_KEY_LEN], char out[MEDIA_SRTP_INLINE_MAX]);

/* A context for suite and key (copied).  outbound: protects; else
 * unprotects.  Caller owns the result (media_srtp_free); NULL when out of
 * memory or libsrtp refuses. */
media_srtp *media_srtp_new(media_srtp_suite suite, const uint8_t key[MEDIA_SRTP_KEY_LEN], bool outbound);
void media_srtp_free(media_srtp *s);

/* In place.  *len is the packet's length in and out.  Protect needs
 * MEDIA_SRTP_TRAILER_MAX bytes of room after the packet.  MEDIA_SRTP_OK or
 * one of the codes above. */
int media_srtp_protect(media_srtp *s, uint8_t *pkt, size_t *len);
int media_srtp_protect_rtcp(media_srtp *s, uint8_t *pkt, size_t *len);
int media_srtp_unprotect(media_srtp *s, uint8_t *pkt, size_t *len);
int media_srtp_unprotect_rtcp(media_srtp *s, uint8_t *pkt, size_t *len);

#endif

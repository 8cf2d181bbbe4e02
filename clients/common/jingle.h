/* jingle.h - the client side of a live's media session (specs/media.md):
 * XEP-0166 Jingle with XEP-0167 RTP contents, SDES-SRTP keys
 * (AES_CM_128_HMAC_SHA1_80, each side its own) and XEP-0177 raw UDP
 * candidates, to the live's endpoint <reservation id>@media.<domain>.  The
 * client initiates (as the broadcaster with <broadcast/>, or as a viewer),
 * the server answers with session-accept and may end it with
 * session-terminate; the media itself is left to ffmpeg (media_proc.h).
 */
#ifndef ONAIR_JINGLE_H
#define ONAIR_JINGLE_H

#include <stdbool.h>

#include "client.h"

#define JINGLE_MAX_CONTENTS 2
#define JINGLE_SUITE "AES_CM_128_HMAC_SHA1_80"
#define JINGLE_KEY_B64 44 /* base64 of 30 bytes (16-byte key, 14-byte salt) and NUL */

typedef struct jingle_codec {
    int pt;
    const char *name; /* H264, VP8, opus */
    int clockrate;
    int channels;     /* 0: not said */
    const char *fmtp; /* "packetization-mode=1" or NULL */
} jingle_codec;

typedef struct jingle_content {
    const char *media;             /* "video" or "audio" (also the content's name) */
    jingle_codec offer[3];         /* what the client offers, in order of preference */
    int noffer;
    int local_port;                /* RTP here; RTCP on local_port + 1 */
    char local_key[JINGLE_KEY_B64];
    /* from the session-accept */
    bool accepted;
    jingle_codec chosen;           /* its name points into offer[] */
    char remote_key[JINGLE_KEY_B64];
    char remote_ip[64];
    int remote_port, remote_rtcp_port;
} jingle_content;

typedef struct jingle_session {
    client *c;
    char endpoint[512];  /* <id>@media.<domain> */
    char sid[40];
    bool is_ingest;      /* senders='initiator' with <broadcast/>; else a viewer */
    char local_ip[64];
    jingle_content content[JINGLE_MAX_CONTENTS];
    int ncontent;
    /* what happened (set by the handler as the loop runs) */
    bool acknowledged, accepted, terminated;
    char reason[32];     /* of a session-terminate from the server: success, expired, ... */
    char reason_text[256];
    stanza_error error;  /* the refusal of the session-initiate */
} jingle_session;

/* Prepares a session to endpoint: a random sid, each content's key and a
 * free local port pair (even RTP port, RTCP the next), local_ip the address
 * this host reaches toward_host from.  Returns EXIT_OK or EXIT_MEDIA after
 * printing why. */
int jingle_prepare(jingle_session *s, client *c, const char *endpoint, bool is_ingest, const char *toward_host,
                   const char *progname);

/* Sends session-initiate with the credential element (credential "broadcast"
 * or "watch", password NULL for none) and waits for its acknowledgement.
 * Installs the handler that answers the server's session-accept and
 * session-terminate (the session must outlive the connection's loop).
 * Returns EXIT_OK; EXIT_REFUSED with the server's error in s->error (not
 * printed: jingle_print_refusal); EXIT_PROTOCOL after printing that no
 * answer came. */
int jingle_initiate(jingle_session *s, const char *credential, const char *password, const char *progname);

/* Prints s->error as "<progname>: the stream was refused: <text> (<condition>)". */
void jingle_print_refusal(const jingle_session *s, const char *progname);

/* Ends the session (session-terminate with reason, e.g. "success") unless
 * the server did; waits briefly for the acknowledgement.  Removes the handler. */
void jingle_terminate(jingle_session *s, const char *reason, const char *text);

/* The address the local host uses toward host (a UDP "connect"), as text. */
int jingle_local_ip(const char *host, char out[64]);

#endif

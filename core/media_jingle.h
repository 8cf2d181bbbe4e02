/* media_jingle.h - the Jingle stanzas of the media service (specs/media.md):
 * reading a session-initiate (XEP-0166 with XEP-0167 RTP descriptions,
 * SDES crypto and XEP-0177 raw UDP candidates, plus onair's <broadcast/> /
 * <watch/> credentials) into plain structs, and building the server's
 * session-accept and session-terminate.
 *
 * No sockets, no state: media.c decides; this file only translates.  The
 * structs own nothing (fixed buffers), so they are freed with their holder;
 * they hold a client's SRTP key, and media.c wipes them after use.
 */
#ifndef ONAIR_MEDIA_JINGLE_H
#define ONAIR_MEDIA_JINGLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "media_rtp.h"
#include "media_srtp.h"
#include "xml.h"

#define NS_JINGLE "urn:xmpp:jingle:1"
#define NS_JINGLE_ERRORS "urn:xmpp:jingle:errors:1"
#define NS_JINGLE_RTP "urn:xmpp:jingle:apps:rtp:1"
#define NS_JINGLE_RTP_ERRORS "urn:xmpp:jingle:apps:rtp:errors:1"
#define NS_JINGLE_RAW_UDP "urn:xmpp:jingle:transports:raw-udp:1"
#define NS_ONAIR_MEDIA "urn:onair:media:1"

#define MJ_MAX_CONTENTS 2
#define MJ_MAX_PAYLOADS 16
#define MJ_SID_MAX 128
#define MJ_NAME_MAX 64
#define MJ_PASSWORD_MAX 256

typedef enum mj_media { MJ_VIDEO = 0, MJ_AUDIO = 1 } mj_media;
typedef enum mj_role { MJ_INGEST = 0, MJ_WATCH = 1 } mj_role;

typedef struct mj_payload {
    unsigned id;       /* 0..127 */
    char name[32];     /* as sent ("" = static type without a name) */
    unsigned clockrate, channels;
    char params[512];  /* the <parameter/>s as "name=value;name=value" */
} mj_payload;

typedef struct mj_content {
    char name[MJ_NAME_MAX + 1];
    char creator[12];
    mj_media media;
    mj_payload pts[MJ_MAX_PAYLOADS];
    size_t npts;
    media_srtp_suite suite;
    char tag[16];
    uint8_t key[MEDIA_SRTP_KEY_MAX]; /* the client's key (media_srtp_key_len of suite): a secret */
    bool rtcp_mux;
    struct sockaddr_storage rtp;  /* component 1 */
    struct sockaddr_storage rtcp; /* component 2, or rtp's port + 1, or rtp (rtcp-mux) */
    bool has_rtcp_candidate;
} mj_content;

typedef struct mj_initiate {
    char sid[MJ_SID_MAX + 1];
    mj_role role;
    mj_content contents[MJ_MAX_CONTENTS];
    size_t ncontents;
    bool has_password;
    char password[MJ_PASSWORD_MAX + 1]; /* a secret */
} mj_initiate;

/* Why a request cannot be taken: an XMPP stanza error with an optional
 * application condition (app_ns/app_name) and a text. */
typedef struct mj_error {
    const char *type, *condition;
    const char *app_ns, *app_name; /* NULL when none */
    char text[256];                /* "" when none */
} mj_error;

/* Reads the <jingle/> of a session-initiate.  Checks structure, roles,
 * transport and crypto, in the order of specs/media.md "Errors", and for an
 * ingest that some payload type is supported.  0, or -1 with *err. */
int mj_parse_initiate(const xml_node *jingle, mj_initiate *out, mj_error *err);

/* The codec a payload type names (H264, VP8: known; others OTHER). */
media_codec mj_payload_codec(const mj_payload *p);
/* Whether the server relays this payload type for media m. */
bool mj_payload_supported(mj_media m, const mj_payload *p);
/* Whether a and b name the same codec (name, case-insensitive, and clock rate). */
bool mj_payload_same_codec(const mj_payload *a, const mj_payload *b);
/* "H264/90000" etc. into out. */
void mj_payload_describe(const mj_payload *p, char *out, size_t cap);
const char *mj_media_name(mj_media m);

/* One content of the server's session-accept. */
typedef struct mj_answer {
    const char *name, *creator, *senders;
    mj_media media;
    const mj_payload *pt;        /* the chosen payload type (its id is the one to send with) */
    const char *tag;
    media_srtp_suite suite;
    const char *key_params;      /* the server's "inline:..." for this content */
    const char *ip;              /* the server's media address */
    int port;
} mj_answer;

/* <iq type='set' id=id from=from to=to><jingle action='session-accept'
 * sid initiator responder=from> one content per answer </jingle></iq>.
 * Caller owns the result; NULL when out of memory. */
xml_node *mj_build_accept(const char *id, const char *from, const char *to, const char *sid,
                          const mj_answer *answers, size_t n);
/* A session-terminate with <reason><condition/><text/></reason> (text may
 * be NULL).  Caller owns the result. */
xml_node *mj_build_terminate(const char *id, const char *from, const char *to, const char *sid,
                             const char *condition, const char *text);

#endif

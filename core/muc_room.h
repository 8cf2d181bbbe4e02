/* muc_room.h - inside the chat service: the service state, rooms and
 * occupants, shared by muc.c (lifecycle, presence, messages), muc_room.c
 * (occupant tables, stanzas built and fanned out) and muc_admin.c (IQs:
 * discovery, moderation, configuration).  Other modules use muc.h.
 *
 * Ownership: the service owns its rooms (srv->muc->rooms); a room owns its
 * occupants, strings, history and record.  Occupants are found by real full
 * JID (by_jid) and by nickname (by_nick) and listed in occ[] for the
 * fan-out; each occupant also knows its index there (removal swaps the last
 * one in).
 */
#ifndef ONAIR_MUC_ROOM_H
#define ONAIR_MUC_ROOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uthash.h>
#include <uv.h>

#include "jid.h"
#include "muc.h"
#include "muc_history.h"
#include "muc_log.h"
#include "reservation.h"
#include "router.h"
#include "xml.h"

struct server;

#define NS_MUC "http://jabber.org/protocol/muc"
#define NS_MUC_USER "http://jabber.org/protocol/muc#user"
#define NS_MUC_ADMIN "http://jabber.org/protocol/muc#admin"
#define NS_MUC_OWNER "http://jabber.org/protocol/muc#owner"
#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"
#define NS_DELAY "urn:xmpp:delay"
#define NS_PING "urn:xmpp:ping"
#define NS_ONAIR_MUC "urn:onair:muc"

typedef enum muc_role { MUC_ROLE_NONE = 0, MUC_ROLE_VISITOR, MUC_ROLE_PARTICIPANT, MUC_ROLE_MODERATOR } muc_role;
typedef enum muc_affil { MUC_AFFIL_NONE = 0, MUC_AFFIL_OWNER, MUC_AFFIL_OUTCAST } muc_affil;
typedef enum muc_show { MUC_SHOW_NONE = 0, MUC_SHOW_AWAY, MUC_SHOW_CHAT, MUC_SHOW_DND, MUC_SHOW_XA } muc_show;

#define MUC_NOWHERE UINT32_MAX

typedef struct muc_occupant {
    char *jid;        /* owned: real full JID (key of by_jid) */
    char *nick;       /* owned: nickname (key of by_nick) */
    char *intro;      /* owned, NULL if none: the self-introduction (<status/> of its presence) */
    uint32_t jid_len;
    uint32_t index;   /* in room->occ */
    uint32_t mod_index; /* in room->mods, or MUC_NOWHERE */
    uint8_t role, affil, show;
    bool broadcast;   /* its join presence went to every occupant (so its leave goes too) */
    bool gone;        /* a delivery found nobody: removed after the fan-out */
    muc_rate rate;
    int64_t last_msg_ms; /* slow mode */
    uint64_t serial;  /* join order */
    UT_hash_handle hh_jid, hh_nick;
} muc_occupant;

typedef struct muc_room {
    char id[RES_ID_LEN + 1];
    char *jid;            /* owned: <id>@<muc host> */
    size_t jid_len;
    char *owner_bare;     /* owned: the broadcaster's account JID */
    char *title;          /* owned */
    char *description;    /* owned */
    char *password;       /* owned (wiped on free); NULL for public rooms */
    res_level level;
    uint32_t capacity;    /* occupants besides the broadcaster */
    int64_t start, end;   /* the live, in seconds */
    muc_room_record rec;  /* what the store keeps of the room (close time, subject, bans, ...) */

    muc_occupant **occ;   /* owned array of nocc (occupants owned through it) */
    size_t nocc, occ_cap;
    muc_occupant *by_jid, *by_nick; /* uthash heads (borrowed entries) */
    /* The few every joiner of a restricted room hears of, so that entering
     * a large room costs no walk over its occupants: */
    muc_occupant **mods;  /* owned array (borrowed entries): occupants with the moderator role */
    size_t nmods, mods_cap;
    size_t nviewers;      /* occupants not of the owner's account */
    bool restricted;      /* presence broadcast restricted to moderators (sticky) */
    bool sweeping;        /* removing ghosts */
    bool has_ghosts;      /* some occupant was found gone */
    uint64_t next_seq;    /* the next log number */
    uint64_t logged;      /* messages in the log */
    uint64_t next_serial;
    muc_history history;
    size_t count_sent;    /* the occupant count last announced */
    int64_t count_sent_ms;
    UT_hash_handle hh;
} muc_room;

/* A groupchat message accepted this loop turn, waiting for the log commit. */
typedef struct muc_pending {
    struct muc_pending *next;
    muc_room *room;       /* borrowed: a room flushes before it closes */
    muc_log_entry e;      /* strings owned (one block: strs) */
    char *strs;
} muc_pending;

typedef struct muc_service {
    struct server *srv;
    muc_room *rooms;      /* uthash by id */
    muc_pending *pend_head, *pend_tail;
    uv_check_t check;     /* commits and fans out pending messages at the end of a loop turn */
    bool check_on;
    bool stopping;
    xml_buf tmp, wire;    /* scratch serializer buffers */
    uint64_t deliveries;  /* spliced stanzas handed to the router */
    int64_t prune_at_ms;  /* the next pass over the closed rooms' logs (0: the next sweep) */
    uint64_t logs_removed; /* closed rooms' logs removed since the start */
} muc_service;

/* ---- muc_room.c: occupants and stanzas ---- */

muc_room *muc_room_find(muc_service *m, const char *id);
/* Frees a room and its occupants (no stanza is sent). */
void muc_room_free(muc_room *r);

muc_occupant *muc_occupant_by_jid(muc_room *r, const char *jid);
muc_occupant *muc_occupant_by_nick(muc_room *r, const char *nick);
/* Adds an occupant (strings copied); broadcast: whether its presence goes
 * to every occupant.  NULL when out of memory. */
muc_occupant *muc_occupant_add(muc_room *r, const char *jid, const char *nick, muc_role role, muc_affil affil,
                               bool broadcast, int64_t now_ms, uint32_t burst);
/* Renames (the nick tables follow).  Returns 0 or -1. */
int muc_occupant_rename(muc_room *r, muc_occupant *o, const char *nick);
/* Takes o out of the room and frees it. */
void muc_occupant_remove(muc_room *r, muc_occupant *o);
/* Sets o's role, keeping mods[] right.  Returns 0 or -1 (out of memory). */
int muc_occupant_set_role(muc_room *r, muc_occupant *o, muc_role role);
const char *muc_role_name(muc_role role);
const char *muc_affil_name(muc_affil a);
/* Whether a bare JID is the room's owner's account. */
bool muc_is_owner_jid(const muc_room *r, const char *jid);

/* Serializes n (which has no 'to') for the fan-out into out: head and tail
 * around the 'to' (router_splice).  Returns 0, or -1 out of memory. */
int muc_wire(muc_service *m, const xml_node *n, xml_buf *out, size_t *head_len);
/* Delivers a wire (see muc_wire) to one occupant; a failure marks it gone.
 * Ghosts are never removed inside these senders (callers may hold occupant
 * pointers): every entry point of the service (a stanza, a timer, the
 * flush) calls muc_remove_ghosts when it is done. */
void muc_send_wire(muc_service *m, muc_room *r, const xml_buf *wire, size_t head_len, muc_occupant *o);
/* Sends a stanza tree to one occupant (through the router). n borrowed. */
void muc_send_to(muc_service *m, const xml_node *n, const char *to);
/* Delivers a wire to every occupant (or, with mods_only, to moderators)
 * not already found gone. */
void muc_fanout(muc_service *m, muc_room *r, const xml_buf *wire, size_t head_len, bool mods_only);
/* Removes occupants found gone during a fan-out (unavailable with status
 * 333 to the others), until none is left. */
void muc_remove_ghosts(muc_service *m, muc_room *r);

/* Extras of an occupant presence the room sends. */
typedef struct muc_pres_extra {
    const char *new_nick;  /* status 303 */
    const char *actor;     /* kick/ban: the moderator's nick */
    const char *reason;
    const char *destroy_reason; /* room destroyed: <destroy><reason/></destroy> */
    const char *status;    /* <status/> text of an unavailable presence */
    bool sync;             /* a rejoin of a known occupant: the self-presence only */
} muc_pres_extra;

/* The occupant's presence tree (caller frees): from room/nick, type NULL or
 * "unavailable", with the real JID when with_jid, and status codes. */
xml_node *muc_presence_node(muc_room *r, const muc_occupant *o, const char *type, bool with_jid, const int *codes,
                            size_t ncodes, const muc_pres_extra *x);
/* Sends o's presence: to o itself (with 110 and self_codes), and to the
 * others (with codes) when to_others: to every occupant if o's presence is
 * broadcast, else to moderators. */
void muc_broadcast_presence(muc_service *m, muc_room *r, muc_occupant *o, const char *type, const int *codes,
                            size_t ncodes, const int *self_codes, size_t nself, const muc_pres_extra *x,
                            bool to_others);
/* An occupant leaves (unavailable with codes to it, unless it is gone, and
 * to the others), then is removed and freed. */
void muc_occupant_leave(muc_service *m, muc_room *r, muc_occupant *o, const int *codes, size_t ncodes,
                        const muc_pres_extra *x);
/* A groupchat message from the room itself (bodiless ones carry payload),
 * serialized once and fanned out; not logged. payload borrowed. */
void muc_room_broadcast(muc_service *m, muc_room *r, const char *body, xml_node *payload);
/* Saves the room's record in its own transaction.  STORE_OK or a code. */
int muc_room_save(muc_service *m, muc_room *r);

/* ---- muc_admin.c: IQs ---- */

/* An IQ to the service host, to a room (occupant NULL) or to an occupant
 * JID.  Borrowed stanza; answers or errors are sent. */
void muc_service_iq(muc_service *m, xml_node *iq, const jid *from);
void muc_room_iq(muc_service *m, muc_room *r, xml_node *iq, const jid *from, const char *nick);

/* ---- muc.c ---- */

/* Notice of the occupant count in restricted rooms (now if it changed). */
void muc_send_count(muc_service *m, muc_room *r, const char *to);
/* A room's slow mode or presence restriction changed: status 104 to all. */
void muc_config_changed(muc_service *m, muc_room *r);
/* Commits the pending messages and fans them out. */
void muc_flush(muc_service *m);

#endif

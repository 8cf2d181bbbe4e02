/* jid.h - XMPP addresses (RFC 6122 with the stringprep profiles of RFC 3920:
 * Nodeprep, Nameprep, Resourceprep, through libidn).
 *
 * A jid owns three normalised strings.  Parts are at most 1023 bytes each
 * after preparation; anything that fails preparation is malformed (the caller
 * answers jid-malformed).
 */
#ifndef ONAIR_JID_H
#define ONAIR_JID_H

#include <stdbool.h>
#include <stddef.h>

typedef struct jid {
    char *node;     /* owned, NULL if absent */
    char *domain;   /* owned, never NULL after a successful parse */
    char *resource; /* owned, NULL if absent */
} jid;

/* Parses and normalises s into out (zero-initialise out first or after
 * jid_clear).  Returns 0, or -1 if malformed or out of memory, in which case
 * out is left cleared. */
int jid_parse(const char *s, jid *out);
/* Frees the parts; out becomes empty.  Safe on a cleared jid. */
void jid_clear(jid *j);
/* Deep copy into out (cleared first by the caller).  Returns 0 or -1. */
int jid_copy(jid *out, const jid *in);

/* Builds a jid from parts (each prepared; node/resource may be NULL).
 * Returns 0 or -1 (malformed). */
int jid_from_parts(jid *out, const char *node, const char *domain, const char *resource);

/* "node@domain" or "domain"; caller frees. */
char *jid_bare(const jid *j);
/* "node@domain/resource" (parts present only); caller frees. */
char *jid_full(const jid *j);

/* Compare normalised forms. */
bool jid_bare_equal(const jid *a, const jid *b);
bool jid_full_equal(const jid *a, const jid *b);

/* Prepare one part; result is malloc'd (caller frees) or NULL if invalid. */
char *jid_nodeprep(const char *in);
char *jid_nameprep(const char *in);
char *jid_resourceprep(const char *in);

/* Normalises the string form of a JID (e.g. "User@LocalHost/r" ->
 * "user@localhost/r"); caller frees; NULL if malformed. */
char *jid_normalize(const char *s);

#endif

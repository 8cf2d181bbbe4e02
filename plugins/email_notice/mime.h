/* mime.h - the messages of the email_notice plugin, as bytes for SMTP:
 * RFC 5322 headers that user-supplied text cannot break out of (controls
 * and line breaks become spaces; anything beyond printable ASCII goes into
 * RFC 2047 encoded words, folded), UTF-8 bodies in quoted-printable
 * (RFC 2045: no line longer than 76 characters, whatever the text), an
 * optional text attachment (multipart/mixed), RFC 5322 dates.  Layout in
 * specs/email.md.
 *
 * Pure functions over memory: no I/O, no global state.  Every char *
 * returned is malloc'd and belongs to the caller.
 */
#ifndef ONAIR_EMAIL_MIME_H
#define ONAIR_EMAIL_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MIME_ADDRESS_MAX 254  /* RFC 5321 path limit, without the brackets */
#define MIME_FILENAME_MAX 100

/* A growing byte buffer.  After a failed allocation `failed` is set and
 * further appends do nothing. */
typedef struct mbuf {
    char *data; /* NUL-terminated when not failed */
    size_t len, cap;
    bool failed;
} mbuf;

void mbuf_add(mbuf *b, const void *p, size_t n);
void mbuf_str(mbuf *b, const char *s);
void mbuf_free(mbuf *b);
/* Zeroes the bytes (a message with a password in it), then frees. */
void mbuf_wipe(mbuf *b);

/* Whether addr is a plain addr-spec we send to: local@domain, printable
 * ASCII without spaces, quotes, brackets, commas, semicolons or
 * backslashes, at most MIME_ADDRESS_MAX bytes.  Nothing else ever reaches
 * a header or an SMTP command. */
bool mime_address_ok(const char *addr);
/* Whether name is a safe attachment file name: 1 to MIME_FILENAME_MAX of
 * A-Z a-z 0-9 . _ -, not starting with a dot. */
bool mime_filename_ok(const char *name);

/* Copies UTF-8 text with invalid sequences replaced by U+FFFD, and the
 * characters that must not reach a header (C0 and C1 controls, DEL, U+2028,
 * U+2029) replaced by one space each; runs of spaces are kept.  For a
 * body (multiline true) "\n" and "\t" are kept, "\r\n" and a lone "\r"
 * become "\n".  Returns NULL when out of memory. */
char *mime_clean(const char *text, bool multiline);

/* Appends "Name: value\r\n" for an unstructured header (Subject, or any
 * text field): value cleaned (mime_clean, one line), then written as it is
 * when it is printable ASCII without "=?" and fits, else as RFC 2047
 * "=?UTF-8?B?...?=" words of at most 75 characters that never split a
 * character; folded so no line exceeds 78 characters. */
void mime_header_text(mbuf *b, const char *name, const char *value);
/* Appends "Name: phrase <addr>\r\n" (the phrase quoted, or encoded words
 * when it is not printable ASCII; omitted when empty).  addr must pass
 * mime_address_ok. */
void mime_header_address(mbuf *b, const char *name, const char *phrase, const char *addr);
/* Appends text (cleaned, multiline) as quoted-printable with CRLF line
 * ends: no line over 76 characters, "=" and non-ASCII as =XX, spaces at
 * a line's end encoded, a leading "." or "From " encoded. */
void mime_qp(mbuf *b, const char *text);
/* RFC 5322 date of t in the process's local zone: "Wed, 15 Jan 2031
 * 18:00:00 +0000" (English names whatever the locale). */
void mime_date(int64_t t, char out[40]);

typedef struct mime_mail {
    const char *from_name;       /* may be "" */
    const char *from_addr;       /* mime_address_ok */
    const char *to_addr;         /* mime_address_ok */
    const char *subject;         /* any UTF-8 */
    const char *body;            /* any UTF-8, "\n" line ends */
    const char *attachment_name; /* NULL: none; else mime_filename_ok */
    const char *attachment;      /* its text */
    const char *message_id;      /* "local@domain", without brackets: [A-Za-z0-9.@_-] */
    const char *reservation_id;  /* NULL or an X-Onair-Reservation header value */
    int64_t date;
} mime_mail;

/* The whole message with CRLF line ends: headers (Date, From, To, Subject,
 * Message-ID, MIME-Version, Auto-Submitted, X-Onair-Reservation), then a
 * text/plain; charset=UTF-8 quoted-printable body, or multipart/mixed with
 * the body and the attachment.  *len gets its length.  NULL when an
 * address, the file name or the message ID is not acceptable, or out of
 * memory. */
char *mime_build(const mime_mail *m, size_t *len);

#endif

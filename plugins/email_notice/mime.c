/* mime.c - the messages of the email_notice plugin (mime.h, specs/email.md). */
#include "mime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LINE_MAX_HEADER 78 /* RFC 5322 2.1.1: SHOULD */
#define QP_LINE_MAX 76     /* RFC 2045 6.7 (5) */
#define WORD_BYTES 39      /* text per encoded word: 52 base64 characters, 64 in all */

/* ---- buffers ---- */

void mbuf_add(mbuf *b, const void *p, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) {
            b->failed = true;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void mbuf_str(mbuf *b, const char *s)
{
    mbuf_add(b, s, strlen(s));
}

void mbuf_free(mbuf *b)
{
    free(b->data);
    *b = (mbuf){0};
}

void mbuf_wipe(mbuf *b)
{
    if (b->data) {
        volatile char *p = b->data;
        for (size_t i = 0; i < b->cap; i++)
            p[i] = 0;
    }
    mbuf_free(b);
}

/* ---- checks ---- */

bool mime_address_ok(const char *addr)
{
    if (!addr)
        return false;
    size_t n = strlen(addr);
    const char *at = strrchr(addr, '@');
    if (n == 0 || n > MIME_ADDRESS_MAX || !at || at == addr || at[1] == '\0' || strchr(addr, '@') != at)
        return false;
    for (const char *p = addr; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c >= 0x7f || strchr("\"(),:;<>[\\]", c))
            return false;
    }
    /* the domain: labels of letters, digits and hyphens */
    for (const char *p = at + 1; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
              *p == '.'))
            return false;
    return at[1] != '.' && addr[n - 1] != '.' && !strstr(at, "..");
}

bool mime_filename_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > MIME_FILENAME_MAX || name[0] == '.')
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
              *p == '_' || *p == '-'))
            return false;
    return true;
}

static bool message_id_ok(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n < 3 || n > 200 || !strchr(id, '@'))
        return false;
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
              *p == '@' || *p == '_' || *p == '-'))
            return false;
    return true;
}

/* ---- UTF-8 ---- */

/* Decodes one code point at s (n bytes left, n > 0): returns the bytes it
 * takes, with *cp 0xFFFD for an invalid sequence (one byte consumed). */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xe0) == 0xc0) {
        len = 2, v = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3, v = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        *cp = 0xfffd;
        return 1;
    }
    if (n < len) {
        *cp = 0xfffd;
        return 1;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            *cp = 0xfffd;
            return 1;
        }
        v = (v << 6) | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) {
        *cp = 0xfffd;
        return 1;
    }
    *cp = v;
    return len;
}

static size_t utf8_put(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

char *mime_clean(const char *text, bool multiline)
{
    const unsigned char *s = (const unsigned char *)(text ? text : "");
    size_t n = strlen((const char *)s);
    char *out = malloc(3 * n + 1), *w = out;
    if (!out)
        return NULL;
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t k = utf8_next(s + i, n - i, &cp);
        i += k;
        if (cp == '\r') {
            if (!multiline)
                *w++ = ' ';
            else if (i < n && s[i] == '\n')
                continue; /* the \n comes next */
            else
                *w++ = '\n';
        } else if (cp == '\n' || cp == '\t') {
            *w++ = multiline ? (char)cp : ' ';
        } else if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029) {
            *w++ = ' ';
        } else {
            w += utf8_put(cp, w);
        }
    }
    *w = '\0';
    return out;
}

/* ---- headers ---- */

static void base64(mbuf *b, const unsigned char *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char out[4];
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        out[0] = tab[(v >> 18) & 63];
        out[1] = tab[(v >> 12) & 63];
        out[2] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        out[3] = i + 2 < n ? tab[v & 63] : '=';
        mbuf_add(b, out, 4);
    }
}

static bool plain_ascii(const char *s)
{
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            return false;
    return !strstr(s, "=?");
}

/* Writes clean (valid UTF-8, one line) as encoded words, starting at
 * column col; a word that would pass the line limit goes to a folded line. */
static void encoded_words(mbuf *b, const char *clean, size_t col)
{
    const unsigned char *s = (const unsigned char *)clean;
    size_t n = strlen(clean), i = 0;
    bool first = true;
    do {
        size_t k = n - i < WORD_BYTES ? n - i : WORD_BYTES;
        while (k > 0 && i + k < n && (s[i + k] & 0xc0) == 0x80)
            k--; /* never split a character */
        size_t wlen = 12 + (k + 2) / 3 * 4;
        if (!first || col + 1 + wlen > LINE_MAX_HEADER) {
            mbuf_str(b, first && col + 1 + wlen <= LINE_MAX_HEADER ? " " : "\r\n ");
            col = 1;
        } else {
            mbuf_str(b, " ");
            col++;
        }
        mbuf_str(b, "=?UTF-8?B?");
        base64(b, s + i, k);
        mbuf_str(b, "?=");
        col += wlen;
        i += k;
        first = false;
    } while (i < n);
}

void mime_header_text(mbuf *b, const char *name, const char *value)
{
    char *clean = mime_clean(value, false);
    if (!clean) {
        b->failed = true;
        return;
    }
    size_t nl = strlen(name);
    mbuf_str(b, name);
    mbuf_str(b, ":");
    if (!*clean) {
        mbuf_str(b, " ");
    } else if (plain_ascii(clean) && nl + 2 + strlen(clean) <= LINE_MAX_HEADER) {
        mbuf_str(b, " ");
        mbuf_str(b, clean);
    } else {
        encoded_words(b, clean, nl + 1);
    }
    mbuf_str(b, "\r\n");
    free(clean);
}

void mime_header_address(mbuf *b, const char *name, const char *phrase, const char *addr)
{
    char *clean = mime_clean(phrase ? phrase : "", false);
    if (!clean) {
        b->failed = true;
        return;
    }
    size_t col = strlen(name) + 1;
    mbuf_str(b, name);
    mbuf_str(b, ":");
    if (*clean) {
        size_t quoted = 0;
        for (const char *p = clean; *p; p++)
            quoted += (*p == '"' || *p == '\\') ? 2 : 1;
        if (plain_ascii(clean) && col + 3 + quoted <= LINE_MAX_HEADER) {
            mbuf_str(b, " \"");
            for (const char *p = clean; *p; p++) {
                if (*p == '"' || *p == '\\')
                    mbuf_str(b, "\\");
                mbuf_add(b, p, 1);
            }
            mbuf_str(b, "\"");
            col += 3 + quoted;
        } else {
            encoded_words(b, clean, col);
            col = LINE_MAX_HEADER; /* somewhere on a folded line: the address goes below */
        }
        /* The address follows on the line when it fits, else on its own. */
        mbuf_str(b, col + 3 + strlen(addr) <= LINE_MAX_HEADER ? " <" : "\r\n <");
    } else {
        mbuf_str(b, " <");
    }
    mbuf_str(b, addr);
    mbuf_str(b, ">\r\n");
    free(clean);
}

/* ---- bodies ---- */

void mime_qp(mbuf *b, const char *text)
{
    static const char hex[] = "0123456789ABCDEF";
    char *clean = mime_clean(text, true);
    if (!clean) {
        b->failed = true;
        return;
    }
    const char *p = clean;
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        size_t col = 0;
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)p[i];
            bool last = i + 1 == n;
            bool literal = (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !last);
            for (int pass = 0; pass < 2; pass++) {
                bool lead = col == 0 && (c == '.' || (c == 'F' && n - i >= 5 && memcmp(p + i, "From ", 5) == 0));
                size_t tok = literal && !lead ? 1 : 3;
                /* room for the token, and for a soft break after it unless the line ends */
                if (col + tok + (last ? 0 : 1) > QP_LINE_MAX && col > 0 && pass == 0) {
                    mbuf_str(b, "=\r\n");
                    col = 0;
                    continue;
                }
                if (tok == 1) {
                    mbuf_add(b, &p[i], 1);
                } else {
                    char e[3] = {'=', hex[c >> 4], hex[c & 15]};
                    mbuf_add(b, e, 3);
                }
                col += tok;
                break;
            }
        }
        mbuf_str(b, "\r\n");
        p += n;
        if (*p == '\n')
            p++;
    }
    free(clean);
}

void mime_date(int64_t t, char out[40])
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t tt = (time_t)t;
    struct tm tm;
    if (!localtime_r(&tt, &tm)) {
        snprintf(out, 40, "Thu, 01 Jan 1970 00:00:00 +0000");
        return;
    }
    long off = tm.tm_gmtoff / 60;
    char sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    snprintf(out, 40, "%s, %02d %s %04d %02d:%02d:%02d %c%02ld%02ld", days[tm.tm_wday % 7], tm.tm_mday,
             months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, sign, off / 60 % 100,
             off % 60);
}

/* ---- the message ---- */

char *mime_build(const mime_mail *m, size_t *len)
{
    bool attach = m->attachment_name != NULL;
    if (!mime_address_ok(m->from_addr) || !mime_address_ok(m->to_addr) || !message_id_ok(m->message_id) ||
        (attach && !mime_filename_ok(m->attachment_name)))
        return NULL;
    mbuf b = {0};
    char date[40];
    mime_date(m->date, date);
    mbuf_str(&b, "Date: ");
    mbuf_str(&b, date);
    mbuf_str(&b, "\r\n");
    mime_header_address(&b, "From", m->from_name, m->from_addr);
    mime_header_address(&b, "To", NULL, m->to_addr);
    mime_header_text(&b, "Subject", m->subject);
    mbuf_str(&b, "Message-ID: <");
    mbuf_str(&b, m->message_id);
    mbuf_str(&b, ">\r\nMIME-Version: 1.0\r\nAuto-Submitted: auto-generated\r\n");
    if (m->reservation_id && *m->reservation_id)
        mime_header_text(&b, "X-Onair-Reservation", m->reservation_id);
    if (!attach) {
        mbuf_str(&b, "Content-Type: text/plain; charset=UTF-8\r\n"
                     "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
        mime_qp(&b, m->body);
    } else {
        /* "=_" never occurs in quoted-printable text: the boundary cannot
         * appear inside the parts. */
        char boundary[96];
        snprintf(boundary, sizeof boundary, "=_onair_");
        size_t bl = strlen(boundary);
        for (const char *p = m->message_id; *p && *p != '@' && bl < 60; p++)
            if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'))
                boundary[bl++] = *p;
        boundary[bl] = '\0';
        mbuf_str(&b, "Content-Type: multipart/mixed; boundary=\"");
        mbuf_str(&b, boundary);
        mbuf_str(&b, "\"\r\n\r\nThis is a message in MIME format.\r\n--");
        mbuf_str(&b, boundary);
        mbuf_str(&b, "\r\nContent-Type: text/plain; charset=UTF-8\r\n"
                     "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
        mime_qp(&b, m->body);
        /* the CRLF before a delimiter belongs to the delimiter (RFC 2046 5.1.1) */
        mbuf_str(&b, "\r\n--");
        mbuf_str(&b, boundary);
        mbuf_str(&b, "\r\nContent-Type: text/plain; charset=UTF-8; name=\"");
        mbuf_str(&b, m->attachment_name);
        mbuf_str(&b, "\"\r\nContent-Disposition: attachment; filename=\"");
        mbuf_str(&b, m->attachment_name);
        mbuf_str(&b, "\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n");
        mime_qp(&b, m->attachment ? m->attachment : "");
        mbuf_str(&b, "\r\n--");
        mbuf_str(&b, boundary);
        mbuf_str(&b, "--\r\n");
    }
    if (b.failed) {
        mbuf_wipe(&b);
        return NULL;
    }
    *len = b.len;
    return b.data;
}

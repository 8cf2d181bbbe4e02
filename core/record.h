/* record.h - msgpack helpers shared by the record modules (account.c,
 * roster.c, offline.c).
 *
 * Every stored record is one msgpack map whose keys are short strings: "v"
 * (the record version, RECORD_VERSION) plus named fields.  Readers look
 * fields up by name, ignore keys they do not know (so a newer writer may add
 * fields without breaking an older reader) and treat a missing or mistyped
 * required field as STORE_CORRUPT.
 */
#ifndef ONAIR_RECORD_H
#define ONAIR_RECORD_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RECORD_VERSION 1

/* Encoder.  The bytes are owned by the writer until record_writer_free. */
typedef struct record_writer {
    msgpack_sbuffer buf;
    msgpack_packer pk;
    bool failed; /* an out-of-memory happened on the way */
} record_writer;

/* Starts a map of nfields named fields plus the version field. */
void record_writer_init(record_writer *w, size_t nfields);
void record_writer_free(record_writer *w);
/* Packs a key; the caller then packs exactly one value with w->pk and passes
 * its return code to record_check. */
void record_key(record_writer *w, const char *key);
void record_check(record_writer *w, int pack_rc);
void record_put_uint(record_writer *w, const char *key, uint64_t v);
void record_put_int(record_writer *w, const char *key, int64_t v);
void record_put_bool(record_writer *w, const char *key, bool v);
void record_put_str(record_writer *w, const char *key, const char *s, size_t len);
void record_put_bin(record_writer *w, const char *key, const void *p, size_t len);
/* STORE_OK with the encoded bytes (borrowed from w), or STORE_ERROR. */
int record_finish(record_writer *w, const void **data, size_t *len);

/* Decoder.  Strings and binaries point into the input bytes (no copy), so
 * they live as long as those bytes (for store values: the transaction). */
typedef struct record_reader {
    msgpack_zone zone;
    msgpack_object root;
    bool live;
} record_reader;

/* STORE_OK, STORE_CORRUPT (not a map, trailing bytes, version missing or not
 * RECORD_VERSION) or STORE_ERROR (out of memory).  On failure r needs no
 * record_reader_free (calling it is harmless). */
int record_read(record_reader *r, const void *data, size_t len);
void record_reader_free(record_reader *r);

/* The value of a field, NULL when absent. */
const msgpack_object *record_field(const record_reader *r, const char *key);
/* Typed getters: STORE_OK, or STORE_CORRUPT if absent or of another type. */
int record_get_uint(const record_reader *r, const char *key, uint64_t *out);
int record_get_int(const record_reader *r, const char *key, int64_t *out);
int record_get_bool(const record_reader *r, const char *key, bool *out);
int record_get_str(const record_reader *r, const char *key, const char **s, size_t *len);
int record_get_bin(const record_reader *r, const char *key, const void **p, size_t *len);

/* The store key of a user: the local part prepared with Nodeprep into buf
 * (RECORD_USER_MAX + 1 bytes), its length in *len.  STORE_OK, or STORE_ERROR
 * for an invalid or empty name. */
#define RECORD_USER_MAX 1023
int record_prep_user(const char *user, char *buf, size_t *len);

#endif

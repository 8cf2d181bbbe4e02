/* dataform.h - XEP-0004 data forms (jabber:x:data): reading a form a client
 * submitted and building the forms and results the server sends.
 *
 * A dataform is a plain tree of owned strings.  dataform_parse reads an
 * <x xmlns='jabber:x:data'/> element into one, refusing anything XEP-0004
 * forbids and anything over the limits below with a message that names the
 * problem (and the field); the builders make one from scratch, and
 * dataform_to_xml serializes it.  Forms are not shared: every dataform has
 * one owner, who frees it with dataform_free.  Pointers returned by the
 * getters are borrowed from the form and live as long as it does (or until
 * the field is changed).
 */
#ifndef ONAIR_DATAFORM_H
#define ONAIR_DATAFORM_H

#include <stdbool.h>
#include <stddef.h>

#include "xml.h"

#define DATAFORM_NS "jabber:x:data"

/* Parser limits: a form over any of them is refused (DATAFORM_ERR_LIMIT). */
#define DATAFORM_MAX_FIELDS 64   /* fields of the form, and columns of <reported/> */
#define DATAFORM_MAX_VALUES 64   /* <value/>s of one field */
#define DATAFORM_MAX_OPTIONS 64  /* <option/>s of one field */
#define DATAFORM_MAX_ITEMS 256   /* <item/> rows of a result */

/* Return codes. */
#define DATAFORM_OK 0
#define DATAFORM_ABSENT (-1)        /* getter: no such field, or it has no value */
#define DATAFORM_ERR_INVALID (-2)   /* not a data form, or breaks a rule of XEP-0004 */
#define DATAFORM_ERR_LIMIT (-3)     /* over one of the limits above */
#define DATAFORM_ERR_NO_MEMORY (-4)

typedef enum dataform_type {
    DATAFORM_FORM = 0, /* the server asks: fields to fill in */
    DATAFORM_SUBMIT,   /* the client answers */
    DATAFORM_CANCEL,   /* the client declines */
    DATAFORM_RESULT    /* data the server returns (with reported/item: a table) */
} dataform_type;

typedef enum dataform_field_type {
    DATAFORM_TEXT_SINGLE = 0, /* the default, and what an unknown type is read as */
    DATAFORM_BOOLEAN,
    DATAFORM_FIXED,
    DATAFORM_HIDDEN,
    DATAFORM_JID_MULTI,
    DATAFORM_JID_SINGLE,
    DATAFORM_LIST_MULTI,
    DATAFORM_LIST_SINGLE,
    DATAFORM_TEXT_MULTI,
    DATAFORM_TEXT_PRIVATE
} dataform_field_type;

typedef struct dataform_option {
    char *label; /* owned; NULL if none */
    char *value; /* owned */
} dataform_option;

typedef struct dataform_field {
    char *var;   /* owned; NULL only for a fixed field */
    char *label; /* owned; NULL if none */
    char *desc;  /* owned; NULL if none */
    dataform_field_type type;
    bool type_given;       /* parsed: the element had a type attribute (always true when built) */
    bool required;
    char **values;         /* owned array of owned strings */
    size_t nvalues;
    dataform_option *options; /* owned */
    size_t noptions;
} dataform_field;

/* One row of a multi-item result (XEP-0004 section 3.4): a field per column. */
typedef struct dataform_item {
    dataform_field *fields; /* owned */
    size_t nfields;
} dataform_item;

typedef struct dataform {
    dataform_type type;
    char *title;        /* owned; NULL if none */
    char *instructions; /* owned; NULL if none; several <instructions/> are joined with "\n" */
    dataform_field *fields; /* owned, in document order */
    size_t nfields;
    dataform_field *reported; /* owned: the columns of a table result; nreported 0 = no <reported/> */
    size_t nreported;
    dataform_item *items;     /* owned rows */
    size_t nitems;
} dataform;

/* ---- reading ---- */

/* Parses x (borrowed) into *out (caller owns; dataform_free).  Returns
 * DATAFORM_OK, or an error code with a one-line reason in err (which may be
 * NULL), e.g. "field 'start': more than one <value/> for a text-single field".
 * Refused: an element that is not <x xmlns='jabber:x:data'>, a missing or
 * unknown form type, a field other than fixed without a var, a var used
 * twice, several values in a single-valued field, options outside list
 * fields, an option without exactly one value, a reported/item outside a
 * result, and anything over the DATAFORM_MAX_* limits.  A field type
 * unknown to XEP-0004 is read as text-single (as section 3.3 says); elements
 * in other namespaces inside the form are ignored. */
int dataform_parse(const xml_node *x, dataform **out, char *err, size_t errlen);

/* The field with that var, or NULL. */
const dataform_field *dataform_field_get(const dataform *f, const char *var);
/* First value of the field, or NULL (no such field or no value). */
const char *dataform_value(const dataform *f, const char *var);
/* All values of the field (array borrowed from the form); returns their count, 0 if absent. */
size_t dataform_values(const dataform *f, const char *var, const char *const **values);
/* The values joined with "\n" (a text-multi field as one text); caller
 * frees.  NULL if the field is absent (an empty field gives ""), or out of memory. */
char *dataform_text(const dataform *f, const char *var);
/* XEP-0004 boolean: "1"/"true" and "0"/"false".  Returns DATAFORM_OK with
 * *out set, DATAFORM_ABSENT (no field or no value: *out untouched, the
 * caller applies the default, which XEP-0004 says is false) or
 * DATAFORM_ERR_INVALID for any other value. */
int dataform_bool(const dataform *f, const char *var, bool *out);
int dataform_parse_bool(const char *s, bool *out);
/* The value of the hidden FORM_TYPE field (XEP-0068), or NULL. */
const char *dataform_form_type(const dataform *f);

const char *dataform_type_name(dataform_type t);           /* "form", "submit", ... */
const char *dataform_field_type_name(dataform_field_type t); /* "text-single", ... */

/* ---- building ---- */

/* A new empty form (caller owns; dataform_free).  title and instructions
 * are copied and may be NULL; instructions containing "\n" are written as
 * one <instructions/> per line.  NULL when out of memory. */
dataform *dataform_new(dataform_type type, const char *title, const char *instructions);
void dataform_free(dataform *f);

/* Appends a field and returns it (owned by the form; valid until the next
 * field is added).  var may be NULL only for DATAFORM_FIXED; label may be
 * NULL.  Strings are copied.  NULL when out of memory or var is missing. */
dataform_field *dataform_add_field(dataform *f, dataform_field_type type, const char *var, const char *label);
/* The following return DATAFORM_OK or DATAFORM_ERR_NO_MEMORY (strings are copied). */
int dataform_field_set_desc(dataform_field *fl, const char *desc);
void dataform_field_set_required(dataform_field *fl, bool required);
int dataform_field_add_value(dataform_field *fl, const char *value);
/* For list-single / list-multi fields; label may be NULL. */
int dataform_field_add_option(dataform_field *fl, const char *label, const char *value);
/* Splits text at "\n" (a trailing "\r" is dropped) into one value per line:
 * the way to fill a text-multi field. */
int dataform_field_set_text(dataform_field *fl, const char *text);

/* Shorthands: a field with one value (value may be NULL for none).  Return the field or NULL. */
dataform_field *dataform_add_text(dataform *f, const char *var, const char *label, const char *value);
dataform_field *dataform_add_bool(dataform *f, const char *var, const char *label, bool value);
dataform_field *dataform_add_fixed(dataform *f, const char *text);
/* The hidden FORM_TYPE field with the given namespace. */
dataform_field *dataform_add_form_type(dataform *f, const char *form_type);

/* A table result (XEP-0004 section 3.4): declare the columns, then add rows
 * and set each row's cells.  The column is returned like dataform_add_field. */
dataform_field *dataform_add_column(dataform *f, dataform_field_type type, const char *var, const char *label);
/* Appends an empty row; returns it (owned by the form; valid until the next row is added), NULL on OOM. */
dataform_item *dataform_add_item(dataform *f);
/* Adds value to the row's cell var (created on first use).  DATAFORM_OK or an error code. */
int dataform_item_add_value(dataform_item *it, const char *var, const char *value);

/* Serializes the form as <x xmlns='jabber:x:data' type=...>; caller owns
 * the element.  Rows are written with a field for every column, in column
 * order (an empty cell as a field without value), as section 3.4 requires.
 * NULL when out of memory. */
xml_node *dataform_to_xml(const dataform *f);

#endif

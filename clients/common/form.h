/* form.h - XEP-0004 data forms on the client side: building a submission,
 * reading a form or result (fields, and tables of reported/item), and
 * printing one for a person or a script.  Values are copies owned by the
 * form; form_free() frees everything.
 */
#ifndef ONAIR_FORM_H
#define ONAIR_FORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <strophe.h>

typedef struct form_field {
    char *var, *label, *type;
    char **values;
    size_t nvalues;
} form_field;

typedef struct form_item {
    form_field *fields;
    size_t nfields;
} form_item;

typedef struct form {
    char *type; /* form, submit, result, cancel */
    char *title, *instructions;
    form_field *fields;
    size_t nfields;
    form_field *reported; /* the columns of a table */
    size_t nreported;
    form_item *items; /* its rows */
    size_t nitems;
} form;

/* An empty form of type (e.g. "submit"); NULL when out of memory. */
form *form_new(const char *type);
/* Sets var's values from value: one value per line (text-multi). Replaces
 * what var had.  Returns false when out of memory. */
bool form_set(form *f, const char *var, const char *value);
/* Reads a <x xmlns='jabber:x:data'/> element; NULL if x is not one. */
form *form_from_stanza(xmpp_stanza_t *x);
/* The form as <x/>; the caller releases it. */
xmpp_stanza_t *form_to_stanza(const form *f, xmpp_ctx_t *ctx);
void form_free(form *f);

const form_field *form_get(const form *f, const char *var);
/* The first value of var (borrowed), or NULL. */
const char *form_value(const form *f, const char *var);

/* Prints the fields as "var: value" lines (later values of a field on
 * lines of their own, indented), without FORM_TYPE; a table as aligned
 * columns (or a block per row when a cell has several values). */
void form_print(FILE *out, const form *f);

#endif

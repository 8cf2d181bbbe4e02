/* dataform.c - XEP-0004 data forms: parser with limits, getters, builders
 * and the serializer.  See dataform.h for the rules the parser applies.
 */
#include "dataform.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const form_types[] = {"form", "submit", "cancel", "result"};

static const char *const field_types[] = {
    "text-single", "boolean", "fixed", "hidden", "jid-multi",
    "jid-single", "list-multi", "list-single", "text-multi", "text-private",
};

const char *dataform_type_name(dataform_type t)
{
    return (unsigned)t < sizeof form_types / sizeof form_types[0] ? form_types[t] : "form";
}

const char *dataform_field_type_name(dataform_field_type t)
{
    return (unsigned)t < sizeof field_types / sizeof field_types[0] ? field_types[t] : "text-single";
}

static bool multi_valued(dataform_field_type t)
{
    return t == DATAFORM_LIST_MULTI || t == DATAFORM_JID_MULTI || t == DATAFORM_TEXT_MULTI || t == DATAFORM_HIDDEN;
}

static bool is_list(dataform_field_type t)
{
    return t == DATAFORM_LIST_SINGLE || t == DATAFORM_LIST_MULTI;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Replaces *slot with a copy of s (NULL clears).  0 or -1 on OOM. */
static int set_str(char **slot, const char *s)
{
    char *d = NULL;
    if (s && !(d = strdup(s)))
        return -1;
    free(*slot);
    *slot = d;
    return 0;
}

/* ---- freeing ---- */

static void field_clear(dataform_field *fl)
{
    free(fl->var);
    free(fl->label);
    free(fl->desc);
    for (size_t i = 0; i < fl->nvalues; i++)
        free(fl->values[i]);
    free(fl->values);
    for (size_t i = 0; i < fl->noptions; i++) {
        free(fl->options[i].label);
        free(fl->options[i].value);
    }
    free(fl->options);
    memset(fl, 0, sizeof *fl);
}

static void fields_free(dataform_field *fields, size_t n)
{
    for (size_t i = 0; i < n; i++)
        field_clear(&fields[i]);
    free(fields);
}

void dataform_free(dataform *f)
{
    if (!f)
        return;
    free(f->title);
    free(f->instructions);
    fields_free(f->fields, f->nfields);
    fields_free(f->reported, f->nreported);
    for (size_t i = 0; i < f->nitems; i++)
        fields_free(f->items[i].fields, f->items[i].nfields);
    free(f->items);
    free(f);
}

/* ---- growing arrays (capacity = next power of two of the count) ---- */

static bool grow(void **arr, size_t n, size_t elem)
{
    if (n & (n - 1))
        return true; /* not a power of two: room remains */
    size_t cap = n ? n * 2 : 1;
    void *p = realloc(*arr, cap * elem);
    if (!p)
        return false;
    *arr = p;
    return true;
}

static dataform_field *append_field(dataform_field **arr, size_t *n)
{
    if (!grow((void **)arr, *n, sizeof **arr))
        return NULL;
    dataform_field *fl = &(*arr)[(*n)++];
    memset(fl, 0, sizeof *fl);
    return fl;
}

int dataform_field_add_value(dataform_field *fl, const char *value)
{
    if (!grow((void **)&fl->values, fl->nvalues, sizeof *fl->values))
        return DATAFORM_ERR_NO_MEMORY;
    char *v = strdup(value ? value : "");
    if (!v)
        return DATAFORM_ERR_NO_MEMORY;
    fl->values[fl->nvalues++] = v;
    return DATAFORM_OK;
}

int dataform_field_add_option(dataform_field *fl, const char *label, const char *value)
{
    if (!grow((void **)&fl->options, fl->noptions, sizeof *fl->options))
        return DATAFORM_ERR_NO_MEMORY;
    dataform_option o = {dup_or_null(label), strdup(value ? value : "")};
    if (!o.value || (label && !o.label)) {
        free(o.label);
        free(o.value);
        return DATAFORM_ERR_NO_MEMORY;
    }
    fl->options[fl->noptions++] = o;
    return DATAFORM_OK;
}

/* ---- parsing ---- */

typedef struct parse_ctx {
    char *err;
    size_t errlen;
    bool infer_types; /* not a "form": a field without a type has its form's type (XEP-0004 3.2) */
} parse_ctx;

static int fail(parse_ctx *pc, int code, const char *fmt, ...)
{
    if (pc->err && pc->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(pc->err, pc->errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

static bool is_df(const xml_node *n, const char *name)
{
    return n->type == XML_ELEMENT && strcmp(n->ns, DATAFORM_NS) == 0 && strcmp(n->name, name) == 0;
}

/* A name for messages: the var, or the field's position. */
static void field_name(char *out, size_t cap, const char *var, size_t index)
{
    if (var)
        snprintf(out, cap, "field '%.64s'", var);
    else
        snprintf(out, cap, "field %zu", index + 1);
}

static int parse_field(parse_ctx *pc, const xml_node *el, dataform_field *fl, size_t index, bool in_table)
{
    const char *var = xml_node_attr(el, "var");
    const char *type = xml_node_attr(el, "type");
    char name[96];
    field_name(name, sizeof name, var, index);
    fl->type = DATAFORM_TEXT_SINGLE;
    if (type) {
        fl->type_given = true;
        for (size_t i = 0; i < sizeof field_types / sizeof field_types[0]; i++)
            if (strcmp(type, field_types[i]) == 0)
                fl->type = (dataform_field_type)i;
    }
    if (!var && (fl->type != DATAFORM_FIXED || in_table))
        return fail(pc, DATAFORM_ERR_INVALID, "%s: a %s field needs a var", name, field_types[fl->type]);
    if (set_str(&fl->var, var) || set_str(&fl->label, xml_node_attr(el, "label")))
        return fail(pc, DATAFORM_ERR_NO_MEMORY, "out of memory");
    for (const xml_node *k = el->children; k; k = k->next) {
        if (k->type != XML_ELEMENT || strcmp(k->ns, DATAFORM_NS) != 0)
            continue;
        if (strcmp(k->name, "value") == 0) {
            if (fl->nvalues >= DATAFORM_MAX_VALUES)
                return fail(pc, DATAFORM_ERR_LIMIT, "%s: more than %d values", name, DATAFORM_MAX_VALUES);
            /* In a submitted (or result) form a field without a type has
             * the type the receiver gave it, perhaps list-multi: clients
             * omit it (XEP-0004 3.2), so several values are not refused. */
            if (fl->nvalues >= 1 && !multi_valued(fl->type) && (fl->type_given || !pc->infer_types))
                return fail(pc, DATAFORM_ERR_INVALID, "%s: more than one <value/> for a %s field", name,
                            field_types[fl->type]);
            char *v = xml_node_text(k);
            if (!v)
                return fail(pc, DATAFORM_ERR_NO_MEMORY, "out of memory");
            int rc = dataform_field_add_value(fl, v);
            free(v);
            if (rc != DATAFORM_OK)
                return fail(pc, rc, "out of memory");
        } else if (strcmp(k->name, "option") == 0) {
            if (!is_list(fl->type))
                return fail(pc, DATAFORM_ERR_INVALID, "%s: <option/> in a %s field", name, field_types[fl->type]);
            if (fl->noptions >= DATAFORM_MAX_OPTIONS)
                return fail(pc, DATAFORM_ERR_LIMIT, "%s: more than %d options", name, DATAFORM_MAX_OPTIONS);
            const xml_node *v = xml_node_child(k, "value", DATAFORM_NS);
            if (!v || xml_node_next(v, "value", DATAFORM_NS))
                return fail(pc, DATAFORM_ERR_INVALID, "%s: an <option/> needs exactly one <value/>", name);
            char *text = xml_node_text(v);
            if (!text)
                return fail(pc, DATAFORM_ERR_NO_MEMORY, "out of memory");
            int rc = dataform_field_add_option(fl, xml_node_attr(k, "label"), text);
            free(text);
            if (rc != DATAFORM_OK)
                return fail(pc, rc, "out of memory");
        } else if (strcmp(k->name, "desc") == 0) {
            char *d = xml_node_text(k);
            if (!d)
                return fail(pc, DATAFORM_ERR_NO_MEMORY, "out of memory");
            free(fl->desc);
            fl->desc = d;
        } else if (strcmp(k->name, "required") == 0) {
            fl->required = true;
        }
    }
    return DATAFORM_OK;
}

/* Parses the <field/> children of parent into arr (checking unique vars). */
static int parse_fields(parse_ctx *pc, const xml_node *parent, dataform_field **arr, size_t *n, size_t max,
                        bool in_table)
{
    for (const xml_node *k = parent->children; k; k = k->next) {
        if (!is_df(k, "field"))
            continue;
        if (*n >= max)
            return fail(pc, DATAFORM_ERR_LIMIT, "more than %zu fields", max);
        dataform_field *fl = append_field(arr, n);
        if (!fl)
            return fail(pc, DATAFORM_ERR_NO_MEMORY, "out of memory");
        int rc = parse_field(pc, k, fl, *n - 1, in_table);
        if (rc != DATAFORM_OK)
            return rc;
        for (size_t i = 0; fl->var && i + 1 < *n; i++)
            if ((*arr)[i].var && strcmp((*arr)[i].var, fl->var) == 0)
                return fail(pc, DATAFORM_ERR_INVALID, "field '%.64s' appears twice", fl->var);
    }
    return DATAFORM_OK;
}

static int append_instructions(dataform *f, const xml_node *el)
{
    char *t = xml_node_text(el);
    if (!t)
        return DATAFORM_ERR_NO_MEMORY;
    if (!f->instructions) {
        f->instructions = t;
        return DATAFORM_OK;
    }
    size_t a = strlen(f->instructions), b = strlen(t);
    char *joined = realloc(f->instructions, a + 1 + b + 1);
    if (!joined) {
        free(t);
        return DATAFORM_ERR_NO_MEMORY;
    }
    joined[a] = '\n';
    memcpy(joined + a + 1, t, b + 1);
    f->instructions = joined;
    free(t);
    return DATAFORM_OK;
}

static int parse_form(parse_ctx *pc, const xml_node *x, dataform *f)
{
    const char *type = xml_node_attr(x, "type");
    if (!type)
        return fail(pc, DATAFORM_ERR_INVALID, "the form has no type");
    size_t t = 0;
    while (t < sizeof form_types / sizeof form_types[0] && strcmp(type, form_types[t]) != 0)
        t++;
    if (t == sizeof form_types / sizeof form_types[0])
        return fail(pc, DATAFORM_ERR_INVALID, "unknown form type '%.32s'", type);
    f->type = (dataform_type)t;
    pc->infer_types = f->type != DATAFORM_FORM;
    int rc = parse_fields(pc, x, &f->fields, &f->nfields, DATAFORM_MAX_FIELDS, false);
    if (rc != DATAFORM_OK)
        return rc;
    for (const xml_node *k = x->children; k; k = k->next) {
        if (is_df(k, "title")) {
            free(f->title);
            if (!(f->title = xml_node_text(k)))
                return fail(pc, DATAFORM_ERR_NO_MEMORY, "out of memory");
        } else if (is_df(k, "instructions")) {
            if (append_instructions(f, k) != DATAFORM_OK)
                return fail(pc, DATAFORM_ERR_NO_MEMORY, "out of memory");
        } else if (is_df(k, "reported")) {
            if (f->type != DATAFORM_RESULT)
                return fail(pc, DATAFORM_ERR_INVALID, "<reported/> outside a result");
            if (f->reported)
                return fail(pc, DATAFORM_ERR_INVALID, "more than one <reported/>");
            rc = parse_fields(pc, k, &f->reported, &f->nreported, DATAFORM_MAX_FIELDS, true);
            if (rc != DATAFORM_OK)
                return rc;
            if (f->nreported == 0)
                return fail(pc, DATAFORM_ERR_INVALID, "<reported/> without fields");
        } else if (is_df(k, "item")) {
            if (f->type != DATAFORM_RESULT)
                return fail(pc, DATAFORM_ERR_INVALID, "<item/> outside a result");
            if (f->nitems >= DATAFORM_MAX_ITEMS)
                return fail(pc, DATAFORM_ERR_LIMIT, "more than %d items", DATAFORM_MAX_ITEMS);
            if (!grow((void **)&f->items, f->nitems, sizeof *f->items))
                return fail(pc, DATAFORM_ERR_NO_MEMORY, "out of memory");
            dataform_item *it = &f->items[f->nitems++];
            memset(it, 0, sizeof *it);
            rc = parse_fields(pc, k, &it->fields, &it->nfields, DATAFORM_MAX_FIELDS, true);
            if (rc != DATAFORM_OK)
                return rc;
        }
    }
    if (f->nitems > 0 && f->nreported == 0)
        return fail(pc, DATAFORM_ERR_INVALID, "<item/> without <reported/>");
    return DATAFORM_OK;
}

int dataform_parse(const xml_node *x, dataform **out, char *err, size_t errlen)
{
    parse_ctx pc = {err, errlen, false};
    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    if (!x || !is_df(x, "x"))
        return fail(&pc, DATAFORM_ERR_INVALID, "not a jabber:x:data form");
    dataform *f = calloc(1, sizeof *f);
    if (!f)
        return fail(&pc, DATAFORM_ERR_NO_MEMORY, "out of memory");
    int rc = parse_form(&pc, x, f);
    if (rc != DATAFORM_OK) {
        dataform_free(f);
        return rc;
    }
    *out = f;
    return DATAFORM_OK;
}

/* ---- getters ---- */

const dataform_field *dataform_field_get(const dataform *f, const char *var)
{
    if (!f || !var)
        return NULL;
    for (size_t i = 0; i < f->nfields; i++)
        if (f->fields[i].var && strcmp(f->fields[i].var, var) == 0)
            return &f->fields[i];
    return NULL;
}

const char *dataform_value(const dataform *f, const char *var)
{
    const dataform_field *fl = dataform_field_get(f, var);
    return fl && fl->nvalues ? fl->values[0] : NULL;
}

size_t dataform_values(const dataform *f, const char *var, const char *const **values)
{
    const dataform_field *fl = dataform_field_get(f, var);
    *values = fl ? (const char *const *)fl->values : NULL;
    return fl ? fl->nvalues : 0;
}

char *dataform_text(const dataform *f, const char *var)
{
    const dataform_field *fl = dataform_field_get(f, var);
    if (!fl)
        return NULL;
    size_t len = 0;
    for (size_t i = 0; i < fl->nvalues; i++)
        len += strlen(fl->values[i]) + 1;
    char *s = malloc(len + 1);
    if (!s)
        return NULL;
    size_t off = 0;
    for (size_t i = 0; i < fl->nvalues; i++) {
        if (i)
            s[off++] = '\n';
        size_t n = strlen(fl->values[i]);
        memcpy(s + off, fl->values[i], n);
        off += n;
    }
    s[off] = '\0';
    return s;
}

int dataform_parse_bool(const char *s, bool *out)
{
    if (!s)
        return DATAFORM_ERR_INVALID;
    if (strcmp(s, "1") == 0 || strcmp(s, "true") == 0) {
        *out = true;
        return DATAFORM_OK;
    }
    if (strcmp(s, "0") == 0 || strcmp(s, "false") == 0) {
        *out = false;
        return DATAFORM_OK;
    }
    return DATAFORM_ERR_INVALID;
}

int dataform_bool(const dataform *f, const char *var, bool *out)
{
    const char *v = dataform_value(f, var);
    if (!v)
        return DATAFORM_ABSENT;
    return dataform_parse_bool(v, out);
}

const char *dataform_form_type(const dataform *f)
{
    const dataform_field *fl = dataform_field_get(f, "FORM_TYPE");
    return fl && fl->type == DATAFORM_HIDDEN && fl->nvalues ? fl->values[0] : NULL;
}

/* ---- building ---- */

dataform *dataform_new(dataform_type type, const char *title, const char *instructions)
{
    dataform *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->type = type;
    if (set_str(&f->title, title) || set_str(&f->instructions, instructions)) {
        dataform_free(f);
        return NULL;
    }
    return f;
}

static dataform_field *new_field(dataform_field **arr, size_t *n, dataform_field_type type, const char *var,
                                 const char *label)
{
    if (!var && type != DATAFORM_FIXED)
        return NULL;
    dataform_field *fl = append_field(arr, n);
    if (!fl)
        return NULL;
    fl->type = type;
    fl->type_given = true;
    if (set_str(&fl->var, var) || set_str(&fl->label, label)) {
        field_clear(fl);
        (*n)--;
        return NULL;
    }
    return fl;
}

dataform_field *dataform_add_field(dataform *f, dataform_field_type type, const char *var, const char *label)
{
    return new_field(&f->fields, &f->nfields, type, var, label);
}

dataform_field *dataform_add_column(dataform *f, dataform_field_type type, const char *var, const char *label)
{
    if (!var)
        return NULL;
    return new_field(&f->reported, &f->nreported, type, var, label);
}

int dataform_field_set_desc(dataform_field *fl, const char *desc)
{
    return set_str(&fl->desc, desc) ? DATAFORM_ERR_NO_MEMORY : DATAFORM_OK;
}

void dataform_field_set_required(dataform_field *fl, bool required)
{
    fl->required = required;
}

int dataform_field_set_text(dataform_field *fl, const char *text)
{
    const char *p = text ? text : "";
    for (;;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len && p[len - 1] == '\r')
            len--;
        char *line = strndup(p, len);
        if (!line)
            return DATAFORM_ERR_NO_MEMORY;
        int rc = dataform_field_add_value(fl, line);
        free(line);
        if (rc != DATAFORM_OK)
            return rc;
        if (!nl)
            return DATAFORM_OK;
        p = nl + 1;
    }
}

dataform_field *dataform_add_text(dataform *f, const char *var, const char *label, const char *value)
{
    dataform_field *fl = dataform_add_field(f, DATAFORM_TEXT_SINGLE, var, label);
    if (fl && value && dataform_field_add_value(fl, value) != DATAFORM_OK)
        return NULL;
    return fl;
}

dataform_field *dataform_add_bool(dataform *f, const char *var, const char *label, bool value)
{
    dataform_field *fl = dataform_add_field(f, DATAFORM_BOOLEAN, var, label);
    if (fl && dataform_field_add_value(fl, value ? "1" : "0") != DATAFORM_OK)
        return NULL;
    return fl;
}

dataform_field *dataform_add_fixed(dataform *f, const char *text)
{
    dataform_field *fl = dataform_add_field(f, DATAFORM_FIXED, NULL, NULL);
    if (fl && dataform_field_add_value(fl, text) != DATAFORM_OK)
        return NULL;
    return fl;
}

dataform_field *dataform_add_form_type(dataform *f, const char *form_type)
{
    dataform_field *fl = dataform_add_field(f, DATAFORM_HIDDEN, "FORM_TYPE", NULL);
    if (fl && dataform_field_add_value(fl, form_type) != DATAFORM_OK)
        return NULL;
    return fl;
}

dataform_item *dataform_add_item(dataform *f)
{
    if (!grow((void **)&f->items, f->nitems, sizeof *f->items))
        return NULL;
    dataform_item *it = &f->items[f->nitems++];
    memset(it, 0, sizeof *it);
    return it;
}

int dataform_item_add_value(dataform_item *it, const char *var, const char *value)
{
    if (!var)
        return DATAFORM_ERR_INVALID;
    dataform_field *cell = NULL;
    for (size_t i = 0; i < it->nfields; i++)
        if (strcmp(it->fields[i].var, var) == 0)
            cell = &it->fields[i];
    if (!cell) {
        cell = new_field(&it->fields, &it->nfields, DATAFORM_TEXT_SINGLE, var, NULL);
        if (!cell)
            return DATAFORM_ERR_NO_MEMORY;
        cell->type_given = false; /* cells carry no type: the column has it */
    }
    return dataform_field_add_value(cell, value);
}

/* ---- serializing ---- */

static void add_text_child(xml_node *parent, const char *name, const char *text)
{
    xml_node *c = xml_node_add_child(parent, name, NULL);
    if (c && text[0])
        xml_node_add_text(c, text, strlen(text));
}

/* Writes a field; with_type false for item cells.  Returns false on OOM. */
static bool write_field(xml_node *parent, const dataform_field *fl, bool with_type)
{
    xml_node *el = xml_node_add_child(parent, "field", NULL);
    if (!el)
        return false;
    if (fl->var)
        xml_node_set_attr(el, "var", fl->var);
    if (with_type && fl->type_given)
        xml_node_set_attr(el, "type", field_types[fl->type]);
    if (fl->label)
        xml_node_set_attr(el, "label", fl->label);
    if (fl->desc)
        add_text_child(el, "desc", fl->desc);
    if (fl->required)
        xml_node_add_child(el, "required", NULL);
    for (size_t i = 0; i < fl->nvalues; i++)
        add_text_child(el, "value", fl->values[i]);
    for (size_t i = 0; i < fl->noptions; i++) {
        xml_node *o = xml_node_add_child(el, "option", NULL);
        if (!o)
            return false;
        if (fl->options[i].label)
            xml_node_set_attr(o, "label", fl->options[i].label);
        add_text_child(o, "value", fl->options[i].value);
    }
    return true;
}

static void add_instructions(xml_node *x, const char *text)
{
    const char *p = text;
    for (;;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        xml_node *c = xml_node_add_child(x, "instructions", NULL);
        if (c && len)
            xml_node_add_text(c, p, len);
        if (!nl)
            return;
        p = nl + 1;
    }
}

xml_node *dataform_to_xml(const dataform *f)
{
    xml_node *x = xml_node_new("x", DATAFORM_NS);
    if (!x)
        return NULL;
    xml_node_set_attr(x, "type", dataform_type_name(f->type));
    if (f->title)
        add_text_child(x, "title", f->title);
    if (f->instructions)
        add_instructions(x, f->instructions);
    bool ok = true;
    for (size_t i = 0; ok && i < f->nfields; i++)
        ok = write_field(x, &f->fields[i], true);
    if (ok && f->nreported) {
        xml_node *rep = xml_node_add_child(x, "reported", NULL);
        for (size_t i = 0; ok && rep && i < f->nreported; i++)
            ok = write_field(rep, &f->reported[i], true);
        ok = ok && rep;
        for (size_t r = 0; ok && r < f->nitems; r++) {
            xml_node *item = xml_node_add_child(x, "item", NULL);
            ok = item != NULL;
            for (size_t c = 0; ok && c < f->nreported; c++) {
                const dataform_field *col = &f->reported[c];
                const dataform_field *cell = NULL;
                for (size_t k = 0; k < f->items[r].nfields; k++)
                    if (strcmp(f->items[r].fields[k].var, col->var) == 0)
                        cell = &f->items[r].fields[k];
                dataform_field empty = {.var = col->var};
                ok = write_field(item, cell ? cell : &empty, false);
            }
        }
    }
    if (!ok) {
        xml_node_free(x);
        return NULL;
    }
    return x;
}

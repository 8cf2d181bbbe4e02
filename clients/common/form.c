/* form.c - XEP-0004 data forms for the command-line clients (form.h). */
#include "form.h"

#include <stdlib.h>
#include <string.h>

#define NS_DATA "jabber:x:data"

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

form *form_new(const char *type)
{
    form *f = calloc(1, sizeof *f);
    if (f && !(f->type = strdup(type))) {
        free(f);
        return NULL;
    }
    return f;
}

static void field_clear(form_field *fl)
{
    free(fl->var);
    free(fl->label);
    free(fl->type);
    for (size_t i = 0; i < fl->nvalues; i++)
        free(fl->values[i]);
    free(fl->values);
    memset(fl, 0, sizeof *fl);
}

void form_free(form *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->nfields; i++)
        field_clear(&f->fields[i]);
    for (size_t i = 0; i < f->nreported; i++)
        field_clear(&f->reported[i]);
    for (size_t i = 0; i < f->nitems; i++) {
        for (size_t j = 0; j < f->items[i].nfields; j++)
            field_clear(&f->items[i].fields[j]);
        free(f->items[i].fields);
    }
    free(f->fields);
    free(f->reported);
    free(f->items);
    free(f->type);
    free(f->title);
    free(f->instructions);
    free(f);
}

static bool field_add_value(form_field *fl, const char *v, size_t len)
{
    char **vals = realloc(fl->values, (fl->nvalues + 1) * sizeof *vals);
    if (!vals)
        return false;
    fl->values = vals;
    if (!(vals[fl->nvalues] = strndup(v, len)))
        return false;
    fl->nvalues++;
    return true;
}

static form_field *append_field(form_field **arr, size_t *n)
{
    form_field *a = realloc(*arr, (*n + 1) * sizeof *a);
    if (!a)
        return NULL;
    *arr = a;
    memset(&a[*n], 0, sizeof a[*n]);
    return &a[(*n)++];
}

bool form_set(form *f, const char *var, const char *value)
{
    form_field *fl = (form_field *)form_get(f, var);
    if (fl) {
        for (size_t i = 0; i < fl->nvalues; i++)
            free(fl->values[i]);
        fl->nvalues = 0;
    } else {
        if (!(fl = append_field(&f->fields, &f->nfields)) || !(fl->var = strdup(var)))
            return false;
    }
    for (const char *p = value;;) {
        const char *nl = strchr(p, '\n');
        if (!field_add_value(fl, p, nl ? (size_t)(nl - p) : strlen(p)))
            return false;
        if (!nl)
            break;
        p = nl + 1;
    }
    return true;
}

static bool is(xmpp_stanza_t *s, const char *name)
{
    const char *n = xmpp_stanza_get_name(s);
    return n && strcmp(n, name) == 0;
}

static bool read_field(xmpp_stanza_t *el, form_field *fl)
{
    fl->var = dup_or_null(xmpp_stanza_get_attribute(el, "var"));
    fl->label = dup_or_null(xmpp_stanza_get_attribute(el, "label"));
    fl->type = dup_or_null(xmpp_stanza_get_attribute(el, "type"));
    for (xmpp_stanza_t *v = xmpp_stanza_get_children(el); v; v = xmpp_stanza_get_next(v)) {
        if (!is(v, "value"))
            continue;
        char *t = xmpp_stanza_get_text(v);
        bool ok = field_add_value(fl, t ? t : "", t ? strlen(t) : 0);
        if (t)
            xmpp_free(xmpp_stanza_get_context(el), t);
        if (!ok)
            return false;
    }
    return true;
}

static char *text_of(xmpp_stanza_t *el)
{
    char *t = xmpp_stanza_get_text(el);
    char *copy = strdup(t ? t : "");
    if (t)
        xmpp_free(xmpp_stanza_get_context(el), t);
    return copy;
}

form *form_from_stanza(xmpp_stanza_t *x)
{
    const char *ns = x ? xmpp_stanza_get_ns(x) : NULL;
    if (!x || !is(x, "x") || !ns || strcmp(ns, NS_DATA) != 0)
        return NULL;
    const char *type = xmpp_stanza_get_type(x);
    form *f = form_new(type ? type : "form");
    if (!f)
        return NULL;
    bool ok = true;
    for (xmpp_stanza_t *el = xmpp_stanza_get_children(x); el && ok; el = xmpp_stanza_get_next(el)) {
        if (is(el, "title")) {
            free(f->title);
            ok = (f->title = text_of(el)) != NULL;
        } else if (is(el, "instructions")) {
            free(f->instructions);
            ok = (f->instructions = text_of(el)) != NULL;
        } else if (is(el, "field")) {
            form_field *fl = append_field(&f->fields, &f->nfields);
            ok = fl && read_field(el, fl);
        } else if (is(el, "reported")) {
            for (xmpp_stanza_t *c = xmpp_stanza_get_children(el); c && ok; c = xmpp_stanza_get_next(c)) {
                if (!is(c, "field"))
                    continue;
                form_field *fl = append_field(&f->reported, &f->nreported);
                ok = fl && read_field(c, fl);
            }
        } else if (is(el, "item")) {
            form_item *items = realloc(f->items, (f->nitems + 1) * sizeof *items);
            if (!(ok = items != NULL))
                break;
            f->items = items;
            form_item *it = &items[f->nitems++];
            memset(it, 0, sizeof *it);
            for (xmpp_stanza_t *c = xmpp_stanza_get_children(el); c && ok; c = xmpp_stanza_get_next(c)) {
                if (!is(c, "field"))
                    continue;
                form_field *fl = append_field(&it->fields, &it->nfields);
                ok = fl && read_field(c, fl);
            }
        }
    }
    if (!ok) {
        form_free(f);
        return NULL;
    }
    return f;
}

static xmpp_stanza_t *element(xmpp_ctx_t *ctx, const char *name)
{
    xmpp_stanza_t *s = xmpp_stanza_new(ctx);
    if (s)
        xmpp_stanza_set_name(s, name);
    return s;
}

static void add_text_child(xmpp_ctx_t *ctx, xmpp_stanza_t *parent, const char *name, const char *text)
{
    xmpp_stanza_t *el = element(ctx, name);
    xmpp_stanza_t *t = xmpp_stanza_new(ctx);
    xmpp_stanza_set_text(t, text);
    xmpp_stanza_add_child(el, t);
    xmpp_stanza_release(t);
    xmpp_stanza_add_child(parent, el);
    xmpp_stanza_release(el);
}

xmpp_stanza_t *form_to_stanza(const form *f, xmpp_ctx_t *ctx)
{
    xmpp_stanza_t *x = element(ctx, "x");
    xmpp_stanza_set_ns(x, NS_DATA);
    xmpp_stanza_set_type(x, f->type);
    for (size_t i = 0; i < f->nfields; i++) {
        const form_field *fl = &f->fields[i];
        xmpp_stanza_t *el = element(ctx, "field");
        xmpp_stanza_set_attribute(el, "var", fl->var);
        for (size_t j = 0; j < fl->nvalues; j++)
            add_text_child(ctx, el, "value", fl->values[j]);
        xmpp_stanza_add_child(x, el);
        xmpp_stanza_release(el);
    }
    return x;
}

const form_field *form_get(const form *f, const char *var)
{
    for (size_t i = 0; f && i < f->nfields; i++)
        if (f->fields[i].var && strcmp(f->fields[i].var, var) == 0)
            return &f->fields[i];
    return NULL;
}

const char *form_value(const form *f, const char *var)
{
    const form_field *fl = form_get(f, var);
    return fl && fl->nvalues ? fl->values[0] : NULL;
}

/* ---- printing ---- */

static void print_field(FILE *out, const form_field *fl, int width)
{
    int indent = width + 2;
    fprintf(out, "%-*s ", width + 1, fl->var ? fl->var : "");
    if (fl->nvalues == 0)
        fputc('\n', out);
    for (size_t i = 0; i < fl->nvalues; i++) {
        if (i > 0)
            fprintf(out, "%*s", indent, "");
        /* a value's own line breaks keep the indentation too */
        for (const char *p = fl->values[i];;) {
            const char *nl = strchr(p, '\n');
            fprintf(out, "%.*s\n", nl ? (int)(nl - p) : (int)strlen(p), p);
            if (!nl)
                break;
            p = nl + 1;
            fprintf(out, "%*s", indent, "");
        }
    }
}

static int width_of(const form_field *fields, size_t n)
{
    int w = 0;
    for (size_t i = 0; i < n; i++) {
        int l = fields[i].var ? (int)strlen(fields[i].var) + 1 : 1;
        if (l > w && strcmp(fields[i].var ? fields[i].var : "", "FORM_TYPE") != 0)
            w = l;
    }
    return w;
}

static void print_fields(FILE *out, const form_field *fields, size_t n)
{
    int w = width_of(fields, n);
    for (size_t i = 0; i < n; i++) {
        const form_field *fl = &fields[i];
        if (fl->var && strcmp(fl->var, "FORM_TYPE") == 0)
            continue;
        form_field shown = *fl;
        char name[128];
        snprintf(name, sizeof name, "%s:", fl->var ? fl->var : "");
        shown.var = name;
        print_field(out, &shown, w - 1);
    }
}

static const char *cell(const form_item *it, const char *var, size_t *nvalues)
{
    for (size_t i = 0; i < it->nfields; i++)
        if (it->fields[i].var && strcmp(it->fields[i].var, var) == 0) {
            *nvalues = it->fields[i].nvalues;
            return it->fields[i].nvalues ? it->fields[i].values[0] : "";
        }
    *nvalues = 0;
    return "";
}

static void print_table(FILE *out, const form *f)
{
    bool flat = true;
    int width[64] = {0};
    size_t ncol = f->nreported < 64 ? f->nreported : 64;
    for (size_t c = 0; c < ncol; c++)
        width[c] = (int)strlen(f->reported[c].var ? f->reported[c].var : "");
    for (size_t r = 0; r < f->nitems && flat; r++)
        for (size_t c = 0; c < ncol; c++) {
            size_t nv;
            const char *v = cell(&f->items[r], f->reported[c].var ? f->reported[c].var : "", &nv);
            if (nv > 1 || strchr(v, '\n'))
                flat = false;
            if ((int)strlen(v) > width[c])
                width[c] = (int)strlen(v);
        }
    if (!flat) {
        for (size_t r = 0; r < f->nitems; r++) {
            if (r > 0)
                fputc('\n', out);
            print_fields(out, f->items[r].fields, f->items[r].nfields);
        }
        return;
    }
    for (size_t c = 0; c < ncol; c++)
        fprintf(out, "%-*s%s", c + 1 < ncol ? width[c] : 0, f->reported[c].var, c + 1 < ncol ? "  " : "\n");
    for (size_t r = 0; r < f->nitems; r++)
        for (size_t c = 0; c < ncol; c++) {
            size_t nv;
            fprintf(out, "%-*s%s", c + 1 < ncol ? width[c] : 0, cell(&f->items[r], f->reported[c].var, &nv),
                    c + 1 < ncol ? "  " : "\n");
        }
}

void form_print(FILE *out, const form *f)
{
    print_fields(out, f->fields, f->nfields);
    if (f->nreported)
        print_table(out, f);
}

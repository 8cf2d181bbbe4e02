/* fuzz_dataform.c - libFuzzer target for core/dataform.c.
 *
 * The input is one XML element (typically <x xmlns='jabber:x:data'>),
 * parsed inside a jabber:client stream with the server's default limits.
 * Every element the XML parser yields goes to dataform_parse; a form it
 * accepts must stay within the DATAFORM_MAX_* limits, answer every getter
 * for every field, serialize, and parse back from its serialization to a
 * form with the same shape.  A refusal must leave no form and give a
 * message.  Any violation aborts.  See tests/fuzz/README.md.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataform.h"
#include "xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "fuzz_dataform: check failed at line %d: %s\n", __LINE__, #cond); \
            abort();                                                                    \
        }                                                                               \
    } while (0)

static void check_shape(const dataform *a, const dataform *b)
{
    FUZZ_CHECK(a->type == b->type);
    FUZZ_CHECK(a->nfields == b->nfields);
    FUZZ_CHECK(a->nreported == b->nreported);
    FUZZ_CHECK(a->nitems == b->nitems);
    for (size_t i = 0; i < a->nfields; i++) {
        FUZZ_CHECK(a->fields[i].nvalues == b->fields[i].nvalues);
        FUZZ_CHECK(a->fields[i].noptions == b->fields[i].noptions);
        FUZZ_CHECK(a->fields[i].required == b->fields[i].required);
        FUZZ_CHECK(!a->fields[i].type_given || a->fields[i].type == b->fields[i].type);
        for (size_t v = 0; v < a->fields[i].nvalues; v++)
            FUZZ_CHECK(strcmp(a->fields[i].values[v], b->fields[i].values[v]) == 0);
    }
}

static void check_form(const dataform *f)
{
    FUZZ_CHECK(f->nfields <= DATAFORM_MAX_FIELDS && f->nreported <= DATAFORM_MAX_FIELDS);
    FUZZ_CHECK(f->nitems <= DATAFORM_MAX_ITEMS);
    for (size_t i = 0; i < f->nfields; i++) {
        const dataform_field *fl = &f->fields[i];
        FUZZ_CHECK(fl->nvalues <= DATAFORM_MAX_VALUES && fl->noptions <= DATAFORM_MAX_OPTIONS);
        FUZZ_CHECK(fl->var || fl->type == DATAFORM_FIXED);
        if (!fl->var)
            continue;
        FUZZ_CHECK(dataform_field_get(f, fl->var) == fl); /* vars are unique */
        const char *const *vals;
        FUZZ_CHECK(dataform_values(f, fl->var, &vals) == fl->nvalues);
        FUZZ_CHECK(dataform_value(f, fl->var) == (fl->nvalues ? fl->values[0] : NULL));
        char *t = dataform_text(f, fl->var);
        FUZZ_CHECK(t != NULL);
        free(t);
        bool b;
        (void)dataform_bool(f, fl->var, &b);
    }
    (void)dataform_form_type(f);
    xml_node *x = dataform_to_xml(f);
    FUZZ_CHECK(x != NULL);
    dataform *g = NULL;
    char err[256];
    int rc = dataform_parse(x, &g, err, sizeof err);
    if (rc != DATAFORM_OK)
        fprintf(stderr, "fuzz_dataform: the serialization does not parse: %s\n", err);
    FUZZ_CHECK(rc == DATAFORM_OK);
    check_shape(f, g);
    dataform_free(g);
    xml_node_free(x);
}

static void on_stanza(void *ud, xml_node *st)
{
    dataform *f = (dataform *)1;
    char err[256] = "";
    int rc = dataform_parse(st, &f, err, sizeof err);
    if (rc == DATAFORM_OK) {
        FUZZ_CHECK(f != NULL);
        check_form(f);
        dataform_free(f);
    } else {
        FUZZ_CHECK(f == NULL);
        FUZZ_CHECK(rc == DATAFORM_ERR_INVALID || rc == DATAFORM_ERR_LIMIT || rc == DATAFORM_ERR_NO_MEMORY);
        FUZZ_CHECK(err[0] != '\0');
    }
    xml_node_free(st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    xml_limits lim = {262144, 32, 64};
    xml_parser_callbacks cb = {NULL, on_stanza, NULL};
    xml_parser *p = xml_parser_new(&lim, &cb, NULL);
    if (!p)
        return 0;
    static const char hdr[] = "<stream:stream xmlns='jabber:client' xmlns:stream='" XML_NS_STREAM "'>";
    if (xml_parser_feed(p, hdr, strlen(hdr)) == XML_OK)
        xml_parser_feed(p, (const char *)data, size);
    xml_parser_free(p);
    return 0;
}

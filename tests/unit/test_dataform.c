/* test_dataform.c - unit tests of core/dataform.c (XEP-0004): parsing every
 * field type, the getters (first value, all values, text-multi, boolean,
 * FORM_TYPE), the rules and limits the parser enforces, building forms and
 * table results, and that what is built parses back to the same form. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataform.h"
#include "xml.h"

/* ---- helpers ---- */

static void take_stanza(void *ud, xml_node *st)
{
    xml_node **out = ud;
    if (*out)
        xml_node_free(*out);
    *out = st;
}

/* Parses one element (written inside a jabber:client stream); caller frees. */
static xml_node *parse_xml(const char *s)
{
    xml_limits lim = {1u << 22, 64, 64};
    xml_node *out = NULL;
    xml_parser_callbacks cb = {NULL, take_stanza, NULL};
    xml_parser *p = xml_parser_new(&lim, &cb, &out);
    assert_non_null(p);
    static const char hdr[] = "<stream:stream xmlns='jabber:client' xmlns:stream='" XML_NS_STREAM "'>";
    assert_int_equal(xml_parser_feed(p, hdr, strlen(hdr)), XML_OK);
    assert_int_equal(xml_parser_feed(p, s, strlen(s)), XML_OK);
    xml_parser_free(p);
    assert_non_null(out);
    return out;
}

/* dataform_parse on a string; returns the code, the form in *out. */
static int parse_form(const char *s, dataform **out, char *err, size_t errlen)
{
    xml_node *x = parse_xml(s);
    int rc = dataform_parse(x, out, err, errlen);
    xml_node_free(x);
    return rc;
}

#define X_OPEN "<x xmlns='jabber:x:data' type='%s'>"

/* ---- parsing ---- */

static const char full_form[] =
    "<x xmlns='jabber:x:data' type='form'>"
    "<title>Bot Configuration</title>"
    "<instructions>Fill out this form</instructions><instructions>to configure your bot.</instructions>"
    "<field type='hidden' var='FORM_TYPE'><value>jabber:bot</value></field>"
    "<field type='fixed'><value>Section 1: Bot Info</value></field>"
    "<field type='text-single' label='The name of your bot' var='botname'/>"
    "<field type='text-multi' label='Description' var='description'><value>line one</value><value>line two</value></field>"
    "<field type='boolean' label='Public bot?' var='public'><required/><desc>Shown to everyone</desc></field>"
    "<field type='text-private' label='Password' var='password'/>"
    "<field type='list-multi' label='Features' var='features'>"
    "<option label='Contests'><value>contests</value></option><option label='News'><value>news</value></option>"
    "<option><value>polls</value></option><value>news</value><value>polls</value></field>"
    "<field type='list-single' label='Max' var='maxsubs'><value>20</value>"
    "<option label='10'><value>10</value></option><option label='20'><value>20</value></option></field>"
    "<field type='jid-multi' label='Invite' var='invitelist'><value>a@example.org</value><value>b@example.org</value></field>"
    "<field type='jid-single' var='owner'><value>c@example.org</value></field>"
    "<field var='untyped'><value>u</value></field>"
    "<field type='x-unknown' var='future'><value>f</value></field>"
    "<validate xmlns='http://jabber.org/protocol/xdata-validate'/>"
    "</x>";

static void test_parse_every_field_type(void **state)
{
    dataform *f = NULL;
    char err[256];
    assert_int_equal(parse_form(full_form, &f, err, sizeof err), DATAFORM_OK);
    assert_int_equal(f->type, DATAFORM_FORM);
    assert_string_equal(f->title, "Bot Configuration");
    assert_string_equal(f->instructions, "Fill out this form\nto configure your bot.");
    assert_int_equal(f->nfields, 12);
    assert_string_equal(dataform_form_type(f), "jabber:bot");
    assert_int_equal(f->fields[1].type, DATAFORM_FIXED);
    assert_null(f->fields[1].var);
    assert_string_equal(f->fields[1].values[0], "Section 1: Bot Info");

    const dataform_field *fl = dataform_field_get(f, "botname");
    assert_non_null(fl);
    assert_int_equal(fl->type, DATAFORM_TEXT_SINGLE);
    assert_string_equal(fl->label, "The name of your bot");
    assert_int_equal(fl->nvalues, 0);
    assert_null(dataform_value(f, "botname"));

    fl = dataform_field_get(f, "public");
    assert_int_equal(fl->type, DATAFORM_BOOLEAN);
    assert_true(fl->required);
    assert_string_equal(fl->desc, "Shown to everyone");
    bool b = true;
    assert_int_equal(dataform_bool(f, "public", &b), DATAFORM_ABSENT);
    assert_true(b); /* untouched */

    fl = dataform_field_get(f, "features");
    assert_int_equal(fl->type, DATAFORM_LIST_MULTI);
    assert_int_equal(fl->noptions, 3);
    assert_string_equal(fl->options[0].label, "Contests");
    assert_string_equal(fl->options[0].value, "contests");
    assert_null(fl->options[2].label);
    const char *const *vals = NULL;
    assert_int_equal(dataform_values(f, "features", &vals), 2);
    assert_string_equal(vals[0], "news");
    assert_string_equal(vals[1], "polls");

    assert_string_equal(dataform_value(f, "maxsubs"), "20");
    assert_int_equal(dataform_field_get(f, "maxsubs")->type, DATAFORM_LIST_SINGLE);
    assert_int_equal(dataform_values(f, "invitelist", &vals), 2);
    assert_int_equal(dataform_field_get(f, "owner")->type, DATAFORM_JID_SINGLE);
    assert_int_equal(dataform_field_get(f, "password")->type, DATAFORM_TEXT_PRIVATE);

    char *text = dataform_text(f, "description");
    assert_string_equal(text, "line one\nline two");
    free(text);
    text = dataform_text(f, "botname");
    assert_string_equal(text, "");
    free(text);
    assert_null(dataform_text(f, "nonexistent"));

    /* no type: text-single, and remembered as untyped */
    fl = dataform_field_get(f, "untyped");
    assert_int_equal(fl->type, DATAFORM_TEXT_SINGLE);
    assert_false(fl->type_given);
    /* an unknown type is read as text-single (XEP-0004 3.3) */
    assert_int_equal(dataform_field_get(f, "future")->type, DATAFORM_TEXT_SINGLE);
    assert_int_equal(dataform_values(f, "nonexistent", &vals), 0);
    dataform_free(f);
}

static void test_parse_form_types(void **state)
{
    static const char *const types[] = {"form", "submit", "cancel", "result"};
    for (int i = 0; i < 4; i++) {
        char buf[128];
        snprintf(buf, sizeof buf, X_OPEN "</x>", types[i]);
        dataform *f = NULL;
        assert_int_equal(parse_form(buf, &f, NULL, 0), DATAFORM_OK);
        assert_int_equal((int)f->type, i);
        assert_string_equal(dataform_type_name(f->type), types[i]);
        dataform_free(f);
    }
}

/* XEP-0004 3.2: in a submitted form a field may omit its type; one with
 * several values is the receiver's list-multi, not a refusal. */
static void test_submitted_fields_without_type(void **state)
{
    dataform *f = NULL;
    assert_int_equal(parse_form("<x xmlns='jabber:x:data' type='submit'><field var='roles'><value>moderator</value>"
                                "<value>participant</value></field></x>",
                                &f, NULL, 0),
                     DATAFORM_OK);
    const char *const *values;
    assert_int_equal(dataform_values(f, "roles", &values), 2);
    assert_string_equal(values[1], "participant");
    assert_false(f->fields[0].type_given);
    dataform_free(f);
}

static void test_booleans(void **state)
{
    dataform *f = NULL;
    assert_int_equal(parse_form("<x xmlns='jabber:x:data' type='submit'>"
                                "<field var='a'><value>1</value></field><field var='b'><value>true</value></field>"
                                "<field var='c'><value>0</value></field><field var='d'><value>false</value></field>"
                                "<field var='e'><value>yes</value></field><field var='f'><value>TRUE</value></field>"
                                "<field var='g'/></x>",
                                &f, NULL, 0),
                     DATAFORM_OK);
    bool v;
    assert_int_equal(dataform_bool(f, "a", &v), DATAFORM_OK);
    assert_true(v);
    assert_int_equal(dataform_bool(f, "b", &v), DATAFORM_OK);
    assert_true(v);
    assert_int_equal(dataform_bool(f, "c", &v), DATAFORM_OK);
    assert_false(v);
    assert_int_equal(dataform_bool(f, "d", &v), DATAFORM_OK);
    assert_false(v);
    assert_int_equal(dataform_bool(f, "e", &v), DATAFORM_ERR_INVALID);
    assert_int_equal(dataform_bool(f, "f", &v), DATAFORM_ERR_INVALID);
    assert_int_equal(dataform_bool(f, "g", &v), DATAFORM_ABSENT);
    assert_int_equal(dataform_bool(f, "zz", &v), DATAFORM_ABSENT);
    assert_int_equal(dataform_parse_bool(NULL, &v), DATAFORM_ERR_INVALID);
    dataform_free(f);
}

static void test_table_result(void **state)
{
    dataform *f = NULL;
    assert_int_equal(parse_form("<x xmlns='jabber:x:data' type='result'><title>Services</title>"
                                "<reported><field var='service' label='Service'/><field var='on' type='boolean'/></reported>"
                                "<item><field var='service'><value>httpd</value></field><field var='on'><value>1</value></field></item>"
                                "<item><field var='service'><value>sshd</value></field><field var='on'/></item>"
                                "</x>",
                                &f, NULL, 0),
                     DATAFORM_OK);
    assert_int_equal(f->nreported, 2);
    assert_string_equal(f->reported[1].var, "on");
    assert_int_equal(f->reported[1].type, DATAFORM_BOOLEAN);
    assert_int_equal(f->nitems, 2);
    assert_string_equal(f->items[1].fields[0].values[0], "sshd");
    assert_int_equal(f->items[1].fields[1].nvalues, 0);
    dataform_free(f);
}

/* Each of these must be refused with the code and a message containing the text. */
static void test_parser_refusals(void **state)
{
    static const struct {
        const char *xml;
        int rc;
        const char *msg;
    } cases[] = {
        {"<x xmlns='urn:other' type='form'/>", DATAFORM_ERR_INVALID, "not a jabber:x:data form"},
        {"<y xmlns='jabber:x:data' type='form'/>", DATAFORM_ERR_INVALID, "not a jabber:x:data form"},
        {"<x xmlns='jabber:x:data'/>", DATAFORM_ERR_INVALID, "no type"},
        {"<x xmlns='jabber:x:data' type='query'/>", DATAFORM_ERR_INVALID, "unknown form type"},
        {"<x xmlns='jabber:x:data' type='submit'><field><value>v</value></field></x>", DATAFORM_ERR_INVALID,
         "needs a var"},
        {"<x xmlns='jabber:x:data' type='submit'><field var='a'/><field var='a'/></x>", DATAFORM_ERR_INVALID,
         "field 'a' appears twice"},
        {"<x xmlns='jabber:x:data' type='submit'><field var='start' type='text-single'><value>1</value><value>2</value>"
         "</field></x>",
         DATAFORM_ERR_INVALID, "field 'start': more than one <value/> for a text-single field"},
        {"<x xmlns='jabber:x:data' type='form'><field var='start'><value>1</value><value>2</value></field></x>",
         DATAFORM_ERR_INVALID, "field 'start': more than one <value/> for a text-single field"},
        {"<x xmlns='jabber:x:data' type='form'><field var='b' type='boolean'><value>1</value><value>0</value></field></x>",
         DATAFORM_ERR_INVALID, "boolean"},
        {"<x xmlns='jabber:x:data' type='form'><field var='t'><option><value>a</value></option></field></x>",
         DATAFORM_ERR_INVALID, "<option/> in a text-single field"},
        {"<x xmlns='jabber:x:data' type='form'><field var='l' type='list-single'><option/></field></x>",
         DATAFORM_ERR_INVALID, "exactly one <value/>"},
        {"<x xmlns='jabber:x:data' type='form'><field var='l' type='list-single'><option><value>a</value><value>b</value></option></field></x>",
         DATAFORM_ERR_INVALID, "exactly one <value/>"},
        {"<x xmlns='jabber:x:data' type='form'><reported><field var='a'/></reported></x>", DATAFORM_ERR_INVALID,
         "<reported/> outside a result"},
        {"<x xmlns='jabber:x:data' type='submit'><item><field var='a'/></item></x>", DATAFORM_ERR_INVALID,
         "<item/> outside a result"},
        {"<x xmlns='jabber:x:data' type='result'><item><field var='a'/></item></x>", DATAFORM_ERR_INVALID,
         "without <reported/>"},
        {"<x xmlns='jabber:x:data' type='result'><reported/></x>", DATAFORM_ERR_INVALID, "without fields"},
        {"<x xmlns='jabber:x:data' type='result'><reported><field var='a'/></reported><reported><field var='a'/></reported></x>",
         DATAFORM_ERR_INVALID, "more than one <reported/>"},
        {"<x xmlns='jabber:x:data' type='result'><reported><field type='fixed'/></reported></x>",
         DATAFORM_ERR_INVALID, "needs a var"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dataform *f = (dataform *)1;
        char err[256];
        int rc = parse_form(cases[i].xml, &f, err, sizeof err);
        if (rc != cases[i].rc || !strstr(err, cases[i].msg))
            fail_msg("case %zu: %s -> %d '%s'", i, cases[i].xml, rc, err);
        assert_null(f);
    }
    assert_int_equal(dataform_parse(NULL, &(dataform *){NULL}, NULL, 0), DATAFORM_ERR_INVALID);
}

/* Builds <x> with n fields / values / options / items and checks the limit. */
static void test_parser_limits(void **state)
{
    xml_buf b = {0};
    dataform *f = NULL;
    char err[256];
    /* fields: the limit parses, one more does not */
    for (int over = 0; over < 2; over++) {
        xml_buf_reset(&b);
        xml_buf_append_str(&b, "<x xmlns='jabber:x:data' type='submit'>");
        for (int i = 0; i < DATAFORM_MAX_FIELDS + over; i++) {
            char fld[64];
            snprintf(fld, sizeof fld, "<field var='f%d'><value>v</value></field>", i);
            xml_buf_append_str(&b, fld);
        }
        xml_buf_append_str(&b, "</x>");
        int rc = parse_form(b.data, &f, err, sizeof err);
        assert_int_equal(rc, over ? DATAFORM_ERR_LIMIT : DATAFORM_OK);
        if (over)
            assert_non_null(strstr(err, "more than 64 fields"));
        dataform_free(f);
    }
    /* values of one multi-valued field */
    for (int over = 0; over < 2; over++) {
        xml_buf_reset(&b);
        xml_buf_append_str(&b, "<x xmlns='jabber:x:data' type='submit'><field var='m' type='text-multi'>");
        for (int i = 0; i < DATAFORM_MAX_VALUES + over; i++)
            xml_buf_append_str(&b, "<value>line</value>");
        xml_buf_append_str(&b, "</field></x>");
        int rc = parse_form(b.data, &f, err, sizeof err);
        assert_int_equal(rc, over ? DATAFORM_ERR_LIMIT : DATAFORM_OK);
        if (over)
            assert_non_null(strstr(err, "field 'm': more than 64 values"));
        dataform_free(f);
    }
    /* options */
    xml_buf_reset(&b);
    xml_buf_append_str(&b, "<x xmlns='jabber:x:data' type='form'><field var='l' type='list-multi'>");
    for (int i = 0; i <= DATAFORM_MAX_OPTIONS; i++)
        xml_buf_append_str(&b, "<option><value>o</value></option>");
    xml_buf_append_str(&b, "</field></x>");
    assert_int_equal(parse_form(b.data, &f, err, sizeof err), DATAFORM_ERR_LIMIT);
    /* items */
    xml_buf_reset(&b);
    xml_buf_append_str(&b, "<x xmlns='jabber:x:data' type='result'><reported><field var='a'/></reported>");
    for (int i = 0; i <= DATAFORM_MAX_ITEMS; i++)
        xml_buf_append_str(&b, "<item><field var='a'><value>1</value></field></item>");
    xml_buf_append_str(&b, "</x>");
    assert_int_equal(parse_form(b.data, &f, err, sizeof err), DATAFORM_ERR_LIMIT);
    assert_non_null(strstr(err, "items"));
    xml_buf_free(&b);
}

/* ---- building ---- */

static void test_build_and_serialize(void **state)
{
    dataform *f = dataform_new(DATAFORM_FORM, "Book a slot", "Pick a start time.\nTimes are UTC.");
    assert_non_null(f);
    assert_non_null(dataform_add_form_type(f, "urn:example:book"));
    assert_non_null(dataform_add_fixed(f, "Section <1> & more"));
    dataform_field *fl = dataform_add_text(f, "title", "Title", "My show");
    assert_non_null(fl);
    dataform_field_set_required(fl, true);
    assert_int_equal(dataform_field_set_desc(fl, "Shown to viewers"), DATAFORM_OK);
    assert_non_null(dataform_add_bool(f, "public", "Public?", true));
    fl = dataform_add_field(f, DATAFORM_LIST_SINGLE, "length", "Length");
    assert_int_equal(dataform_field_add_option(fl, "30 minutes", "30"), DATAFORM_OK);
    assert_int_equal(dataform_field_add_option(fl, NULL, "60"), DATAFORM_OK);
    assert_int_equal(dataform_field_add_value(fl, "30"), DATAFORM_OK);
    fl = dataform_add_field(f, DATAFORM_TEXT_MULTI, "notes", NULL);
    assert_int_equal(dataform_field_set_text(fl, "one\r\ntwo\n\nfour"), DATAFORM_OK);
    assert_int_equal(fl->nvalues, 4);
    assert_non_null(dataform_add_field(f, DATAFORM_TEXT_PRIVATE, "secret", "Secret"));
    assert_non_null(dataform_add_field(f, DATAFORM_JID_MULTI, "guests", "Guests"));
    assert_null(dataform_add_field(f, DATAFORM_TEXT_SINGLE, NULL, "no var"));

    xml_node *x = dataform_to_xml(f);
    char *s = xml_to_string(x, XML_NS_CLIENT);
    assert_non_null(strstr(s, "<x xmlns=\"jabber:x:data\" type=\"form\"><title>Book a slot</title>"
                              "<instructions>Pick a start time.</instructions><instructions>Times are UTC.</instructions>"));
    assert_non_null(strstr(s, "<field var=\"FORM_TYPE\" type=\"hidden\"><value>urn:example:book</value></field>"));
    assert_non_null(strstr(s, "<field type=\"fixed\"><value>Section &lt;1&gt; &amp; more</value></field>"));
    assert_non_null(strstr(s, "<field var=\"title\" type=\"text-single\" label=\"Title\"><desc>Shown to viewers</desc>"
                              "<required/><value>My show</value></field>"));
    assert_non_null(strstr(s, "<field var=\"public\" type=\"boolean\" label=\"Public?\"><value>1</value></field>"));
    assert_non_null(strstr(s, "<value>30</value><option label=\"30 minutes\"><value>30</value></option>"
                              "<option><value>60</value></option>"));
    assert_non_null(strstr(s, "<value>one</value><value>two</value><value/><value>four</value>"));
    free(s);

    /* it parses back to the same form */
    dataform *g = NULL;
    char err[256];
    assert_int_equal(dataform_parse(x, &g, err, sizeof err), DATAFORM_OK);
    assert_string_equal(g->title, f->title);
    assert_string_equal(g->instructions, f->instructions);
    assert_int_equal(g->nfields, f->nfields);
    for (size_t i = 0; i < f->nfields; i++) {
        assert_int_equal(g->fields[i].type, f->fields[i].type);
        assert_int_equal(g->fields[i].nvalues, f->fields[i].nvalues);
        assert_int_equal(g->fields[i].noptions, f->fields[i].noptions);
        assert_int_equal(g->fields[i].required, f->fields[i].required);
    }
    char *notes = dataform_text(g, "notes");
    assert_string_equal(notes, "one\ntwo\n\nfour");
    free(notes);
    bool pub = false;
    assert_int_equal(dataform_bool(g, "public", &pub), DATAFORM_OK);
    assert_true(pub);
    dataform_free(g);
    xml_node_free(x);
    dataform_free(f);
}

static void test_build_table(void **state)
{
    dataform *f = dataform_new(DATAFORM_RESULT, "My reservations", NULL);
    assert_non_null(dataform_add_column(f, DATAFORM_TEXT_SINGLE, "start", "Start"));
    assert_non_null(dataform_add_column(f, DATAFORM_TEXT_SINGLE, "title", "Title"));
    assert_null(dataform_add_column(f, DATAFORM_TEXT_SINGLE, NULL, "x"));
    dataform_item *it = dataform_add_item(f);
    assert_int_equal(dataform_item_add_value(it, "title", "Morning show"), DATAFORM_OK);
    assert_int_equal(dataform_item_add_value(it, "start", "2030-01-01T08:00:00Z"), DATAFORM_OK);
    it = dataform_add_item(f);
    assert_int_equal(dataform_item_add_value(it, "start", "2030-01-01T09:00:00Z"), DATAFORM_OK);
    assert_int_equal(dataform_item_add_value(it, NULL, "x"), DATAFORM_ERR_INVALID);
    xml_node *x = dataform_to_xml(f);
    char *s = xml_to_string(x, XML_NS_CLIENT);
    /* cells in column order; a missing cell is an empty field */
    assert_non_null(strstr(s, "<reported><field var=\"start\" type=\"text-single\" label=\"Start\"/>"
                              "<field var=\"title\" type=\"text-single\" label=\"Title\"/></reported>"
                              "<item><field var=\"start\"><value>2030-01-01T08:00:00Z</value></field>"
                              "<field var=\"title\"><value>Morning show</value></field></item>"
                              "<item><field var=\"start\"><value>2030-01-01T09:00:00Z</value></field>"
                              "<field var=\"title\"/></item>"));
    free(s);
    dataform *g = NULL;
    assert_int_equal(dataform_parse(x, &g, NULL, 0), DATAFORM_OK);
    assert_int_equal(g->nreported, 2);
    assert_int_equal(g->nitems, 2);
    dataform_free(g);
    xml_node_free(x);
    dataform_free(f);
}

static void test_names(void **state)
{
    assert_string_equal(dataform_field_type_name(DATAFORM_TEXT_PRIVATE), "text-private");
    assert_string_equal(dataform_field_type_name(DATAFORM_JID_MULTI), "jid-multi");
    assert_string_equal(dataform_type_name(DATAFORM_CANCEL), "cancel");
    dataform_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_every_field_type),
        cmocka_unit_test(test_parse_form_types),
        cmocka_unit_test(test_submitted_fields_without_type),
        cmocka_unit_test(test_booleans),
        cmocka_unit_test(test_table_result),
        cmocka_unit_test(test_parser_refusals),
        cmocka_unit_test(test_parser_limits),
        cmocka_unit_test(test_build_and_serialize),
        cmocka_unit_test(test_build_table),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

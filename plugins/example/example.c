/* example.c - an onair plugin that shows every part of the plugin API
 * (specs/plugin-api.md).  It includes nothing of onair but <onair/plugin.h>
 * and builds in or out of the source tree:
 *
 *     cc -std=c17 -shared -fPIC -fvisibility=hidden -I<prefix>/include \
 *        -o example.so example.c
 *
 * What it does:
 *  - IQ urn:onair:example: a get answers the configured greeting and
 *    counters (IQ gets answered, kept in its store database so they
 *    survive restarts; reservation events seen; timer ticks; dropped
 *    messages).  A set with <work>text</work> reverses the text on the
 *    thread pool and answers when that is done.
 *  - Counts reservation events (booked, reconfirmed, cancelled) in its
 *    store database, in one transaction per event.
 *  - The ad-hoc command "example-greet": a form with a name, answered with
 *    a note and the counters as result fields.
 *  - A repeating timer (tick_ms) that counts ticks.
 *  - Stanza filters: drops client messages whose body contains drop_word;
 *    turns a body equal to rewrite_from into rewrite_to; with stamp_out,
 *    adds <stamp xmlns='urn:onair:example'>N</stamp> to messages it
 *    delivers to clients.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <onair/plugin.h>

#define NS "urn:onair:example"

typedef struct example {
    onair_host *h;
    const onair_host_api *api;
    uint64_t timer;
    int64_t tick_ms;
    uint64_t ticks;
    uint64_t dropped;
    uint64_t stamped;
} example;

/* strdup is POSIX, not C17. */
static char *dup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    return d ? memcpy(d, s, n) : NULL;
}

/* ---- counters in the store (decimal text values) ---- */

static uint64_t counter_get(example *ex, onair_txn *txn, const char *key)
{
    char buf[32];
    size_t n = 0;
    if (ex->api->store_get(ex->h, txn, key, strlen(key), buf, sizeof buf - 1, &n) != ONAIR_OK ||
        n >= sizeof buf)
        return 0;
    buf[n] = '\0';
    return strtoull(buf, NULL, 10);
}

static int counter_add(example *ex, onair_txn *txn, const char *key, uint64_t *value)
{
    uint64_t v = counter_get(ex, txn, key) + 1;
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
    int rc = ex->api->store_put(ex->h, txn, key, strlen(key), buf, (size_t)n);
    if (rc == ONAIR_OK && value)
        *value = v;
    return rc;
}

/* ---- reservation events ---- */

typedef struct count_job {
    example *ex;
    const char *key;
} count_job;

static int count_in_txn(void *ud, onair_txn *txn)
{
    count_job *job = ud;
    /* Read and write in one transaction: no increment is lost. */
    return counter_add(job->ex, txn, job->key, NULL);
}

static int on_reservation(void *ud, onair_event event, const void *payload)
{
    example *ex = ud;
    const onair_reservation_event *r = payload;
    count_job job = {ex, event == ONAIR_EVENT_RESERVATION_BOOKED        ? "res.booked"
                         : event == ONAIR_EVENT_RESERVATION_RECONFIRMED ? "res.reconfirmed"
                                                                        : "res.cancelled"};
    int rc = ex->api->store_txn(ex->h, count_in_txn, &job);
    ex->api->log(ex->h, ONAIR_LOG_INFO, "%s: reservation %s on %s by %s", job.key, r->id, r->channel, r->owner);
    if (rc != ONAIR_OK)
        ex->api->log(ex->h, ONAIR_LOG_WARN, "could not count %s (%d)", job.key, rc);
    return ONAIR_HOOK_CONTINUE;
}

/* ---- stanza filters ---- */

static int on_stanza_in(void *ud, onair_event event, const void *payload)
{
    (void)event;
    example *ex = ud;
    const onair_stanza_event *e = payload;
    if (strcmp(ex->api->stanza_name(e->stanza), "message") != 0)
        return ONAIR_HOOK_CONTINUE;
    char body[4096];
    long n = ex->api->stanza_child_text(e->stanza, "body", NULL, body, sizeof body);
    if (n < 0)
        return ONAIR_HOOK_CONTINUE;
    const char *word = ex->api->config_string(ex->h, "drop_word");
    if (word && *word && strstr(body, word)) {
        ex->dropped++;
        ex->api->log(ex->h, ONAIR_LOG_INFO, "dropped a message from %s", e->session_jid);
        return ONAIR_HOOK_DROP;
    }
    const char *from = ex->api->config_string(ex->h, "rewrite_from");
    if (from && *from && strcmp(body, from) == 0)
        ex->api->stanza_set_child_text(e->stanza, "body", NULL, ex->api->config_string(ex->h, "rewrite_to"));
    return ONAIR_HOOK_CONTINUE;
}

static int on_stanza_out(void *ud, onair_event event, const void *payload)
{
    (void)event;
    example *ex = ud;
    const onair_stanza_event *e = payload;
    if (!ex->api->config_bool(ex->h, "stamp_out") || strcmp(ex->api->stanza_name(e->stanza), "message") != 0 ||
        ex->api->stanza_child_text(e->stanza, "body", NULL, NULL, 0) < 0)
        return ONAIR_HOOK_CONTINUE;
    char n[32];
    snprintf(n, sizeof n, "%llu", (unsigned long long)++ex->stamped);
    ex->api->stanza_set_child_text(e->stanza, "stamp", NS, n);
    return ONAIR_HOOK_CONTINUE;
}

/* ---- IQ ---- */

typedef struct reverse_job {
    /* No pointer into the plugin's state: done may run after shutdown. */
    const onair_host_api *api;
    onair_host *h;
    char *to, *id; /* the requester and the IQ's id, for the answer */
    char *text;
} reverse_job;

static void reverse_work(void *data)
{
    /* On a pool thread: only the job's own data. */
    reverse_job *job = data;
    size_t n = strlen(job->text);
    for (size_t i = 0; i < n / 2; i++) {
        char c = job->text[i];
        job->text[i] = job->text[n - 1 - i];
        job->text[n - 1 - i] = c;
    }
}

static void reverse_done(void *data, int status)
{
    reverse_job *job = data;
    if (status == ONAIR_OK) {
        size_t cap = 6 * (strlen(job->text) + strlen(job->to) + strlen(job->id)) + 256;
        char *xml = malloc(cap);
        char *esc_text = malloc(6 * strlen(job->text) + 1), *esc_to = malloc(6 * strlen(job->to) + 1),
             *esc_id = malloc(6 * strlen(job->id) + 1);
        if (xml && esc_text && esc_to && esc_id) {
            job->api->xml_escape(job->text, esc_text, 6 * strlen(job->text) + 1);
            job->api->xml_escape(job->to, esc_to, 6 * strlen(job->to) + 1);
            job->api->xml_escape(job->id, esc_id, 6 * strlen(job->id) + 1);
            snprintf(xml, cap, "<iq type='result' to='%s' id='%s'><query xmlns='" NS "'><result>%s</result></query></iq>",
                     esc_to, esc_id, esc_text);
            job->api->send_xml(job->h, xml);
        }
        free(xml);
        free(esc_text);
        free(esc_to);
        free(esc_id);
    }
    free(job->to);
    free(job->id);
    free(job->text);
    free(job);
}

static int on_iq(void *ud, const onair_stanza *iq)
{
    example *ex = ud;
    const onair_host_api *api = ex->api;
    if (strcmp(api->stanza_attr(iq, "type"), "set") == 0) {
        char text[1024];
        long n = api->stanza_child_text(iq, "query/work", NS, text, sizeof text);
        if (n < 0 || (size_t)n >= sizeof text) {
            api->iq_error(ex->h, iq, "modify", "bad-request", "expected <work>text</work>, at most 1023 bytes");
            return ONAIR_IQ_HANDLED;
        }
        reverse_job *job = calloc(1, sizeof *job);
        if (job) {
            job->api = api;
            job->h = ex->h;
            job->to = dup(api->stanza_attr(iq, "from"));
            job->id = dup(api->stanza_attr(iq, "id"));
            job->text = dup(text);
        }
        if (!job || !job->to || !job->id || !job->text ||
            api->work_queue(ex->h, reverse_work, reverse_done, job) != ONAIR_OK) {
            if (job) {
                free(job->to);
                free(job->id);
                free(job->text);
                free(job);
            }
            api->iq_error(ex->h, iq, "wait", "resource-constraint", NULL);
        }
        return ONAIR_IQ_HANDLED;
    }
    uint64_t count = 0;
    if (counter_add(ex, NULL, "iq.count", &count) != ONAIR_OK) {
        api->iq_error(ex->h, iq, "wait", "internal-server-error", "the store failed");
        return ONAIR_IQ_HANDLED;
    }
    const char *greeting = api->config_string(ex->h, "greeting");
    char esc[1024];
    api->xml_escape(greeting, esc, sizeof esc);
    char payload[2048];
    snprintf(payload, sizeof payload,
             "<query xmlns='" NS "'><greeting>%s</greeting><count>%llu</count><booked>%llu</booked>"
             "<reconfirmed>%llu</reconfirmed><cancelled>%llu</cancelled><ticks>%llu</ticks>"
             "<dropped>%llu</dropped></query>",
             esc, (unsigned long long)count, (unsigned long long)counter_get(ex, NULL, "res.booked"),
             (unsigned long long)counter_get(ex, NULL, "res.reconfirmed"),
             (unsigned long long)counter_get(ex, NULL, "res.cancelled"), (unsigned long long)ex->ticks,
             (unsigned long long)ex->dropped);
    api->iq_result(ex->h, iq, payload);
    return ONAIR_IQ_HANDLED;
}

/* ---- the ad-hoc command ---- */

static const onair_field greet_fields[] = {
    {.var = "name", .label = "Your name", .type = ONAIR_FIELD_TEXT, .required = true},
    {.var = "shout", .label = "Shout", .type = ONAIR_FIELD_BOOLEAN, .default_value = "false"},
    {.var = NULL},
};

static void on_greet(void *ud, onair_command *cmd)
{
    example *ex = ud;
    const onair_host_api *api = ex->api;
    const char *name = api->command_value(cmd, "name");
    if (strlen(name) > 64) {
        api->command_fail(cmd, "name", "at most 64 characters");
        return;
    }
    const char *shout = api->command_value(cmd, "shout");
    char note[256];
    snprintf(note, sizeof note, "%s, %s%s", api->config_string(ex->h, "greeting"), name,
             shout && strcmp(shout, "true") == 0 ? "!" : ".");
    api->command_note(cmd, note);
    char n[32];
    snprintf(n, sizeof n, "%llu", (unsigned long long)counter_get(ex, NULL, "iq.count"));
    api->command_result(cmd, "count", "IQ gets answered", n);
    snprintf(n, sizeof n, "%llu", (unsigned long long)counter_get(ex, NULL, "res.booked"));
    api->command_result(cmd, "booked", "Reservations booked", n);
    snprintf(n, sizeof n, "%llu", (unsigned long long)ex->ticks);
    api->command_result(cmd, "ticks", "Timer ticks", n);
}

/* ---- timer ---- */

static void on_tick(void *ud, uint64_t id)
{
    (void)id;
    example *ex = ud;
    if (ex->ticks++ == 0)
        ex->api->log(ex->h, ONAIR_LOG_INFO, "timer fired (every %lld ms)", (long long)ex->tick_ms);
}

static void start_timer(example *ex)
{
    if (ex->timer)
        ex->api->timer_stop(ex->h, ex->timer);
    ex->tick_ms = ex->api->config_int(ex->h, "tick_ms");
    ex->timer = ex->api->timer_start(ex->h, (uint64_t)ex->tick_ms, (uint64_t)ex->tick_ms, on_tick, ex);
}

/* ---- life cycle ---- */

static int init(onair_host *h, const onair_host_api *api, void **state)
{
    example *ex = calloc(1, sizeof *ex);
    if (!ex)
        return -1;
    ex->h = h;
    ex->api = api;
    static const onair_command_spec greet = {
        .node = "example-greet",
        .name = "Greet (example plugin)",
        .who = ONAIR_COMMAND_ACCOUNTS,
        .title = "Greeting",
        .instructions = "Say who you are.",
        .fields = greet_fields,
    };
    int rc = api->iq_register(h, NS, on_iq, ex);
    if (rc == ONAIR_OK)
        rc = api->command_register(h, &greet, on_greet, ex);
    for (int ev = ONAIR_EVENT_RESERVATION_BOOKED; rc == ONAIR_OK && ev <= ONAIR_EVENT_RESERVATION_CANCELLED; ev++)
        rc = api->hook(h, (onair_event)ev, 0, on_reservation, ex);
    if (rc == ONAIR_OK)
        rc = api->hook(h, ONAIR_EVENT_STANZA_IN, 0, on_stanza_in, ex);
    if (rc == ONAIR_OK)
        rc = api->hook(h, ONAIR_EVENT_STANZA_OUT, 0, on_stanza_out, ex);
    if (rc != ONAIR_OK) {
        api->log(h, ONAIR_LOG_ERROR, "cannot register (%d)", rc);
        free(ex); /* what was registered is removed by the server */
        return -1;
    }
    start_timer(ex);
    api->log(h, ONAIR_LOG_INFO, "ready on %s, greeting \"%s\"", api->server_domain(h),
             api->config_string(h, "greeting"));
    *state = ex;
    return 0;
}

static int reload(void *state)
{
    example *ex = state;
    if (ex->api->config_int(ex->h, "tick_ms") != ex->tick_ms)
        start_timer(ex);
    ex->api->log(ex->h, ONAIR_LOG_INFO, "reloaded, greeting \"%s\"", ex->api->config_string(ex->h, "greeting"));
    return 0;
}

static void shutdown_plugin(void *state)
{
    /* Timers, hooks, the IQ handler and the command are removed by the
     * server; queued work is answered with ONAIR_E_CANCELLED later (the
     * jobs do not point into this state then). */
    free(state);
}

static const onair_config_key config_keys[] = {
    {.name = "greeting", .type = ONAIR_CONFIG_STRING, .default_string = "hello",
     .description = "what IQ gets and the command answer"},
    {.name = "drop_word", .type = ONAIR_CONFIG_STRING, .default_string = "",
     .description = "client messages whose body contains it are dropped (\"\": none)"},
    {.name = "rewrite_from", .type = ONAIR_CONFIG_STRING, .description = "a body equal to this..."},
    {.name = "rewrite_to", .type = ONAIR_CONFIG_STRING, .description = "...becomes this"},
    {.name = "stamp_out", .type = ONAIR_CONFIG_BOOL, .default_int = 0,
     .description = "number the messages delivered to clients"},
    {.name = "tick_ms", .type = ONAIR_CONFIG_INT, .default_int = 1000, .min = 10, .max = 3600000,
     .description = "timer period"},
    {.name = NULL},
};

static const onair_plugin_info info = {
    .abi = ONAIR_PLUGIN_ABI,
    .name = "example",
    .version = "1.0",
    .description = "shows every part of the plugin API",
    .config = config_keys,
    .init = init,
    .shutdown = shutdown_plugin,
    .reload = reload,
};

ONAIR_PLUGIN_EXPORT const onair_plugin_info *onair_plugin_entry(void)
{
    return &info;
}

/* A test plugin whose init registers an IQ handler, a hook, a command and
 * a timer, then fails: the server must remove all of them and run on. */
#include <stdlib.h>

#include <onair/plugin.h>

static int on_iq(void *ud, const onair_stanza *iq)
{
    abort(); /* must never be reached: the handler is removed */
}

static int on_stanza(void *ud, onair_event ev, const void *payload)
{
    abort();
}

static void on_command(void *ud, onair_command *cmd)
{
    abort();
}

static void on_timer(void *ud, uint64_t id)
{
    abort();
}

static int init(onair_host *h, const onair_host_api *api, void **state)
{
    static const onair_command_spec spec = {.node = "init-fails", .name = "never", .who = ONAIR_COMMAND_EVERYONE};
    api->iq_register(h, "urn:onair:test:init-fails", on_iq, NULL);
    api->hook(h, ONAIR_EVENT_STANZA_IN, 100, on_stanza, NULL);
    api->command_register(h, &spec, on_command, NULL);
    api->timer_start(h, 1, 1, on_timer, NULL);
    api->log(h, ONAIR_LOG_WARN, "failing on purpose");
    return 7;
}

static void shutdown_plugin(void *state)
{
    abort(); /* not called after a failed init */
}

static const onair_plugin_info info = {
    .abi = ONAIR_PLUGIN_ABI,
    .name = "init_fails",
    .version = "0",
    .init = init,
    .shutdown = shutdown_plugin,
};

ONAIR_PLUGIN_EXPORT const onair_plugin_info *onair_plugin_entry(void)
{
    return &info;
}

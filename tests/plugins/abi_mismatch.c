/* A test plugin built for another plugin ABI: the server must refuse it
 * without calling anything of it but its entry point. */
#include <stdlib.h>

#include <onair/plugin.h>

static int init(onair_host *h, const onair_host_api *api, void **state)
{
    abort(); /* never called */
}

static void shutdown_plugin(void *state)
{
    abort();
}

static const onair_plugin_info info = {
    .abi = ONAIR_PLUGIN_ABI + 98,
    .name = "abi_mismatch",
    .version = "0",
    .init = init,
    .shutdown = shutdown_plugin,
};

ONAIR_PLUGIN_EXPORT const onair_plugin_info *onair_plugin_entry(void)
{
    return &info;
}

/* A test plugin that queues work taking about a second at init: unloading
 * it (SIGHUP after removing it from plugins.load) while the work runs must
 * keep its object mapped until the work is done, and then call done with
 * ONAIR_E_CANCELLED.  done writes to stderr itself: the host is gone then. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <onair/plugin.h>

static void slow(void *data)
{
    struct timespec ts = {1, 0};
    nanosleep(&ts, NULL);
    *(int *)data = 42;
}

static void done(void *data, int status)
{
    fprintf(stderr, "slow_work: done, status %d, result %d\n", status, *(int *)data);
    free(data);
}

static int init(onair_host *h, const onair_host_api *api, void **state)
{
    int *data = calloc(1, sizeof *data);
    if (!data || api->work_queue(h, slow, done, data) != ONAIR_OK) {
        free(data);
        return -1;
    }
    api->log(h, ONAIR_LOG_INFO, "work queued");
    *state = NULL;
    return 0;
}

static void shutdown_plugin(void *state)
{
    (void)state;
}

static const onair_plugin_info info = {
    .abi = ONAIR_PLUGIN_ABI,
    .name = "slow_work",
    .version = "0",
    .init = init,
    .shutdown = shutdown_plugin,
};

ONAIR_PLUGIN_EXPORT const onair_plugin_info *onair_plugin_entry(void)
{
    return &info;
}

/* onaird - the onair server: one process, one libuv loop.
 *
 *   onaird -c FILE [--check]
 *
 * Exit status: 0 after a clean shutdown (SIGTERM/SIGINT), 2 for a bad
 * configuration or a failed start, 1 for anything else.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "config.h"
#include "server.h"

#ifdef ONAIR_JEMALLOC
/* Read by jemalloc at start-up: give freed pages back after a second (no
 * lingering "muzzy" stage), so idle servers shrink. */
const char *malloc_conf = "dirty_decay_ms:1000,muzzy_decay_ms:0";
#endif

static void usage(FILE *f)
{
    fprintf(f, "usage: onaird -c FILE [--check]\n"
               "  -c FILE    configuration file (libconfig syntax, see specs/config.md)\n"
               "  --check    read the configuration, report problems, and exit\n"
               "  -V         print the version\n");
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    bool check_only = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
            path = argv[++i];
        } else if (strcmp(argv[i], "--check") == 0) {
            check_only = true;
        } else if (strcmp(argv[i], "-V") == 0 || strcmp(argv[i], "--version") == 0) {
            printf("onaird %s\n", ONAIR_VERSION);
            return 0;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!path) {
        usage(stderr);
        return 2;
    }
    config cfg;
    config_defaults(&cfg);
    char err[2048];
    if (config_load(&cfg, path, err, sizeof err) != 0) {
        fprintf(stderr, "onaird: %s\n", err);
        config_free(&cfg);
        return 2;
    }
    if (check_only) {
        printf("onaird: %s: configuration ok\n", cfg.path);
        config_free(&cfg);
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);

    uv_loop_t loop;
    uv_loop_init(&loop);
    server *srv = calloc(1, sizeof *srv);
    int exit_code = 0;
    if (!srv || server_init(srv, &loop, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "onaird: %s\n", srv ? err : "out of memory");
        exit_code = 2;
        if (srv)
            server_stop(srv);
    }
    config_free(&cfg);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (srv) {
        if (exit_code == 0)
            log_write(&srv->log, LOG_INFO, "server", "stopped");
        server_free(srv);
        free(srv);
    }
    if (uv_loop_close(&loop) != 0) {
        fprintf(stderr, "onaird: handles left open at exit\n");
        if (exit_code == 0)
            exit_code = 1;
    }
    /* Joins the thread pool's workers, so the process ends with one thread. */
    uv_library_shutdown();
    return exit_code;
}

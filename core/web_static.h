/* web_static.h - the web pages: the files of http.static_dir, served by the
 * HTTP listener next to the JSON API (specs/http-api.md, "Web pages"), and
 * GET /api/v1/server, what the pages need to know to log in and chat.
 *
 * Lifecycle (server.c): web_static_start after web_init and the modules'
 * routes (it registers the web fallback and its one route); the folder is
 * read into memory then and again on SIGHUP (web_static_reload);
 * web_static_free after the loop has ended.  The state belongs to the server
 * context (srv->web_static).  Everything runs on the server loop.
 */
#ifndef ONAIR_WEB_STATIC_H
#define ONAIR_WEB_STATIC_H

#include <stddef.h>

struct server;
struct config;

/* The folder of the pages when http.static_dir is not set: the build tree's
 * web/ when onaird runs from a build tree (config_build_tree), else the
 * installed folder (ONAIR_WEB_DIR). */
#ifndef ONAIR_WEB_DIR
#define ONAIR_WEB_DIR "/usr/local/share/onair/web"
#endif

/* Limits of what is read from the folder (larger files, and files beyond
 * the count or the total, are skipped with a warning). */
#define WEB_STATIC_MAX_FILES 1024
#define WEB_STATIC_MAX_FILE_BYTES (8u << 20)
#define WEB_STATIC_MAX_TOTAL_BYTES (64u << 20)
#define WEB_STATIC_MAX_DEPTH 8

/* Reads the configured folder and registers the pages' handler with web.c.
 * A missing folder is logged and leaves the pages out (404), never failing
 * the server.  Returns 0, or -1 (out of memory, or no web state). */
int web_static_start(struct server *srv);
/* SIGHUP: reads the folder of `next` (http.static_dir may have changed)
 * afresh; the files read before are served until the new ones are in. */
void web_static_reload(struct server *srv, const struct config *next);
/* Frees the files.  Safe when web_static_start never ran. */
void web_static_free(struct server *srv);

#endif

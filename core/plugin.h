/* plugin.h - the server's side of the plugin API (the plugins' side is
 * core/include/onair/plugin.h; the contract is specs/plugin-api.md).
 *
 * The loader opens <plugins.dir>/<name>/<name>.so for every name in
 * plugins.load, in order, checks the descriptor its onair_plugin_entry
 * returns (ABI, name, callbacks), checks the plugin's own configuration
 * group against the keys it declares, and calls its init.  Anything wrong
 * with one plugin is logged and that plugin is skipped: the server runs on.
 *
 * Everything a plugin registers (hooks, IQ handlers, commands, timers) is
 * recorded against it and removed when it is unloaded: at shutdown (in the
 * reverse of the load order), or on SIGHUP when it is no longer listed.
 * A plugin's shared object stays mapped until its last queued work has
 * come back (the work function runs plugin code on a pool thread).
 *
 * Ownership: srv->plugins is owned by this module (plugins_start creates
 * it, plugins_free frees it).  Stanzas passed to the stanza hooks are
 * borrowed and may be changed in place.
 */
#ifndef ONAIR_PLUGIN_INTERNAL_H
#define ONAIR_PLUGIN_INTERNAL_H

#include <stdbool.h>

#include "config.h"
#include "xml.h"

struct server;
struct session;

/* Where plugins are looked for when plugins.dir is not set: the build
 * tree's plugins/ when onaird runs from a build tree (its folder holds
 * CMakeCache.txt), else the installed folder (ONAIR_PLUGIN_DIR). */
#ifndef ONAIR_PLUGIN_DIR
#define ONAIR_PLUGIN_DIR "/usr/local/lib/onair/plugins"
#endif

/* Creates the plugin state and loads the configured plugins.  Never fails
 * the server: a plugin that cannot be loaded is logged and skipped.
 * Returns 0, or -1 when out of memory. */
int plugins_start(struct server *srv);
/* SIGHUP: next is the freshly read configuration.  Loaded plugins that are
 * still listed get their new settings (checked first; kept as they were
 * when wrong) and their reload callback; listed plugins that are not
 * loaded (new, or failed before) are loaded; loaded plugins no longer
 * listed are unloaded.  The plugin settings of next move into srv->cfg. */
void plugins_reload(struct server *srv, config *next);
/* Shutdown: unloads every plugin in the reverse of the load order. */
void plugins_stop(struct server *srv);
/* After the loop has ended: frees what is left (and closes the objects). */
void plugins_free(struct server *srv);

/* Whether any plugin hooks the stanza events: the callers skip the work of
 * preparing a stanza for the hooks when none does. */
bool plugins_hook_stanza_in(const struct server *srv);
bool plugins_hook_stanza_out(const struct server *srv);
/* Runs the STANZA_IN / STANZA_OUT hooks on stanza (changed in place).
 * Returns true to go on with it, false when a hook dropped it. */
bool plugins_stanza_in(struct server *srv, struct session *s, xml_node *stanza);
bool plugins_stanza_out(struct server *srv, struct session *s, xml_node *stanza);

/* Names of the loaded plugins, in load order, for onairctl health. */
size_t plugins_loaded(const struct server *srv, const char **names, size_t cap);

#endif

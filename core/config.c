/* config.c - reads onaird's configuration file (libconfig syntax) over the
 * defaults.  The schema below is the single list of accepted keys: anything
 * else in the file is refused, naming the file, the line and the key, so a
 * typo never silently falls back to a default.  specs/config.md documents the
 * same table for operators.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <libconfig.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "datetime.h"
#include "jid.h"

typedef enum key_type { KEY_STRING, KEY_INT, KEY_BOOL, KEY_STRING_LIST } key_type;

typedef struct key_spec {
    const char *group;
    const char *name;
    key_type type;
    long long min, max; /* for KEY_INT */
} key_spec;

static const key_spec schema[] = {
    {"server", "domain", KEY_STRING, 0, 0},
    {"server", "guest_domain", KEY_STRING, 0, 0},
    {"server", "data_dir", KEY_STRING, 0, 0},
    {"server", "admin_socket", KEY_STRING, 0, 0},
    {"server", "log_level", KEY_STRING, 0, 0},
    {"tls", "certificate", KEY_STRING, 0, 0},
    {"tls", "key", KEY_STRING, 0, 0},
    {"tls", "generate", KEY_BOOL, 0, 0},
    {"c2s", "listen", KEY_STRING_LIST, 0, 0},
    {"c2s", "port", KEY_INT, 0, 65535},
    {"c2s", "direct_tls_port", KEY_INT, 0, 65535},
    {"c2s", "require_tls", KEY_BOOL, 0, 0},
    {"c2s", "allow_plain", KEY_BOOL, 0, 0},
    {"c2s", "max_connections", KEY_INT, 1, 10000000},
    {"c2s", "auth_timeout_s", KEY_INT, 1, 3600},
    {"c2s", "idle_release_s", KEY_INT, 0, 3600},
    {"limits", "max_stanza_bytes", KEY_INT, 1024, 64 * 1024 * 1024},
    {"limits", "max_depth", KEY_INT, 2, 1000},
    {"limits", "max_attrs", KEY_INT, 4, 10000},
    {"limits", "max_offline_per_user", KEY_INT, 0, 10000000},
    {"limits", "max_roster_items", KEY_INT, 0, 10000000},
    {"limits", "max_write_buffer_bytes", KEY_INT, 4096, 1024LL * 1024 * 1024},
    {"store", "map_size_mb", KEY_INT, 1, 1024LL * 1024},
    {"reservation", "timezone", KEY_STRING, 0, 0},
    {"reservation", "slot_s", KEY_INT, 1, 86400},
    {"reservation", "max_duration_s", KEY_INT, 1, 7 * 86400},
    {"reservation", "max_advance_days", KEY_INT, 1, 3660},
    {"reservation", "currency", KEY_STRING, 0, 0},
    {"reservation", "page_url", KEY_STRING, 0, 0},
    {"schedule", "reconfirm_before_s", KEY_INT, 0, 30LL * 86400},
    {"schedule", "ingest_open_before_s", KEY_INT, 0, 86400},
    {"schedule", "ingest_close_after_s", KEY_INT, 0, 86400},
    {"schedule", "room_open_before_s", KEY_INT, 0, 7 * 86400},
    {"schedule", "room_close_after_s", KEY_INT, 0, 7 * 86400},
    {"schedule", "notice_before_s", KEY_INT, 0, 7 * 86400},
    {"schedule", "close_warning_before_s", KEY_INT, 0, 7 * 86400},
    {"muc", "domain", KEY_STRING, 0, 0},
    {"muc", "history_max", KEY_INT, 0, 1000},
    {"muc", "presence_broadcast_limit", KEY_INT, 0, 10000000},
    {"muc", "rate_per_s", KEY_INT, 1, 1000000},
    {"muc", "rate_burst", KEY_INT, 1, 1000000},
    {"muc", "max_message_bytes", KEY_INT, 16, 64 * 1024 * 1024},
    {"muc", "count_interval_s", KEY_INT, 1, 3600},
    {"muc", "closed_log_keep_s", KEY_INT, 0, 3650LL * 86400},
    {"media", "domain", KEY_STRING, 0, 0},
    {"media", "listen", KEY_STRING, 0, 0},
    {"media", "port", KEY_INT, 0, 65535},
    {"media", "public_ip", KEY_STRING, 0, 0},
    {"media", "bandwidth_headroom_percent", KEY_INT, 0, 1000},
    {"media", "ingest_timeout_s", KEY_INT, 1, 3600},
    {"media", "feedback_per_s", KEY_INT, 1, 10000},
    {"media", "keyframe_request_interval_ms", KEY_INT, 0, 60000},
    {"media", "keyframe_cache_bytes", KEY_INT, 0, 256LL * 1024 * 1024},
    {"media", "token_ttl_s", KEY_INT, 1, 3600},
    {"media", "websocket_queue_bytes", KEY_INT, 65536, 64LL * 1024 * 1024},
    {"media", "socket_buffer_bytes", KEY_INT, 65536, 1024LL * 1024 * 1024},
    {"adhoc", "session_timeout_s", KEY_INT, 1, 86400},
    {"http", "listen", KEY_STRING_LIST, 0, 0},
    {"http", "port", KEY_INT, 0, 65535},
    {"http", "max_body_bytes", KEY_INT, 1024, 64 * 1024 * 1024},
    {"http", "token_ttl_s", KEY_INT, 1, 366LL * 24 * 3600},
    {"http", "max_connections", KEY_INT, 1, 10000000},
    {"http", "static_dir", KEY_STRING, 0, 0},
    {"http", "tls", KEY_BOOL, 0, 0},
    {"http", "loopback_is_secure", KEY_BOOL, 0, 0},
    {"http", "public_url", KEY_STRING, 0, 0},
    {"http", "xmpp_websocket_path", KEY_STRING, 0, 0},
    {"plugins", "dir", KEY_STRING, 0, 0},
    {"plugins", "load", KEY_STRING_LIST, 0, 0},
};

static void set_str(char **slot, const char *value)
{
    free(*slot);
    *slot = value ? strdup(value) : NULL;
}

void config_defaults(config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->domain = strdup("localhost");
    cfg->guest_domain = strdup("guest.localhost");
    cfg->data_dir = strdup("data");
    cfg->admin_socket = NULL; /* derived from data_dir */
    cfg->log_level = LOG_INFO;
    cfg->tls_certificate = strdup("certs/onair.crt");
    cfg->tls_key = strdup("certs/onair.key");
    cfg->tls_generate = false;
    cfg->listen[0] = strdup("127.0.0.1");
    cfg->listen[1] = strdup("::1");
    cfg->nlisten = 2;
    cfg->c2s_port = 5222;
    cfg->c2s_tls_port = 5223;
    cfg->require_tls = true;
    cfg->allow_plain = true;
    cfg->max_connections = 100000;
    cfg->auth_timeout_s = 30;
    cfg->idle_release_s = 10;
    cfg->max_stanza_bytes = 262144;
    cfg->max_depth = 32;
    cfg->max_attrs = 64;
    cfg->max_offline_per_user = 1000;
    cfg->max_roster_items = 1000;
    cfg->max_write_buffer_bytes = 1048576;
    cfg->store_map_size_mb = 1024;
    cfg->timezone = strdup("UTC");
    cfg->slot_s = 1800;
    cfg->max_duration_s = 6 * 3600;
    cfg->max_advance_days = 180;
    cfg->currency = strdup("JPY");
    cfg->page_url = strdup("http://localhost:5280/live/");
    cfg->reconfirm_before_s = 6 * 3600;
    cfg->ingest_open_before_s = 300;
    cfg->ingest_close_after_s = 300;
    cfg->room_open_before_s = 1800;
    cfg->room_close_after_s = 1800;
    cfg->notice_before_s = 600;
    cfg->close_warning_before_s = 300;
    cfg->muc_history_max = 20;
    cfg->muc_presence_broadcast_limit = 100;
    cfg->muc_rate_per_s = 2;
    cfg->muc_rate_burst = 10;
    cfg->muc_max_message_bytes = 4096;
    cfg->muc_count_interval_s = 5;
    cfg->muc_closed_log_keep_s = 30 * 86400;
    cfg->media_listen = strdup("127.0.0.1");
    cfg->media_port = 5004;
    cfg->media_bandwidth_headroom_percent = 25;
    cfg->media_ingest_timeout_s = 10;
    cfg->media_feedback_per_s = 10;
    cfg->media_keyframe_request_interval_ms = 1000;
    cfg->media_keyframe_cache_bytes = 4 * 1024 * 1024;
    cfg->media_token_ttl_s = 60;
    cfg->media_websocket_queue_bytes = 1024 * 1024;
    cfg->media_socket_buffer_bytes = 4 * 1024 * 1024;
    cfg->adhoc_session_timeout_s = 600;
    cfg->http_listen[0] = strdup("127.0.0.1");
    cfg->http_listen[1] = strdup("::1");
    cfg->http_nlisten = 2;
    cfg->http_port = 5280;
    cfg->http_max_body_bytes = 65536;
    cfg->http_token_ttl_s = 86400;
    cfg->http_max_connections = 10000;
    cfg->http_xmpp_websocket_path = strdup("/xmpp-websocket");
}

void config_free(config *cfg)
{
    free(cfg->domain);
    free(cfg->guest_domain);
    free(cfg->data_dir);
    free(cfg->admin_socket);
    free(cfg->tls_certificate);
    free(cfg->tls_key);
    for (size_t i = 0; i < cfg->nlisten; i++)
        free(cfg->listen[i]);
    for (size_t i = 0; i < cfg->http_nlisten; i++)
        free(cfg->http_listen[i]);
    free(cfg->http_public_url);
    free(cfg->http_xmpp_websocket_path);
    free(cfg->path);
    free(cfg->timezone);
    free(cfg->currency);
    free(cfg->page_url);
    free(cfg->muc_domain);
    free(cfg->media_domain);
    free(cfg->media_listen);
    free(cfg->media_public_ip);
    for (size_t i = 0; i < cfg->nchannels; i++) {
        free(cfg->channels[i].id);
        free(cfg->channels[i].name);
    }
    free(cfg->channels);
    free(cfg->plugins_dir);
    free(cfg->http_static_dir);
    config_plugin_groups_free(cfg->plugin_groups, cfg->nplugin_groups);
    memset(cfg, 0, sizeof *cfg);
}

void config_plugin_groups_free(config_plugin_group *groups, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < groups[i].nvalues; j++) {
            free(groups[i].values[j].key);
            free(groups[i].values[j].str);
        }
        free(groups[i].values);
        free(groups[i].name);
    }
    free(groups);
}

const config_plugin_group *config_plugin_group_find(const config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nplugin_groups; i++)
        if (strcmp(cfg->plugin_groups[i].name, name) == 0)
            return &cfg->plugin_groups[i];
    return NULL;
}

bool config_plugin_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > CONFIG_PLUGIN_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') || name[i] == '_'))
            return false;
    return true;
}

typedef struct load_ctx {
    const char *file;
    char *err;
    size_t errlen;
} load_ctx;

static int fail(load_ctx *lc, const config_setting_t *s, const char *key, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int line = s ? config_setting_source_line(s) : 0;
    snprintf(lc->err, lc->errlen, "%s:%d: %s: %s", lc->file, line, key, msg);
    return -1;
}

/* Returns an absolute path for p relative to base_dir; caller frees. */
static char *resolve_path(const char *base_dir, const char *p)
{
    if (p[0] == '/')
        return strdup(p);
    size_t n = strlen(base_dir) + 1 + strlen(p) + 1;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "%s/%s", base_dir, p);
    return out;
}

bool config_build_tree(char *out, size_t cap)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return false;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return false;
    *slash = '\0';
    char probe[PATH_MAX + 32];
    snprintf(probe, sizeof probe, "%s/CMakeCache.txt", exe);
    if (access(probe, F_OK) != 0 || strlen(exe) >= cap)
        return false;
    memcpy(out, exe, strlen(exe) + 1);
    return true;
}

char *config_default_dir(const char *sub, const char *installed)
{
    char build[PATH_MAX], dir[PATH_MAX + 64];
    if (!config_build_tree(build, sizeof build))
        return strdup(installed);
    snprintf(dir, sizeof dir, "%s/%s", build, sub);
    return strdup(dir);
}

static const key_spec *find_key(const char *group, const char *name)
{
    for (size_t i = 0; i < sizeof schema / sizeof schema[0]; i++)
        if (strcmp(schema[i].group, group) == 0 && strcmp(schema[i].name, name) == 0)
            return &schema[i];
    return NULL;
}

static bool known_group(const char *group)
{
    for (size_t i = 0; i < sizeof schema / sizeof schema[0]; i++)
        if (strcmp(schema[i].group, group) == 0)
            return true;
    return false;
}

/* plugins.load: a list of plugin names, loaded in that order. */
static int load_plugin_names(load_ctx *lc, config *cfg, config_setting_t *s, const char *key)
{
    int type = config_setting_type(s);
    if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST)
        return fail(lc, s, key, "expected a list of plugin names, e.g. [\"example\"]");
    int n = config_setting_length(s);
    if (n > CONFIG_MAX_PLUGINS)
        return fail(lc, s, key, "at most %d plugins", CONFIG_MAX_PLUGINS);
    cfg->nplugins_load = 0;
    for (int i = 0; i < n; i++) {
        config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        if (config_setting_type(e) != CONFIG_TYPE_STRING)
            return fail(lc, e, key, "expected a list of plugin names (strings)");
        const char *name = config_setting_get_string(e);
        if (!config_plugin_name_valid(name))
            return fail(lc, e, key, "\"%s\" is not a plugin name (1 to %d of a-z, 0-9, _)", name,
                        CONFIG_PLUGIN_NAME_MAX);
        for (size_t j = 0; j < cfg->nplugins_load; j++)
            if (strcmp(cfg->plugins_load[j].name, name) == 0)
                return fail(lc, e, key, "\"%s\" is listed twice", name);
        config_plugin_name *pn = &cfg->plugins_load[cfg->nplugins_load++];
        snprintf(pn->name, sizeof pn->name, "%s", name);
        pn->line = config_setting_source_line(e) ? config_setting_source_line(e) : config_setting_source_line(s);
    }
    return 0;
}

/* The group `plugin`: one subgroup per plugin with its own settings, kept
 * as written (the loader checks them against what the plugin declares). */
static int load_plugin_groups(load_ctx *lc, config *cfg, config_setting_t *grp)
{
    if (config_setting_type(grp) != CONFIG_TYPE_GROUP)
        return fail(lc, grp, "plugin", "expected a group { <plugin name> = { ... }; ... }");
    int n = config_setting_length(grp);
    for (int i = 0; i < n; i++) {
        config_setting_t *pg = config_setting_get_elem(grp, (unsigned)i);
        const char *name = config_setting_name(pg);
        char key[160];
        snprintf(key, sizeof key, "plugin.%s", name);
        if (!config_plugin_name_valid(name))
            return fail(lc, pg, key, "not a plugin name (1 to %d of a-z, 0-9, _)", CONFIG_PLUGIN_NAME_MAX);
        if (config_setting_type(pg) != CONFIG_TYPE_GROUP)
            return fail(lc, pg, key, "expected a group { key = value; ... }");
        config_plugin_group *arr = realloc(cfg->plugin_groups, (cfg->nplugin_groups + 1) * sizeof *arr);
        if (!arr)
            return fail(lc, pg, key, "out of memory");
        cfg->plugin_groups = arr;
        config_plugin_group *g = &arr[cfg->nplugin_groups++];
        memset(g, 0, sizeof *g);
        g->name = strdup(name);
        g->line = config_setting_source_line(pg);
        int nv = config_setting_length(pg);
        g->values = nv > 0 ? calloc((size_t)nv, sizeof *g->values) : NULL;
        if (!g->name || (nv > 0 && !g->values))
            return fail(lc, pg, key, "out of memory");
        for (int j = 0; j < nv; j++) {
            config_setting_t *v = config_setting_get_elem(pg, (unsigned)j);
            config_plugin_value *pv = &g->values[g->nvalues++];
            pv->key = strdup(config_setting_name(v));
            pv->line = config_setting_source_line(v);
            switch (config_setting_type(v)) {
            case CONFIG_TYPE_STRING:
                pv->kind = CONFIG_VALUE_STRING;
                pv->str = strdup(config_setting_get_string(v));
                break;
            case CONFIG_TYPE_INT:
            case CONFIG_TYPE_INT64:
                pv->kind = CONFIG_VALUE_INT;
                pv->num = config_setting_get_int64(v);
                break;
            case CONFIG_TYPE_BOOL:
                pv->kind = CONFIG_VALUE_BOOL;
                pv->num = config_setting_get_bool(v) != 0;
                break;
            default:
                pv->kind = CONFIG_VALUE_OTHER;
                break;
            }
        }
    }
    return 0;
}

/* Applies one setting to cfg after checking its type against spec. */
static int apply(load_ctx *lc, config *cfg, const key_spec *spec, config_setting_t *s, const char *base_dir)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", spec->group, spec->name);
    int type = config_setting_type(s);
    const char *str = NULL;
    long long num = 0;
    bool flag = false;
    /* the one kind of list: listen addresses, of c2s or of http */
    bool is_http = strcmp(spec->group, "http") == 0;
    char **list = is_http ? cfg->http_listen : cfg->listen;
    size_t *nlist = is_http ? &cfg->http_nlisten : &cfg->nlisten;

    switch (spec->type) {
    case KEY_STRING:
        if (type != CONFIG_TYPE_STRING)
            return fail(lc, s, key, "expected a string");
        str = config_setting_get_string(s);
        break;
    case KEY_INT:
        if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64)
            return fail(lc, s, key, "expected an integer between %lld and %lld", spec->min, spec->max);
        num = config_setting_get_int64(s);
        if (num < spec->min || num > spec->max)
            return fail(lc, s, key, "expected an integer between %lld and %lld", spec->min, spec->max);
        break;
    case KEY_BOOL:
        if (type != CONFIG_TYPE_BOOL)
            return fail(lc, s, key, "expected true or false");
        flag = config_setting_get_bool(s) != 0;
        break;
    case KEY_STRING_LIST:
        if (strcmp(spec->group, "plugins") == 0)
            return load_plugin_names(lc, cfg, s, key);
        if (type == CONFIG_TYPE_STRING) {
            for (size_t i = 0; i < *nlist; i++)
                free(list[i]);
            list[0] = strdup(config_setting_get_string(s));
            *nlist = 1;
            return 0;
        } else if (type == CONFIG_TYPE_ARRAY || type == CONFIG_TYPE_LIST) {
            int n = config_setting_length(s);
            if (n < 1 || n > CONFIG_MAX_LISTEN)
                return fail(lc, s, key, "expected 1 to %d addresses", CONFIG_MAX_LISTEN);
            for (int i = 0; i < n; i++) {
                config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
                if (config_setting_type(e) != CONFIG_TYPE_STRING)
                    return fail(lc, e, key, "expected a list of strings");
            }
            for (size_t i = 0; i < *nlist; i++)
                free(list[i]);
            *nlist = 0;
            for (int i = 0; i < n; i++)
                list[(*nlist)++] = strdup(config_setting_get_string_elem(s, i));
            return 0;
        } else {
            return fail(lc, s, key, "expected a string or a list of strings");
        }
        break;
    }

    const char *g = spec->group, *k = spec->name;
    if (strcmp(g, "server") == 0) {
        if (strcmp(k, "domain") == 0 || strcmp(k, "guest_domain") == 0) {
            bool is_guest = k[0] == 'g';
            if (is_guest && str[0] == '\0') {
                set_str(&cfg->guest_domain, NULL);
                return 0;
            }
            char *norm = jid_nameprep(str);
            if (!norm || strchr(norm, '@') || strchr(norm, '/')) {
                free(norm);
                return fail(lc, s, key, "not a valid domain name: \"%s\"", str);
            }
            char **slot = is_guest ? &cfg->guest_domain : &cfg->domain;
            free(*slot);
            *slot = norm;
        } else if (strcmp(k, "data_dir") == 0) {
            if (str[0] == '\0')
                return fail(lc, s, key, "must not be empty");
            free(cfg->data_dir);
            cfg->data_dir = resolve_path(base_dir, str);
        } else if (strcmp(k, "admin_socket") == 0) {
            if (str[0] == '\0')
                return fail(lc, s, key, "must not be empty");
            free(cfg->admin_socket);
            cfg->admin_socket = resolve_path(base_dir, str);
        } else if (strcmp(k, "log_level") == 0) {
            if (log_level_parse(str, &cfg->log_level) != 0)
                return fail(lc, s, key, "expected debug, info, warn, error or none");
        }
    } else if (strcmp(g, "tls") == 0) {
        if (strcmp(k, "generate") == 0) {
            cfg->tls_generate = flag;
        } else {
            bool is_cert = strcmp(k, "certificate") == 0;
            char **slot = is_cert ? &cfg->tls_certificate : &cfg->tls_key;
            *(is_cert ? &cfg->tls_certificate_line : &cfg->tls_key_line) = config_setting_source_line(s);
            free(*slot);
            *slot = resolve_path(base_dir, str);
        }
    } else if (strcmp(g, "c2s") == 0) {
        if (strcmp(k, "port") == 0) {
            cfg->c2s_port = (int)num;
        } else if (strcmp(k, "direct_tls_port") == 0) {
            cfg->c2s_tls_port = (int)num;
        } else if (strcmp(k, "require_tls") == 0) {
            cfg->require_tls = flag;
        } else if (strcmp(k, "allow_plain") == 0) {
            cfg->allow_plain = flag;
        } else if (strcmp(k, "max_connections") == 0) {
            cfg->max_connections = (unsigned)num;
        } else if (strcmp(k, "auth_timeout_s") == 0) {
            cfg->auth_timeout_s = (unsigned)num;
        } else if (strcmp(k, "idle_release_s") == 0) {
            cfg->idle_release_s = (unsigned)num;
        }
    } else if (strcmp(g, "limits") == 0) {
        if (strcmp(k, "max_stanza_bytes") == 0)
            cfg->max_stanza_bytes = (size_t)num;
        else if (strcmp(k, "max_depth") == 0)
            cfg->max_depth = (unsigned)num;
        else if (strcmp(k, "max_attrs") == 0)
            cfg->max_attrs = (unsigned)num;
        else if (strcmp(k, "max_offline_per_user") == 0)
            cfg->max_offline_per_user = (size_t)num;
        else if (strcmp(k, "max_roster_items") == 0)
            cfg->max_roster_items = (size_t)num;
        else if (strcmp(k, "max_write_buffer_bytes") == 0)
            cfg->max_write_buffer_bytes = (size_t)num;
    } else if (strcmp(g, "store") == 0) {
        cfg->store_map_size_mb = (size_t)num;
    } else if (strcmp(g, "reservation") == 0) {
        if (strcmp(k, "timezone") == 0) {
            if (!datetime_zone_known(str))
                return fail(lc, s, key, "unknown time zone \"%s\" (an IANA name such as \"Asia/Tokyo\", from tzdata)",
                            str);
            set_str(&cfg->timezone, str);
        } else if (strcmp(k, "slot_s") == 0) {
            if (86400 % num != 0)
                return fail(lc, s, key, "must divide a day (86400 s) evenly, e.g. 900, 1800 or 3600");
            cfg->slot_s = num;
        } else if (strcmp(k, "max_duration_s") == 0) {
            cfg->max_duration_s = num;
        } else if (strcmp(k, "max_advance_days") == 0) {
            cfg->max_advance_days = num;
        } else if (strcmp(k, "currency") == 0) {
            if (strlen(str) != 3 || !isupper((unsigned char)str[0]) || !isupper((unsigned char)str[1]) ||
                !isupper((unsigned char)str[2]))
                return fail(lc, s, key, "expected an ISO 4217 code such as \"JPY\" or \"EUR\"");
            set_str(&cfg->currency, str);
        } else if (strcmp(k, "page_url") == 0) {
            if (strncmp(str, "http://", 7) != 0 && strncmp(str, "https://", 8) != 0)
                return fail(lc, s, key, "expected an http:// or https:// URL");
            set_str(&cfg->page_url, str);
        }
    } else if (strcmp(g, "schedule") == 0) {
        if (strcmp(k, "reconfirm_before_s") == 0)
            cfg->reconfirm_before_s = num;
        else if (strcmp(k, "ingest_open_before_s") == 0)
            cfg->ingest_open_before_s = num;
        else if (strcmp(k, "ingest_close_after_s") == 0)
            cfg->ingest_close_after_s = num;
        else if (strcmp(k, "room_open_before_s") == 0)
            cfg->room_open_before_s = num;
        else if (strcmp(k, "room_close_after_s") == 0)
            cfg->room_close_after_s = num;
        else if (strcmp(k, "notice_before_s") == 0)
            cfg->notice_before_s = num;
        else if (strcmp(k, "close_warning_before_s") == 0)
            cfg->close_warning_before_s = num;
    } else if (strcmp(g, "muc") == 0 && strcmp(k, "domain") != 0) {
        if (strcmp(k, "history_max") == 0)
            cfg->muc_history_max = (unsigned)num;
        else if (strcmp(k, "presence_broadcast_limit") == 0)
            cfg->muc_presence_broadcast_limit = (unsigned)num;
        else if (strcmp(k, "rate_per_s") == 0)
            cfg->muc_rate_per_s = (unsigned)num;
        else if (strcmp(k, "rate_burst") == 0)
            cfg->muc_rate_burst = (unsigned)num;
        else if (strcmp(k, "max_message_bytes") == 0)
            cfg->muc_max_message_bytes = (size_t)num;
        else if (strcmp(k, "count_interval_s") == 0)
            cfg->muc_count_interval_s = (unsigned)num;
        else if (strcmp(k, "closed_log_keep_s") == 0)
            cfg->muc_closed_log_keep_s = num;
    } else if (strcmp(g, "media") == 0 && strcmp(k, "domain") != 0) {
        if (strcmp(k, "public_ip") == 0 && str[0] == '\0') {
            set_str(&cfg->media_public_ip, NULL);
        } else if (strcmp(k, "listen") == 0 || strcmp(k, "public_ip") == 0) {
            unsigned char a[16];
            if (inet_pton(AF_INET, str, a) != 1 && inet_pton(AF_INET6, str, a) != 1)
                return fail(lc, s, key, "not an IP address: \"%s\"", str);
            set_str(k[0] == 'l' ? &cfg->media_listen : &cfg->media_public_ip, str);
        } else if (strcmp(k, "port") == 0) {
            cfg->media_port = (int)num;
        } else if (strcmp(k, "bandwidth_headroom_percent") == 0) {
            cfg->media_bandwidth_headroom_percent = (unsigned)num;
        } else if (strcmp(k, "ingest_timeout_s") == 0) {
            cfg->media_ingest_timeout_s = (unsigned)num;
        } else if (strcmp(k, "feedback_per_s") == 0) {
            cfg->media_feedback_per_s = (unsigned)num;
        } else if (strcmp(k, "keyframe_request_interval_ms") == 0) {
            cfg->media_keyframe_request_interval_ms = (unsigned)num;
        } else if (strcmp(k, "keyframe_cache_bytes") == 0) {
            cfg->media_keyframe_cache_bytes = (size_t)num;
        } else if (strcmp(k, "socket_buffer_bytes") == 0) {
            cfg->media_socket_buffer_bytes = (size_t)num;
        } else if (strcmp(k, "token_ttl_s") == 0) {
            cfg->media_token_ttl_s = (unsigned)num;
        } else if (strcmp(k, "websocket_queue_bytes") == 0) {
            cfg->media_websocket_queue_bytes = (size_t)num;
        }
    } else if (strcmp(g, "muc") == 0 || strcmp(g, "media") == 0) {
        char *norm = jid_nameprep(str);
        if (!norm || strchr(norm, '@') || strchr(norm, '/') || !*norm) {
            free(norm);
            return fail(lc, s, key, "not a valid domain name: \"%s\"", str);
        }
        char **slot = g[1] == 'u' ? &cfg->muc_domain : &cfg->media_domain;
        free(*slot);
        *slot = norm;
    } else if (strcmp(g, "adhoc") == 0) {
        cfg->adhoc_session_timeout_s = (unsigned)num;
    } else if (strcmp(g, "plugins") == 0) {
        if (str[0] == '\0')
            return fail(lc, s, key, "must not be empty");
        free(cfg->plugins_dir);
        cfg->plugins_dir = resolve_path(base_dir, str);
    } else if (strcmp(g, "http") == 0) {
        if (strcmp(k, "port") == 0) {
            cfg->http_port = (int)num;
        } else if (strcmp(k, "max_body_bytes") == 0) {
            cfg->http_max_body_bytes = (size_t)num;
        } else if (strcmp(k, "token_ttl_s") == 0) {
            cfg->http_token_ttl_s = (unsigned)num;
        } else if (strcmp(k, "max_connections") == 0) {
            cfg->http_max_connections = (unsigned)num;
        } else if (strcmp(k, "static_dir") == 0) {
            free(cfg->http_static_dir);
            cfg->http_static_dir = str[0] ? resolve_path(base_dir, str) : strdup("");
        } else if (strcmp(k, "tls") == 0) {
            cfg->http_tls = flag;
        } else if (strcmp(k, "loopback_is_secure") == 0) {
            cfg->http_loopback_is_secure = flag;
        } else if (strcmp(k, "public_url") == 0) {
            if (str[0] == '\0') {
                set_str(&cfg->http_public_url, NULL);
                return 0;
            }
            size_t scheme = strncmp(str, "http://", 7) == 0 ? 7 : strncmp(str, "https://", 8) == 0 ? 8 : 0;
            if (!scheme || !str[scheme] || str[scheme] == '/' || strpbrk(str, "?#\"'<> \t\r\n\\"))
                return fail(lc, s, key, "expected an http:// or https:// URL with a host and no query, e.g. "
                                        "\"https://chat.example.com\"");
            set_str(&cfg->http_public_url, str);
        } else if (strcmp(k, "xmpp_websocket_path") == 0) {
            if (str[0] == '\0') {
                set_str(&cfg->http_xmpp_websocket_path, NULL);
                return 0;
            }
            bool ok = str[0] == '/' && strlen(str) <= 256;
            for (const char *c = str; ok && *c; c++)
                ok = isalnum((unsigned char)*c) || strchr("/-._~", *c);
            if (!ok)
                return fail(lc, s, key, "expected a path such as \"/xmpp-websocket\" (letters, digits and / - . _ ~), "
                                        "or \"\" for none");
            set_str(&cfg->http_xmpp_websocket_path, str);
        }
    }
    return 0;
}

/* One channel group of the top-level `channels` list. */
static int load_channel(load_ctx *lc, config *cfg, config_setting_t *grp, size_t index)
{
    char key[160];
    snprintf(key, sizeof key, "channels[%zu]", index);
    if (config_setting_type(grp) != CONFIG_TYPE_GROUP)
        return fail(lc, grp, key, "expected a group { id = ...; name = ...; ... }");
    static const char *const names[] = {"id", "name", "capacity", "bandwidth_kbps", "price_per_hour"};
    config_channel ch = {0};
    ch.line = config_setting_source_line(grp);
    ch.price_per_hour = 0;
    int rc = 0;
    int n = config_setting_length(grp);
    for (int i = 0; i < n && rc == 0; i++) {
        config_setting_t *s = config_setting_get_elem(grp, (unsigned)i);
        const char *name = config_setting_name(s);
        snprintf(key, sizeof key, "channels[%zu].%s", index, name);
        size_t which = 0;
        while (which < 5 && strcmp(names[which], name) != 0)
            which++;
        if (which == 5) {
            rc = fail(lc, s, key, "unknown setting (a channel has id, name, capacity, bandwidth_kbps, price_per_hour)");
        } else if (which < 2) {
            if (config_setting_type(s) != CONFIG_TYPE_STRING)
                rc = fail(lc, s, key, "expected a string");
            else
                set_str(which == 0 ? &ch.id : &ch.name, config_setting_get_string(s));
        } else {
            int type = config_setting_type(s);
            long long v = config_setting_get_int64(s);
            long long max = which == 4 ? 1000000000000LL : 1000000;
            long long min = which == 4 ? 0 : 1;
            if ((type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64) || v < min || v > max)
                rc = fail(lc, s, key, "expected an integer between %lld and %lld", min, max);
            else if (which == 2)
                ch.capacity = v;
            else if (which == 3)
                ch.bandwidth_kbps = v;
            else
                ch.price_per_hour = v;
        }
    }
    if (rc == 0) {
        const char *missing = !ch.id ? "id" : !ch.name ? "name" : !ch.capacity ? "capacity"
                                                      : !ch.bandwidth_kbps ? "bandwidth_kbps" : NULL;
        if (missing) {
            snprintf(key, sizeof key, "channels[%zu].%s", index, missing);
            rc = fail(lc, grp, key, "required");
        }
    }
    for (size_t i = 0; rc == 0 && i < cfg->nchannels; i++) {
        if (strcmp(cfg->channels[i].id, ch.id) == 0) {
            snprintf(key, sizeof key, "channels[%zu].id", index);
            rc = fail(lc, grp, key, "\"%s\" is declared twice", ch.id);
        }
    }
    if (rc == 0) {
        config_channel *arr = realloc(cfg->channels, (cfg->nchannels + 1) * sizeof *arr);
        if (!arr) {
            rc = fail(lc, grp, key, "out of memory");
        } else {
            cfg->channels = arr;
            cfg->channels[cfg->nchannels++] = ch;
            return 0;
        }
    }
    free(ch.id);
    free(ch.name);
    return rc;
}

int config_load(config *cfg, const char *path, char *err, size_t errlen)
{
    load_ctx lc = {path, err, errlen};
    char *abs = realpath(path, NULL);
    if (!abs) {
        snprintf(err, errlen, "%s:0: (file): cannot read: %s", path, strerror(errno));
        return -1;
    }
    char *base_dir = strdup(abs);
    char *slash = strrchr(base_dir, '/');
    if (slash == base_dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';

    config_t cf;
    config_init(&cf);
    int rc = -1;
    if (config_read_file(&cf, abs) != CONFIG_TRUE) {
        snprintf(err, errlen, "%s:%d: (syntax): %s", path, config_error_line(&cf), config_error_text(&cf));
        goto out;
    }
    /* Relative data paths resolve against the config's folder. */
    {
        char *d = resolve_path(base_dir, cfg->data_dir);
        free(cfg->data_dir);
        cfg->data_dir = d;
        char *c = resolve_path(base_dir, cfg->tls_certificate);
        free(cfg->tls_certificate);
        cfg->tls_certificate = c;
        char *k = resolve_path(base_dir, cfg->tls_key);
        free(cfg->tls_key);
        cfg->tls_key = k;
    }

    config_setting_t *root = config_root_setting(&cf);
    int ngroups = config_setting_length(root);
    for (int i = 0; i < ngroups; i++) {
        config_setting_t *grp = config_setting_get_elem(root, (unsigned)i);
        const char *gname = config_setting_name(grp);
        if (strcmp(gname, "channels") == 0) {
            if (config_setting_type(grp) != CONFIG_TYPE_LIST) {
                fail(&lc, grp, gname, "expected a list ( { ... }, { ... } )");
                goto out;
            }
            int nch = config_setting_length(grp);
            if (nch > CONFIG_MAX_CHANNELS) {
                fail(&lc, grp, gname, "at most %d channels", CONFIG_MAX_CHANNELS);
                goto out;
            }
            for (int c = 0; c < nch; c++)
                if (load_channel(&lc, cfg, config_setting_get_elem(grp, (unsigned)c), (size_t)c) != 0)
                    goto out;
            continue;
        }
        if (strcmp(gname, "plugin") == 0) {
            if (load_plugin_groups(&lc, cfg, grp) != 0)
                goto out;
            continue;
        }
        if (!known_group(gname)) {
            fail(&lc, grp, gname,
                 "unknown setting (groups: server, tls, c2s, limits, store, http, adhoc, reservation, schedule, "
                 "muc, media, plugins, plugin; list: channels)");
            goto out;
        }
        if (strcmp(gname, "tls") == 0)
            cfg->tls_certificate_line = cfg->tls_key_line = config_setting_source_line(grp);
        if (config_setting_type(grp) != CONFIG_TYPE_GROUP) {
            fail(&lc, grp, gname, "expected a group { ... }");
            goto out;
        }
        int nkeys = config_setting_length(grp);
        for (int j = 0; j < nkeys; j++) {
            config_setting_t *s = config_setting_get_elem(grp, (unsigned)j);
            const key_spec *spec = find_key(gname, config_setting_name(s));
            if (!spec) {
                char key[128];
                snprintf(key, sizeof key, "%s.%s", gname, config_setting_name(s));
                fail(&lc, s, key, "unknown setting (see specs/config.md)");
                goto out;
            }
            if (apply(&lc, cfg, spec, s, base_dir) != 0)
                goto out;
        }
    }
    if (cfg->guest_domain && strcmp(cfg->guest_domain, cfg->domain) == 0) {
        snprintf(err, errlen, "%s:0: server.guest_domain: must differ from server.domain", path);
        goto out;
    }
    rc = 0;
out:
    if (rc == 0) {
        if (!cfg->admin_socket) {
            size_t n = strlen(cfg->data_dir) + sizeof "/admin.sock";
            cfg->admin_socket = malloc(n);
            snprintf(cfg->admin_socket, n, "%s/admin.sock", cfg->data_dir);
        }
        free(cfg->path);
        cfg->path = abs;
        abs = NULL;
    }
    config_destroy(&cf);
    free(base_dir);
    free(abs);
    return rc;
}

/* config.h - onaird's configuration: one file in libconfig syntax, read into
 * a plain struct.  Every key, its type and default is documented in
 * specs/config.md; an unknown key, a wrong type or a bad value is an error
 * that names the file, line and key.  Relative paths are resolved against the
 * directory of the configuration file.
 */
#ifndef ONAIR_CONFIG_H
#define ONAIR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"

#define CONFIG_MAX_LISTEN 8
#define CONFIG_MAX_CHANNELS 1000
#define CONFIG_MAX_PLUGINS 16
#define CONFIG_PLUGIN_NAME_MAX 32

/* A plugin named in plugins.load. */
typedef struct config_plugin_name {
    char name[CONFIG_PLUGIN_NAME_MAX + 1];
    int line;
} config_plugin_name;

/* One setting of a plugin's own group plugin.<name>, as written: the
 * loader checks it against the keys the plugin declares. */
typedef enum config_value_kind {
    CONFIG_VALUE_STRING = 0,
    CONFIG_VALUE_INT,
    CONFIG_VALUE_BOOL,
    CONFIG_VALUE_OTHER /* a float, list, array or group: no plugin key has that type */
} config_value_kind;

typedef struct config_plugin_value {
    char *key; /* owned */
    config_value_kind kind;
    char *str; /* owned; CONFIG_VALUE_STRING */
    long long num; /* CONFIG_VALUE_INT; CONFIG_VALUE_BOOL as 0/1 */
    int line;
} config_plugin_value;

typedef struct config_plugin_group {
    char *name; /* owned: the plugin's name */
    config_plugin_value *values; /* owned array */
    size_t nvalues;
    int line;
} config_plugin_group;

/* A channel declared in the file (entered in the store at start-up). */
typedef struct config_channel {
    char *id;   /* owned */
    char *name; /* owned */
    long long capacity, bandwidth_kbps, price_per_hour;
    int line;   /* where it was declared */
} config_channel;

typedef struct config {
    /* server */
    char *domain;       /* owned; normalised */
    char *guest_domain; /* owned; NULL when anonymous logins are disabled */
    char *data_dir;     /* owned; absolute */
    char *admin_socket; /* owned; absolute; default <data_dir>/admin.sock */
    log_level log_level;

    /* tls */
    char *tls_certificate; /* owned; absolute */
    char *tls_key;         /* owned; absolute */
    bool tls_generate;     /* create a self-signed pair at those paths if missing */
    int tls_certificate_line; /* where the keys were set, for error messages (0 = default) */
    int tls_key_line;

    /* c2s */
    char *listen[CONFIG_MAX_LISTEN]; /* owned addresses */
    size_t nlisten;
    int c2s_port;        /* 0 = off */
    int c2s_tls_port;    /* direct TLS (XEP-0368); 0 = off */
    bool require_tls;    /* TLS before authentication */
    bool allow_plain;    /* SASL PLAIN (only ever over TLS) */
    unsigned max_connections;
    unsigned auth_timeout_s;
    unsigned idle_release_s; /* free an idle stream's parser memory after this long without input */

    /* limits */
    size_t max_stanza_bytes;
    unsigned max_depth;
    unsigned max_attrs;
    size_t max_offline_per_user;
    size_t max_roster_items;
    size_t max_write_buffer_bytes;

    /* store */
    size_t store_map_size_mb;

    /* reservation */
    char *timezone;       /* owned; IANA name */
    long long slot_s;     /* granularity of slots */
    long long max_duration_s;
    long long max_advance_days;
    char *currency;       /* owned */
    char *page_url;       /* owned; base URL of live pages (ID appended) */

    /* schedule */
    long long reconfirm_before_s;
    long long ingest_open_before_s;
    long long ingest_close_after_s;
    long long room_open_before_s;     /* a reconfirmed live's room opens this long before the start */
    long long room_close_after_s;     /* and closes this long after the end */
    long long notice_before_s;        /* "starts soon" notice this long before the start; 0 = none */
    long long close_warning_before_s; /* warning this long before the room closes; 0 = none */

    /* muc, media: service hosts (owned; NULL = "live." / "media." + domain) */
    char *muc_domain;
    char *media_domain;
    /* muc: the chat rooms (specs/muc.md) */
    unsigned muc_history_max;            /* messages sent to late joiners at most */
    unsigned muc_presence_broadcast_limit; /* occupants above which presence broadcast is restricted */
    unsigned muc_rate_per_s;             /* per-occupant stanza rate ... */
    unsigned muc_rate_burst;             /* ... with this burst */
    size_t muc_max_message_bytes;        /* bytes of one message body */
    unsigned muc_count_interval_s;       /* restricted rooms: occupant count at most this often */
    int64_t muc_closed_log_keep_s;       /* a closed room's log is removed this long after; 0 = kept */
    /* media: the live stream (specs/media.md) */
    char *media_listen;                  /* owned: address of the UDP socket */
    int media_port;                      /* its port; 0 = any free one */
    char *media_public_ip;               /* owned: address announced to clients; NULL = media_listen */
    unsigned media_bandwidth_headroom_percent; /* ingest policed above the channel's bandwidth plus this */
    unsigned media_ingest_timeout_s;     /* a live with no authenticated packet this long ends */
    unsigned media_feedback_per_s;       /* NACKs forwarded to a broadcaster per second per content */
    unsigned media_keyframe_request_interval_ms; /* PLI/FIR forwarded at most this often per content */
    size_t media_keyframe_cache_bytes;   /* the kept keyframe group, at most */
    size_t media_socket_buffer_bytes;    /* SO_RCVBUF / SO_SNDBUF of the UDP socket */
    unsigned media_token_ttl_s;          /* a media WebSocket token unused this long expires */
    size_t media_websocket_queue_bytes;  /* a media WebSocket viewer further behind drops to the next keyframe */

    config_channel *channels; /* owned array */
    size_t nchannels;
    /* adhoc (XEP-0050 commands) */
    unsigned adhoc_session_timeout_s; /* a command session unused this long expires */
    /* http */
    char *http_listen[CONFIG_MAX_LISTEN]; /* owned addresses */
    size_t http_nlisten;
    int http_port;                  /* 0 = off */
    size_t http_max_body_bytes;     /* request bodies; larger ones get 413 */
    unsigned http_token_ttl_s;      /* lifetime of a login token */
    unsigned http_max_connections;  /* open HTTP connections at once */
    char *http_static_dir;          /* owned; absolute; NULL = the default (web_static.h); "" = no pages */
    bool http_tls;                  /* HTTPS (and wss://) with the server's certificate */
    bool http_loopback_is_secure;   /* WebSocket streams from a loopback peer count as encrypted */
    char *http_public_url;          /* owned; base URL clients reach the listener at; NULL = from the Host header */
    char *http_xmpp_websocket_path; /* owned; path of XMPP over WebSocket; NULL = off */

    /* plugins */
    char *plugins_dir; /* owned; absolute; NULL = the default (core/plugin.h) */
    config_plugin_name plugins_load[CONFIG_MAX_PLUGINS]; /* in load order */
    size_t nplugins_load;
    config_plugin_group *plugin_groups; /* owned array: the plugin group's subgroups */
    size_t nplugin_groups;

    char *path; /* owned; absolute path of the file read */
} config;

/* Fills cfg with the defaults (owned strings; config_free releases them). */
void config_defaults(config *cfg);
/* Reads path over the defaults.  Returns 0, or -1 with a one-line message
 * "<file>:<line>: <key>: <problem>" in err. */
int config_load(config *cfg, const char *path, char *err, size_t errlen);
void config_free(config *cfg);
void config_plugin_groups_free(config_plugin_group *groups, size_t n);
/* The settings group of plugin `name`, or NULL when the file has none. */
const config_plugin_group *config_plugin_group_find(const config *cfg, const char *name);
/* The folder of the running program when it is a build tree (the folder
 * holds CMakeCache.txt): where the defaults of plugins.dir and
 * http.static_dir point then.  Writes it to out and returns true, or
 * returns false for an installed program. */
bool config_build_tree(char *out, size_t cap);
/* The default folder of something the build makes: "<build tree>/<sub>"
 * when onaird runs from a build tree, else `installed`.  Caller frees;
 * NULL when out of memory. */
char *config_default_dir(const char *sub, const char *installed);
/* [a-z0-9_], 1 to CONFIG_PLUGIN_NAME_MAX characters. */
bool config_plugin_name_valid(const char *name);

#endif

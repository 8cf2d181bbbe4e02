/* reservation_service.c - wires reservation.c into the server
 * (reservation_service.h): the policy comes from the configuration, changes
 * leave as server events and schedule entries, and the deadline timer
 * cancels what was not reconfirmed in time.
 */
#include "reservation_service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datetime.h"
#include "event.h"
#include "reservation.h"
#include "schedule.h"
#include "server.h"

static void on_event(void *ud, int type, const reservation *r)
{
    server *srv = ud;
    char a[DATETIME_MAX];
    /* Never a password in the log: ID, owner, channel, start and state only. */
    log_write(&srv->log, LOG_INFO, "reservation", "%s: %s by %s on %s at %s%s%s", event_name((event_type)type), r->id,
              r->owner, r->channel, datetime_format(r->start, a), r->cancel_reason[0] ? ", reason: " : "",
              r->cancel_reason);
    event_fire(srv, &srv->events, (event_type)type, r);
}

static void on_scheduled(void *ud, int64_t when_ms)
{
    schedule_changed(ud, when_ms);
}

static void on_deadline(void *ud, server *srv, schedule_kind kind, const char *id, int64_t due_ms)
{
    (void)ud;
    (void)kind;
    (void)due_ms;
    int rc = reservation_expire(&srv->res, id, schedule_now_ms() / 1000);
    if (rc < 0)
        log_write(&srv->log, LOG_ERROR, "reservation", "deadline of %s: the store failed (%d)", id, rc);
}

const char *reservation_service_muc_domain(const server *srv)
{
    return srv->muc_domain;
}

const char *reservation_service_media_domain(const server *srv)
{
    return srv->media_domain;
}

static void apply_policy(server *srv, const config *cfg)
{
    res_policy *p = &srv->res.policy;
    p->slot_s = cfg->slot_s;
    p->max_duration_s = cfg->max_duration_s;
    p->max_advance_s = cfg->max_advance_days * 86400;
    p->reconfirm_before_s = cfg->reconfirm_before_s;
    p->ingest_open_before_s = cfg->ingest_open_before_s;
    p->ingest_close_after_s = cfg->ingest_close_after_s;
    p->room_open_before_s = cfg->room_open_before_s;
}

/* Enters the channels of cfg in the store (creating or updating them). */
static int sync_channels(server *srv, const config *cfg, char *err, size_t errlen)
{
    for (size_t i = 0; i < cfg->nchannels; i++) {
        const config_channel *cc = &cfg->channels[i];
        channel ch = {0};
        res_error e;
        if (strlen(cc->id) > CHANNEL_ID_MAX || strlen(cc->name) >= sizeof ch.name) {
            snprintf(err, errlen, "%s:%d: channels[%zu]: id or name too long", cfg->path, cc->line, i);
            return -1;
        }
        snprintf(ch.id, sizeof ch.id, "%s", cc->id);
        snprintf(ch.name, sizeof ch.name, "%s", cc->name);
        ch.capacity = (uint32_t)cc->capacity;
        ch.bandwidth_kbps = (uint32_t)cc->bandwidth_kbps;
        ch.price_per_hour = (uint64_t)cc->price_per_hour;
        if (channel_put(&srv->res, &ch, &e) != RES_OK) {
            snprintf(err, errlen, "%s:%d: channels[%zu].%s: %s", cfg->path, cc->line, i, e.field, e.message);
            return -1;
        }
    }
    return 0;
}

static char *derive_domain(const char *configured, const char *prefix, const char *domain)
{
    if (configured)
        return strdup(configured);
    size_t n = strlen(prefix) + strlen(domain) + 1;
    char *d = malloc(n);
    if (d)
        snprintf(d, n, "%s%s", prefix, domain);
    return d;
}

int reservation_service_start(server *srv, char *err, size_t errlen)
{
    const config *cfg = &srv->cfg;
    if (datetime_set_zone(cfg->timezone) != 0) {
        snprintf(err, errlen, "%s:0: reservation.timezone: unknown time zone \"%s\" (an IANA name such as "
                 "\"Asia/Tokyo\", from the tzdata package)", cfg->path, cfg->timezone);
        return -1;
    }
    srv->muc_domain = derive_domain(cfg->muc_domain, "live.", cfg->domain);
    srv->media_domain = derive_domain(cfg->media_domain, "media.", cfg->domain);
    secret_key key;
    char kerr[512];
    if (!srv->muc_domain || !srv->media_domain ||
        secret_key_load(&key, cfg->data_dir, 1, kerr, sizeof kerr) != 0) {
        snprintf(err, errlen, "%s:0: server.data_dir: cannot read or create the sealing key: %s", cfg->path, kerr);
        return -1;
    }
    res_policy policy = {0};
    policy.currency = cfg->currency;
    policy.room_domain = srv->muc_domain;
    policy.media_domain = srv->media_domain;
    policy.page_url = cfg->page_url;
    res_hooks hooks = {on_event, on_scheduled, srv};
    reservations_init(&srv->res, srv->store, &key, &policy, &hooks);
    secret_key_wipe(&key);
    apply_policy(srv, cfg);
    srv->res_started = true;
    if (sync_channels(srv, cfg, err, errlen) != 0)
        return -1;
    schedule_handle(&srv->schedule, SCHEDULE_RECONFIRM_DEADLINE, on_deadline, NULL);
    if (schedule_start(srv) != 0) {
        snprintf(err, errlen, "cannot start the schedule timer");
        return -1;
    }
    return 0;
}

void reservation_service_reload(server *srv, const config *next)
{
    srv->cfg.slot_s = next->slot_s;
    srv->cfg.max_duration_s = next->max_duration_s;
    srv->cfg.max_advance_days = next->max_advance_days;
    srv->cfg.reconfirm_before_s = next->reconfirm_before_s;
    srv->cfg.ingest_open_before_s = next->ingest_open_before_s;
    srv->cfg.ingest_close_after_s = next->ingest_close_after_s;
    srv->cfg.room_open_before_s = next->room_open_before_s;
    srv->cfg.room_close_after_s = next->room_close_after_s;
    srv->cfg.notice_before_s = next->notice_before_s;
    srv->cfg.close_warning_before_s = next->close_warning_before_s;
    apply_policy(srv, &srv->cfg);
    char err[512];
    if (sync_channels(srv, next, err, sizeof err) != 0)
        log_write(&srv->log, LOG_ERROR, "reservation", "reload: %s", err);
    if (strcmp(next->timezone, srv->cfg.timezone) != 0 || strcmp(next->currency, srv->cfg.currency) != 0 ||
        strcmp(next->page_url, srv->cfg.page_url) != 0)
        log_write(&srv->log, LOG_WARN, "reservation",
                  "reload: reservation.timezone, currency and page_url change only on restart");
}

void reservation_service_stop(server *srv)
{
    schedule_stop(srv);
}

/* probe.c - a test-only plugin for the host functions of plugin ABI 1.1
 * (fd_watch / fd_unwatch, reservation_read, account_email, services),
 * driven by IQ gets in urn:onair:test:probe:
 *
 *   <query><op>abi</op></query>            -> <abi>1.N</abi>
 *   <op>fd</op>      a socket pair: watch for reading, write a byte, read it
 *                    in the callback, change the watch to writing, unwatch
 *                    in that callback; answers later <fd>read,write,unwatched</fd>
 *                    (after checking the refusals: fd -1, no events, unknown
 *                    bits, /dev/null, unwatching what is not watched)
 *   <op>keep</op>    watches one end of a socket pair and keeps it: shutdown
 *                    closes the other end without unwatching, so the watched
 *                    end turns readable -- the host must have removed the
 *                    watch (the callback aborts if it runs after shutdown)
 *   <op>reservation</op><id>ID</id>  -> reservation_read's view
 *   <op>email</op><user>U</user>    -> account_email
 *   <op>service</op> provide/lookup checks with its own "probe.echo"
 *   <op>mail</op><to/>|<account/><subject/><body/>[<name/><attachment/><rid/>]
 *                    -> the "mail" service's send; <rc>N</rc>
 *
 * It includes only <onair/plugin.h> and standard and POSIX headers.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <onair/plugin.h>

#define NS "urn:onair:test:probe"
#define BIG 65536

typedef struct echo_service {
    size_t size;
    int (*twice)(void *ud, int x);
} echo_service;

typedef struct probe {
    onair_host *h;
    const onair_host_api *api;
    int fd[2];        /* the <fd/> pair, -1 when none */
    char *to, *id;    /* the pending <fd/> request */
    int keep[2];      /* the <keep/> pair */
    bool shut;
    echo_service echo;
    int echo_calls;
} probe;

static char *sdup(const char *s)
{
    size_t n = strlen(s ? s : "") + 1;
    char *d = malloc(n);
    return d ? memcpy(d, s ? s : "", n) : NULL;
}

static void answer_later(probe *p, const char *payload)
{
    char to[1024], id[512], xml[2048];
    p->api->xml_escape(p->to, to, sizeof to);
    p->api->xml_escape(p->id, id, sizeof id);
    snprintf(xml, sizeof xml, "<iq type='result' to='%s' id='%s'><query xmlns='" NS "'>%s</query></iq>", to, id,
             payload);
    p->api->send_xml(p->h, xml);
    free(p->to);
    free(p->id);
    p->to = p->id = NULL;
}

/* ---- fd ---- */

static void on_writable(void *ud, int fd, int ready)
{
    probe *p = ud;
    if (!(ready & ONAIR_FD_WRITE) || fd != p->fd[0])
        return;
    int a = p->api->fd_unwatch(p->h, fd);
    int b = p->api->fd_unwatch(p->h, fd);
    close(p->fd[0]);
    close(p->fd[1]);
    p->fd[0] = p->fd[1] = -1;
    char out[128];
    if (a == ONAIR_OK && b == ONAIR_E_NOTFOUND)
        snprintf(out, sizeof out, "<fd>read,write,unwatched</fd>");
    else
        snprintf(out, sizeof out, "<fd>unwatch %d then %d</fd>", a, b);
    answer_later(p, out);
}

static void on_readable(void *ud, int fd, int ready)
{
    probe *p = ud;
    char c;
    if (!(ready & ONAIR_FD_READ) || read(fd, &c, 1) != 1 || c != 'x')
        return;
    /* The same fd again: its events and callback change. */
    int rc = p->api->fd_watch(p->h, fd, ONAIR_FD_WRITE, on_writable, p);
    if (rc != ONAIR_OK) {
        char out[64];
        snprintf(out, sizeof out, "<fd>rewatch %d</fd>", rc);
        p->api->fd_unwatch(p->h, fd);
        answer_later(p, out);
    }
}

static const char *fd_start(probe *p)
{
    static char why[96];
    int devnull = open("/dev/null", O_RDONLY);
    int bad[5] = {
        p->api->fd_watch(p->h, -1, ONAIR_FD_READ, on_readable, p),
        p->api->fd_watch(p->h, 0, 0, on_readable, p),
        p->api->fd_watch(p->h, 0, 8, on_readable, p),
        p->api->fd_watch(p->h, devnull, ONAIR_FD_READ, on_readable, p),
        p->api->fd_unwatch(p->h, devnull),
    };
    close(devnull);
    if (bad[0] != ONAIR_E_INVALID || bad[1] != ONAIR_E_INVALID || bad[2] != ONAIR_E_INVALID ||
        bad[3] != ONAIR_E_INVALID || bad[4] != ONAIR_E_NOTFOUND) {
        snprintf(why, sizeof why, "refusals %d %d %d %d %d", bad[0], bad[1], bad[2], bad[3], bad[4]);
        return why;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, p->fd) != 0)
        return "socketpair failed";
    int rc = p->api->fd_watch(p->h, p->fd[0], ONAIR_FD_READ, on_readable, p);
    if (rc != ONAIR_OK) {
        snprintf(why, sizeof why, "watch %d", rc);
        return why;
    }
    if (write(p->fd[1], "x", 1) != 1)
        return "write failed";
    return NULL;
}

static void on_keep(void *ud, int fd, int ready)
{
    probe *p = ud;
    if (p->shut)
        abort(); /* the host called a watch of an unloaded plugin */
    char buf[16];
    if (ready & ONAIR_FD_READ)
        (void)!read(fd, buf, sizeof buf);
}

/* ---- reservation, e-mail, services ---- */

typedef struct res_view {
    probe *p;
    char out[4096];
} res_view;

static void on_reservation(void *ud, const onair_reservation_event *r, const onair_reservation_settings *s)
{
    res_view *v = ud;
    const onair_host_api *api = v->p->api;
    char title[512], page[1024], room[512], pw[512];
    api->xml_escape(r->title, title, sizeof title);
    api->xml_escape(s ? s->page_url : "", page, sizeof page);
    api->xml_escape(s ? s->room_jid : "", room, sizeof room);
    api->xml_escape(s ? s->shared_password : "", pw, sizeof pw);
    snprintf(v->out, sizeof v->out,
             "<state>%s</state><title>%s</title><owner>%s</owner><settings>%s</settings><page>%s</page>"
             "<room>%s</room><password>%s</password>",
             r->state, title, r->owner, s ? "yes" : "no", page, room, pw);
}

static int echo_twice(void *ud, int x)
{
    probe *p = ud;
    p->echo_calls++;
    return 2 * x;
}

static const char *service_checks(probe *p)
{
    static char why[128];
    void *ud = NULL;
    const echo_service *e = p->api->service_lookup(p->h, "probe.echo", &ud);
    if (!e || ud != p || e->size != sizeof *e || e->twice(ud, 21) != 42 || p->echo_calls == 0)
        return "lookup of probe.echo";
    if (p->api->service_lookup(p->h, "no.such.service", &ud) != NULL || ud != NULL)
        return "lookup of an unknown service";
    int a = p->api->service_provide(p->h, "probe.echo", &p->echo, p);
    int b = p->api->service_provide(p->h, "Bad Name", &p->echo, p);
    int c = p->api->service_provide(p->h, "probe.null", NULL, p);
    if (a != ONAIR_E_EXISTS || b != ONAIR_E_INVALID || c != ONAIR_E_INVALID) {
        snprintf(why, sizeof why, "provide refusals %d %d %d", a, b, c);
        return why;
    }
    return NULL;
}

/* The text of query/<name>, malloc'd, or NULL when absent. */
static char *child(probe *p, const onair_stanza *iq, const char *name)
{
    char path[64];
    snprintf(path, sizeof path, "query/%s", name);
    char *buf = malloc(BIG);
    if (!buf)
        return NULL;
    if (p->api->stanza_child_text(iq, path, NS, buf, BIG) < 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

static int on_iq(void *ud, const onair_stanza *iq)
{
    probe *p = ud;
    const onair_host_api *api = p->api;
    char *op = child(p, iq, "op");
    char out[8192];
    out[0] = '\0';
    const char *fail = NULL;
    if (!op) {
        fail = "no op";
    } else if (strcmp(op, "abi") == 0) {
        snprintf(out, sizeof out, "<abi>%d.%d</abi>", api->abi, api->abi_minor);
    } else if (strcmp(op, "fd") == 0) {
        if (p->to) {
            fail = "busy";
        } else if (!(fail = fd_start(p))) {
            p->to = sdup(api->stanza_attr(iq, "from"));
            p->id = sdup(api->stanza_attr(iq, "id"));
            free(op);
            return ONAIR_IQ_HANDLED; /* answered from the callbacks */
        }
    } else if (strcmp(op, "keep") == 0) {
        if (p->keep[0] >= 0) {
            fail = "already";
        } else if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, p->keep) != 0) {
            fail = "socketpair failed";
        } else {
            int rc = api->fd_watch(p->h, p->keep[0], ONAIR_FD_READ, on_keep, p);
            snprintf(out, sizeof out, "<keep>%d</keep>", rc);
        }
    } else if (strcmp(op, "reservation") == 0) {
        char *id = child(p, iq, "id");
        res_view v = {.p = p};
        int rc = api->reservation_read(p->h, id ? id : "", on_reservation, &v);
        snprintf(out, sizeof out, "<rc>%d</rc>%s", rc, v.out);
        free(id);
    } else if (strcmp(op, "email") == 0) {
        char *user = child(p, iq, "user");
        char mail[512], esc[1024];
        long n = api->account_email(p->h, user ? user : "", mail, sizeof mail);
        api->xml_escape(mail, esc, sizeof esc);
        snprintf(out, sizeof out, "<len>%ld</len><email>%s</email>", n, esc);
        free(user);
    } else if (strcmp(op, "service") == 0) {
        fail = service_checks(p);
        if (!fail)
            snprintf(out, sizeof out, "<service>ok</service>");
    } else if (strcmp(op, "mail") == 0) {
        void *sud = NULL;
        const onair_mail_service *svc = api->service_lookup(p->h, ONAIR_SERVICE_MAIL, &sud);
        if (!svc || svc->size < sizeof *svc || !svc->send) {
            snprintf(out, sizeof out, "<rc>none</rc>");
        } else {
            char *to = child(p, iq, "to"), *account = child(p, iq, "account"), *subject = child(p, iq, "subject"),
                 *body = child(p, iq, "body"), *name = child(p, iq, "name"), *att = child(p, iq, "attachment"),
                 *rid = child(p, iq, "rid");
            onair_mail m = {.to = to, .to_account = account, .subject = subject, .body = body,
                            .attachment_name = name, .attachment = att, .reservation_id = rid};
            snprintf(out, sizeof out, "<rc>%d</rc>", svc->send(sud, &m));
            free(to);
            free(account);
            free(subject);
            free(body);
            free(name);
            free(att);
            free(rid);
        }
    } else {
        fail = "unknown op";
    }
    free(op);
    if (fail) {
        api->iq_error(p->h, iq, "modify", "bad-request", fail);
        return ONAIR_IQ_HANDLED;
    }
    char *payload = malloc(strlen(out) + 64);
    if (payload) {
        sprintf(payload, "<query xmlns='" NS "'>%s</query>", out);
        api->iq_result(p->h, iq, payload);
        free(payload);
    }
    return ONAIR_IQ_HANDLED;
}

static int init(onair_host *h, const onair_host_api *api, void **state)
{
    if (!ONAIR_HOST_HAS(api, service_lookup)) {
        api->log(h, ONAIR_LOG_ERROR, "needs plugin ABI 1.1");
        return -1;
    }
    probe *p = calloc(1, sizeof *p);
    if (!p)
        return -1;
    p->h = h;
    p->api = api;
    p->fd[0] = p->fd[1] = p->keep[0] = p->keep[1] = -1;
    p->echo = (echo_service){.size = sizeof p->echo, .twice = echo_twice};
    int rc = api->iq_register(h, NS, on_iq, p);
    if (rc == ONAIR_OK)
        rc = api->service_provide(h, "probe.echo", &p->echo, p);
    if (rc != ONAIR_OK) {
        free(p);
        return -1;
    }
    api->log(h, ONAIR_LOG_INFO, "ready (ABI %d.%d)", api->abi, api->abi_minor);
    *state = p;
    return 0;
}

static void shutdown_probe(void *state)
{
    probe *p = state;
    if (p->fd[0] >= 0) {
        p->api->fd_unwatch(p->h, p->fd[0]);
        close(p->fd[0]);
        close(p->fd[1]);
    }
    if (p->keep[0] >= 0) {
        /* Left watched on purpose: the host removes the watch after this
         * returns.  The peer's end closes now, which makes the watched end
         * readable; keep[0] itself stays open (a test plugin's small leak)
         * because a watched fd must not be closed. */
        p->shut = true;
        close(p->keep[1]);
        p->api->log(p->h, ONAIR_LOG_INFO, "shutting down with fd %d still watched", p->keep[0]);
    }
    free(p->to);
    free(p->id);
    free(p);
}

static const onair_plugin_info info = {
    .abi = ONAIR_PLUGIN_ABI,
    .name = "probe",
    .version = "1.0",
    .description = "tests the host functions of plugin ABI 1.1",
    .init = init,
    .shutdown = shutdown_probe,
};

ONAIR_PLUGIN_EXPORT const onair_plugin_info *onair_plugin_entry(void)
{
    return &info;
}

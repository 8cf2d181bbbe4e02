/* onairctl.c - the operator's tool: account add/passwd/del/list, bulk-add
 * and health; channels; reservations (list, show, cancel); chat rooms and
 * their logs (read from the store).  While onaird runs it talks to the admin socket (protocol in
 * admin.h); when nothing listens there it opens the LMDB store at
 * data_dir itself (LMDB lets both processes share it).  bulk-add always
 * writes the store directly, ~500 accounts per write transaction.
 *
 * Exit status: 0 ok, 1 the operation failed, 2 usage or configuration
 * error, 3 `health` found no running server.  Passwords come from the
 * command line or one line of stdin (not echoed on a terminal); they are
 * never printed and are wiped from memory after use.
 */
#include <errno.h>
#include <gsasl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "account.h"
#include "config.h"
#include "datetime.h"
#include "jid.h"
#include "muc_log.h"
#include "reservation.h"
#include "store.h"

#define CTL_PASSWORD_MAX 1023
#define CTL_BULK_CHUNK 500
#define CTL_BULK_MAX 10000000UL
#define CTL_REPLY_TIMEOUT_S 60

enum { CTL_OK = 0, CTL_FAIL = 1, CTL_USAGE = 2, CTL_NOT_RUNNING = 3 };

static void ctl_usage(FILE *out)
{
    fputs("usage: onairctl -c FILE account add USER [PASSWORD]\n"
          "       onairctl -c FILE account passwd USER [PASSWORD]\n"
          "       onairctl -c FILE account del USER\n"
          "       onairctl -c FILE account list\n"
          "       onairctl -c FILE account bulk-add PREFIX COUNT [PASSWORD]\n"
          "       onairctl -c FILE account email USER ADDRESS\n"
          "       onairctl -c FILE channel add ID NAME CAPACITY BANDWIDTH_KBPS PRICE_PER_HOUR\n"
          "       onairctl -c FILE channel del ID\n"
          "       onairctl -c FILE channel list\n"
          "       onairctl -c FILE reservation list [USER]\n"
          "       onairctl -c FILE reservation show ID\n"
          "       onairctl -c FILE reservation cancel ID\n"
          "       onairctl -c FILE room list\n"
          "       onairctl -c FILE room log ID\n"
          "       onairctl -c FILE health\n"
          "USER is a local part or user@domain (of the configured domain).\n"
          "Without PASSWORD one line is read from standard input.\n",
          out);
}

/* ---- arguments ---------------------------------------------------------- */

/* The account's local part from USER (bare or user@domain); caller frees.
 * NULL (with a message printed) if invalid. */
static char *ctl_user(const config *cfg, const char *arg)
{
    char *user = NULL;
    if (strchr(arg, '@') || strchr(arg, '/')) {
        jid j;
        if (jid_parse(arg, &j) != 0 || !j.node || j.resource) {
            jid_clear(&j);
            fprintf(stderr, "onairctl: invalid user: %s\n", arg);
            return NULL;
        }
        char *dom = jid_nameprep(cfg->domain);
        if (!dom || strcmp(dom, j.domain) != 0)
            fprintf(stderr, "onairctl: %s is not in the configured domain %s\n", arg, cfg->domain);
        else
            user = j.node, j.node = NULL;
        free(dom);
        jid_clear(&j);
        return user;
    }
    user = jid_nodeprep(arg);
    if (!user)
        fprintf(stderr, "onairctl: invalid user name: %s\n", arg);
    return user;
}

/* Reads one line of stdin into buf, without echo on a terminal.  Returns 0,
 * or -1 (message printed). */
static int ctl_read_password(char *buf, size_t cap)
{
    bool tty = isatty(STDIN_FILENO);
    struct termios old, quiet;
    if (tty && tcgetattr(STDIN_FILENO, &old) == 0) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        quiet.c_lflag |= ECHONL;
        fputs("Password: ", stderr);
        fflush(stderr);
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    } else {
        tty = false;
    }
    bool ok = fgets(buf, (int)cap, stdin) != NULL;
    if (tty)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    if (!ok) {
        fputs("onairctl: no password given\n", stderr);
        return -1;
    }
    size_t n = strlen(buf);
    if (n > 0 && buf[n - 1] != '\n' && !feof(stdin)) {
        explicit_bzero(buf, cap);
        fprintf(stderr, "onairctl: password longer than %d bytes\n", CTL_PASSWORD_MAX);
        return -1;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    return 0;
}

/* Fills buf with the password from argv (arg non-NULL) or stdin and checks
 * it.  Returns 0 or -1 (message printed). */
static int ctl_password(const char *arg, char *buf, size_t cap)
{
    if (arg) {
        if (strlen(arg) >= cap) {
            fprintf(stderr, "onairctl: password longer than %d bytes\n", CTL_PASSWORD_MAX);
            return -1;
        }
        strcpy(buf, arg);
    } else if (ctl_read_password(buf, cap) != 0) {
        return -1;
    }
    if (buf[0] == '\0') {
        fputs("onairctl: empty password\n", stderr);
        return -1;
    }
    if (strpbrk(buf, "\t\r\n")) {
        explicit_bzero(buf, cap);
        fputs("onairctl: a password may not contain tab, CR or LF\n", stderr);
        return -1;
    }
    char *prepped = NULL;
    int rc = gsasl_saslprep(buf, GSASL_ALLOW_UNASSIGNED, &prepped, NULL);
    if (prepped) {
        explicit_bzero(prepped, strlen(prepped));
        free(prepped);
    }
    if (rc != GSASL_OK) {
        explicit_bzero(buf, cap);
        fputs("onairctl: password refused by SASLprep (RFC 4013)\n", stderr);
        return -1;
    }
    return 0;
}

/* ---- admin socket ------------------------------------------------------- */

/* Connects to the admin socket.  Returns the fd, -2 when no server listens
 * there (refused, missing, or a path no server could bind), or -1 on
 * another error (message printed). */
static int ctl_connect(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (!path || strlen(path) >= sizeof sa.sun_path)
        return -2;
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "onairctl: socket: %s\n", strerror(errno));
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        int e = errno;
        close(fd);
        if (e == ECONNREFUSED || e == ENOENT)
            return -2;
        fprintf(stderr, "onairctl: %s: %s\n", path, strerror(e));
        return -1;
    }
    struct timeval tv = {.tv_sec = CTL_REPLY_TIMEOUT_S};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
}

static int ctl_write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

typedef void (*ctl_data_fn)(const char *fields);

/* Sends one request (fields joined by TAB) and reads the reply: each
 * "data\t..." line goes to on_data (the text after "data\t"), then "ok" gives
 * CTL_OK and "error\t<message>" prints the message and gives CTL_FAIL. */
static int ctl_request(int fd, const char *const *fields, size_t nfields, ctl_data_fn on_data)
{
    size_t len = 1;
    for (size_t i = 0; i < nfields; i++)
        len += strlen(fields[i]) + 1;
    char *req = malloc(len);
    if (!req) {
        fputs("onairctl: out of memory\n", stderr);
        return CTL_FAIL;
    }
    char *p = req;
    for (size_t i = 0; i < nfields; i++) {
        size_t n = strlen(fields[i]);
        memcpy(p, fields[i], n);
        p += n;
        *p++ = i + 1 < nfields ? '\t' : '\n';
    }
    int wrc = ctl_write_all(fd, req, (size_t)(p - req));
    explicit_bzero(req, len); /* may hold a password */
    free(req);
    if (wrc != 0) {
        fprintf(stderr, "onairctl: sending to the server: %s\n", strerror(errno));
        return CTL_FAIL;
    }

    FILE *in = fdopen(dup(fd), "r");
    if (!in) {
        fprintf(stderr, "onairctl: %s\n", strerror(errno));
        return CTL_FAIL;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = -1;
    errno = 0;
    while (rc < 0 && (n = getline(&line, &cap, in)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (strncmp(line, "data\t", 5) == 0) {
            if (on_data)
                on_data(line + 5);
        } else if (strcmp(line, "ok") == 0) {
            rc = CTL_OK;
        } else if (strncmp(line, "error\t", 6) == 0) {
            fprintf(stderr, "%s\n", line + 6);
            rc = CTL_FAIL;
        } else if (strcmp(line, "error") == 0) {
            fputs("onairctl: the server reported an error\n", stderr);
            rc = CTL_FAIL;
        }
    }
    if (rc < 0) {
        fprintf(stderr, "onairctl: the server closed the connection without an answer%s%s\n", errno ? ": " : "",
                errno ? strerror(errno) : "");
        rc = CTL_FAIL;
    }
    free(line);
    fclose(in);
    return rc;
}

static void ctl_print_user(const char *fields)
{
    printf("%s\n", fields);
}

static void ctl_print_health(const char *fields)
{
    const char *tab = strchr(fields, '\t');
    if (tab)
        printf("%.*s: %s\n", (int)(tab - fields), fields, tab + 1);
    else
        printf("%s\n", fields);
}

/* ---- direct store access ------------------------------------------------ */

static store *ctl_store_open(const config *cfg, bool readonly)
{
    store *s = NULL;
    char err[512];
    if (store_open(&s, cfg->data_dir, cfg->store_map_size_mb, readonly, err, sizeof err) != STORE_OK) {
        fprintf(stderr, "onairctl: cannot open the store: %s\n", err);
        return NULL;
    }
    return s;
}

/* Prints the outcome of an account operation on the store. */
static int ctl_store_result(store *s, int rc, const char *user, const char *done)
{
    switch (rc) {
    case STORE_OK:
        printf("account %s %s\n", user, done);
        return CTL_OK;
    case STORE_EXISTS:
        fprintf(stderr, "account exists: %s\n", user);
        return CTL_FAIL;
    case STORE_NOTFOUND:
        fprintf(stderr, "no such account: %s\n", user);
        return CTL_FAIL;
    case STORE_FULL:
        fprintf(stderr, "onairctl: the store is full (store.map_size_mb)\n");
        return CTL_FAIL;
    default:
        fprintf(stderr, "onairctl: store error: %s\n", store_last_error(s));
        return CTL_FAIL;
    }
}

static int ctl_list_one(void *ud, const char *user)
{
    printf("%s\n", user);
    return 0;
}

/* Creates PREFIX1..PREFIXcount with one set of secrets (they share the
 * password, so they share the salt too: the key derivation runs once
 * instead of per account), CTL_BULK_CHUNK accounts per transaction.
 * Existing accounts are left as they are. */
static int ctl_bulk_add(const config *cfg, const char *prefix, unsigned long count, const char *password)
{
    account_secrets sec;
    if (account_secrets_derive(password, 0, &sec) != STORE_OK) {
        fputs("onairctl: cannot derive the password's secrets\n", stderr);
        return CTL_FAIL;
    }
    store *s = ctl_store_open(cfg, false);
    if (!s) {
        explicit_bzero(&sec, sizeof sec);
        return CTL_FAIL;
    }
    unsigned long created = 0, existing = 0;
    int ret = CTL_OK;
    char name[CTL_PASSWORD_MAX + 32];
    for (unsigned long next = 1; next <= count && ret == CTL_OK;) {
        store_txn *t;
        int rc = store_txn_begin(s, true, &t);
        unsigned long made = 0, seen = 0;
        for (unsigned long i = 0; rc == STORE_OK && i < CTL_BULK_CHUNK && next + i <= count; i++) {
            snprintf(name, sizeof name, "%s%lu", prefix, next + i);
            rc = account_create_txn(t, name, &sec);
            if (rc == STORE_EXISTS)
                rc = STORE_OK, seen++;
            else if (rc == STORE_OK)
                made++;
        }
        if (t && rc == STORE_OK)
            rc = store_txn_commit(t);
        else if (t)
            store_txn_abort(t);
        if (rc != STORE_OK) {
            ctl_store_result(s, rc, name, "");
            ret = CTL_FAIL;
            break;
        }
        created += made;
        existing += seen;
        next += made + seen;
    }
    explicit_bzero(&sec, sizeof sec);
    store_close(s);
    if (ret == CTL_OK)
        printf("%lu accounts created, %lu already existed (%s1..%s%lu)\n", created, existing, prefix, prefix, count);
    else if (created)
        printf("%lu accounts created before the error\n", created);
    return ret;
}

/* ---- commands ----------------------------------------------------------- */

typedef enum ctl_op { OP_ADD, OP_PASSWD, OP_DEL, OP_LIST, OP_BULK, OP_HEALTH } ctl_op;

/* Runs one operation: through the server when it listens, else on the
 * store.  user/password may be NULL when the operation takes none. */
static int ctl_run(const config *cfg, ctl_op op, const char *user, const char *password)
{
    int fd = ctl_connect(cfg->admin_socket);
    if (fd == -1)
        return CTL_FAIL;
    if (fd >= 0) {
        int rc;
        switch (op) {
        case OP_ADD:
            rc = ctl_request(fd, (const char *[]){"account-add", user, password}, 3, NULL);
            if (rc == CTL_OK)
                printf("account %s created\n", user);
            break;
        case OP_PASSWD:
            rc = ctl_request(fd, (const char *[]){"account-passwd", user, password}, 3, NULL);
            if (rc == CTL_OK)
                printf("password of %s changed\n", user);
            break;
        case OP_DEL:
            rc = ctl_request(fd, (const char *[]){"account-del", user}, 2, NULL);
            if (rc == CTL_OK)
                printf("account %s deleted\n", user);
            break;
        case OP_LIST:
            rc = ctl_request(fd, (const char *[]){"account-list"}, 1, ctl_print_user);
            break;
        default:
            printf("server: running\n");
            rc = ctl_request(fd, (const char *[]){"health"}, 1, ctl_print_health);
            break;
        }
        close(fd);
        return rc;
    }

    if (op == OP_HEALTH) {
        printf("server: not running\n");
        return CTL_NOT_RUNNING;
    }
    store *s = ctl_store_open(cfg, op == OP_LIST);
    if (!s)
        return CTL_FAIL;
    int rc;
    switch (op) {
    case OP_ADD:
        rc = ctl_store_result(s, account_create(s, user, password, 0), user, "created");
        break;
    case OP_PASSWD:
        rc = account_set_password(s, user, password, 0);
        if (rc == STORE_OK)
            printf("password of %s changed\n", user);
        else
            ctl_store_result(s, rc, user, "");
        rc = rc == STORE_OK ? CTL_OK : CTL_FAIL;
        break;
    case OP_DEL:
        rc = ctl_store_result(s, account_delete(s, user), user, "deleted");
        break;
    default:
        rc = account_list(s, ctl_list_one, NULL) == STORE_OK ? CTL_OK : CTL_FAIL;
        if (rc != CTL_OK)
            fprintf(stderr, "onairctl: store error: %s\n", store_last_error(s));
        break;
    }
    store_close(s);
    return rc;
}


/* ---- channels and reservations ------------------------------------------ */

/* Opens the reservation rules over the store (read-only for listings).
 * Channels and reservations are read and written in the store directly,
 * also while the server runs (LMDB serialises the writers of both
 * processes); only an operator's cancellation goes through the server when
 * it runs, so that the server raises its event. */
static store *ctl_booking_open(const config *cfg, bool readonly, reservations *rs)
{
    if (datetime_set_zone(cfg->timezone) != 0) {
        fprintf(stderr, "onairctl: unknown time zone %s (reservation.timezone)\n", cfg->timezone);
        return NULL;
    }
    store *s = ctl_store_open(cfg, readonly);
    if (!s)
        return NULL;
    secret_key key;
    char err[512];
    if (secret_key_load(&key, cfg->data_dir, !readonly, err, sizeof err) != 0) {
        /* A store that never ran onaird has no key yet: listings still work. */
        memset(&key, 0, sizeof key);
    }
    res_policy policy = {.slot_s = cfg->slot_s,
                         .max_duration_s = cfg->max_duration_s,
                         .max_advance_s = cfg->max_advance_days * 86400,
                         .reconfirm_before_s = cfg->reconfirm_before_s,
                         .ingest_open_before_s = cfg->ingest_open_before_s,
                         .ingest_close_after_s = cfg->ingest_close_after_s,
                         .currency = cfg->currency,
                         .room_domain = "",
                         .media_domain = "",
                         .page_url = cfg->page_url};
    reservations_init(rs, s, &key, &policy, NULL);
    secret_key_wipe(&key);
    return s;
}

static int ctl_print_channel(void *ud, const channel *ch)
{
    (void)ud;
    printf("%s\t%s\tcapacity %u\t%u kbps\t%llu per hour\n", ch->id, ch->name, ch->capacity, ch->bandwidth_kbps,
           (unsigned long long)ch->price_per_hour);
    return 0;
}

static int ctl_print_reservation(void *ud, const reservation *r)
{
    const char *only = ud;
    if (only && strcmp(only, r->owner) != 0)
        return 0;
    char a[DATETIME_MAX], b[DATETIME_MAX];
    printf("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r->id, r->owner, r->channel, datetime_format(r->start, a),
           datetime_format(r->end, b), res_state_name(reservation_state_at(r, (int64_t)time(NULL))),
           res_level_name(r->level), r->title);
    return 0;
}

static bool ctl_number(const char *arg, const char *what, unsigned long long max, unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(arg, &end, 10);
    if (errno || *end || !*arg || arg[0] == '-' || v > max) {
        fprintf(stderr, "onairctl: %s must be a number from 0 to %llu\n", what, max);
        return false;
    }
    *out = v;
    return true;
}

/* Prints the outcome of a channel or reservation change: "<what> <id> <done>",
 * or the rule's message. */
static int ctl_res_done(int rc, const res_error *e, const char *what, const char *id, const char *done)
{
    if (rc == RES_OK) {
        printf("%s %s %s\n", what, id, done);
        return CTL_OK;
    }
    fprintf(stderr, "onairctl: %s\n", e->message);
    return CTL_FAIL;
}

static int ctl_channel(const config *cfg, const char *sub, char **args, int nargs)
{
    reservations rs;
    bool readonly = strcmp(sub, "list") == 0;
    store *s = ctl_booking_open(cfg, readonly, &rs);
    if (!s)
        return CTL_FAIL;
    int rc = CTL_OK;
    res_error e = {0};
    if (strcmp(sub, "list") == 0 && nargs == 0) {
        rc = channel_list(&rs, ctl_print_channel, NULL) == RES_OK ? CTL_OK : CTL_FAIL;
    } else if (strcmp(sub, "add") == 0 && nargs == 5) {
        channel ch = {0};
        unsigned long long cap, bw, price;
        if (strlen(args[0]) >= sizeof ch.id || strlen(args[1]) >= sizeof ch.name) {
            fprintf(stderr, "onairctl: ID or NAME too long\n");
            rc = CTL_USAGE;
        } else if (!ctl_number(args[2], "CAPACITY", UINT32_MAX, &cap) ||
                   !ctl_number(args[3], "BANDWIDTH_KBPS", UINT32_MAX, &bw) ||
                   !ctl_number(args[4], "PRICE_PER_HOUR", UINT64_MAX, &price)) {
            rc = CTL_USAGE;
        } else {
            snprintf(ch.id, sizeof ch.id, "%s", args[0]);
            snprintf(ch.name, sizeof ch.name, "%s", args[1]);
            ch.capacity = (uint32_t)cap;
            ch.bandwidth_kbps = (uint32_t)bw;
            ch.price_per_hour = price;
            rc = ctl_res_done(channel_put(&rs, &ch, &e), &e, "channel", ch.id, "saved");
        }
    } else if (strcmp(sub, "del") == 0 && nargs == 1) {
        rc = ctl_res_done(channel_delete(&rs, args[0], (int64_t)time(NULL), &e), &e, "channel", args[0], "deleted");
    } else {
        ctl_usage(stderr);
        rc = CTL_USAGE;
    }
    reservations_free(&rs);
    store_close(s);
    return rc;
}

static int ctl_reservation(const config *cfg, const char *sub, char **args, int nargs)
{
    if (strcmp(sub, "cancel") == 0 && nargs == 1) {
        int fd = ctl_connect(cfg->admin_socket);
        if (fd == -1)
            return CTL_FAIL;
        if (fd >= 0) {
            int rc = ctl_request(fd, (const char *[]){"reservation-cancel", args[0]}, 2, NULL);
            close(fd);
            if (rc == CTL_OK)
                printf("reservation %s cancelled\n", args[0]);
            return rc;
        }
    }
    reservations rs;
    bool readonly = strcmp(sub, "cancel") != 0;
    store *s = ctl_booking_open(cfg, readonly, &rs);
    if (!s)
        return CTL_FAIL;
    int rc = CTL_OK;
    res_error e = {0};
    reservation r;
    if (strcmp(sub, "list") == 0 && nargs <= 1) {
        char *owner = nargs == 1 ? ctl_user(cfg, args[0]) : NULL;
        if (nargs == 1 && !owner)
            rc = CTL_USAGE;
        else
            rc = reservation_list_all(&rs, ctl_print_reservation, owner) == RES_OK ? CTL_OK : CTL_FAIL;
        free(owner);
    } else if (strcmp(sub, "show") == 0 && nargs == 1) {
        if (reservation_get(&rs, args[0], &r) != RES_OK) {
            fprintf(stderr, "onairctl: no such reservation: %s\n", args[0]);
            rc = CTL_FAIL;
        } else {
            char a[DATETIME_MAX], b[DATETIME_MAX], c[DATETIME_MAX];
            printf("id\t%s\nowner\t%s\nemail\t%s\nchannel\t%s\nstart\t%s\nend\t%s\n"
                   "reconfirm_by\t%s\nstate\t%s\nlevel\t%s\ntitle\t%s\ngenre\t%s\nsummary\t%s\n"
                   "bandwidth_kbps\t%u\ncapacity\t%u\nfee\t%llu %s\nviewers\t%llu\n",
                   r.id, r.owner, r.email, r.channel, datetime_format(r.start, a), datetime_format(r.end, b),
                   datetime_format(r.deadline, c), res_state_name(reservation_state_at(&r, (int64_t)time(NULL))),
                   res_level_name(r.level), r.title, r.genre, r.summary, r.bandwidth_kbps, r.capacity,
                   (unsigned long long)r.fee, cfg->currency, (unsigned long long)r.viewers);
            if (r.cancel_reason[0])
                printf("cancelled_by\t%s\n", r.cancel_reason);
            reservation_clear(&r);
        }
    } else if (strcmp(sub, "cancel") == 0 && nargs == 1) {
        rc = ctl_res_done(reservation_cancel(&rs, NULL, args[0], (int64_t)time(NULL), &r, &e), &e, "reservation",
                          args[0], "cancelled");
        reservation_clear(&r);
    } else {
        ctl_usage(stderr);
        rc = CTL_USAGE;
    }
    reservations_free(&rs);
    store_close(s);
    return rc;
}

/* ---- chat rooms ---------------------------------------------------------- */

/* A text on one line: control characters as \n, \t, \xNN; backslash doubled. */
static void ctl_print_line(const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '\n')
            fputs("\\n", stdout);
        else if (ch == '\t')
            fputs("\\t", stdout);
        else if (ch == '\\')
            fputs("\\\\", stdout);
        else if (ch < 0x20 || ch == 0x7f)
            printf("\\x%02x", ch);
        else
            putchar(ch);
    }
}

typedef struct ctl_room_ctx {
    store_txn *t;
} ctl_room_ctx;

static int ctl_print_room(void *ud, const muc_room_record *r)
{
    ctl_room_ctx *c = ud;
    uint64_t last = 0;
    muc_log_last_seq(c->t, r->id, &last);
    char a[DATETIME_MAX], b[DATETIME_MAX], n[48];
    if (r->log_removed_ms)
        snprintf(n, sizeof n, "log removed %s", datetime_format(r->log_removed_ms / 1000, b));
    else
        snprintf(n, sizeof n, "%llu messages", (unsigned long long)last);
    printf("%s\t%s\tcloses %s\t%s%s%s\n", r->id, r->state == MUC_ROOM_OPEN ? "open" : "closed",
           datetime_format(r->close_at, a), n, r->close_reason[0] ? "\t" : "", r->close_reason);
    return 0;
}

static int ctl_print_log(void *ud, const muc_log_entry *e)
{
    (void)ud;
    char a[DATETIME_MAX];
    printf("#%llu\t%s\t", (unsigned long long)e->seq, datetime_format(e->time_ms / 1000, a));
    if (e->notice) {
        fputs("(notice)\t-\t", stdout);
    } else {
        ctl_print_line(e->nick);
        printf("\t%s\t", e->jid);
    }
    ctl_print_line(e->body);
    putchar('\n');
    return 0;
}

/* Rooms and their logs, read from the store (also while the server runs). */
static int ctl_room(const config *cfg, const char *sub, char **args, int nargs)
{
    bool list = strcmp(sub, "list") == 0 && nargs == 0;
    bool log = strcmp(sub, "log") == 0 && nargs == 1;
    if (!list && !log) {
        ctl_usage(stderr);
        return CTL_USAGE;
    }
    if (datetime_set_zone(cfg->timezone) != 0) {
        fprintf(stderr, "onairctl: unknown time zone %s (reservation.timezone)\n", cfg->timezone);
        return CTL_FAIL;
    }
    store *s = ctl_store_open(cfg, true);
    if (!s)
        return CTL_FAIL;
    store_txn *t;
    int rc = store_txn_begin(s, false, &t);
    if (rc == STORE_OK) {
        if (list) {
            ctl_room_ctx c = {t};
            rc = muc_room_record_list(t, ctl_print_room, &c);
            if (rc == STORE_NOTFOUND)
                rc = STORE_OK; /* no room yet */
        } else {
            muc_room_record r;
            rc = muc_room_record_get(t, args[0], &r);
            if (rc == STORE_OK && r.log_removed_ms) {
                char a[DATETIME_MAX];
                fprintf(stderr, "onairctl: the log of room %s was removed at %s (muc.closed_log_keep_s after it closed)\n",
                        args[0], datetime_format(r.log_removed_ms / 1000, a));
                muc_room_record_clear(&r);
                rc = STORE_NOTFOUND;
            } else if (rc == STORE_OK) {
                muc_room_record_clear(&r);
                rc = muc_log_read(t, args[0], 1, ctl_print_log, NULL);
            } else if (rc == STORE_NOTFOUND) {
                fprintf(stderr, "onairctl: no such room: %s\n", args[0]);
            }
        }
        store_txn_abort(t);
    }
    if (rc != STORE_OK && rc != STORE_NOTFOUND)
        fprintf(stderr, "onairctl: store error (%d): %s\n", rc, store_last_error(s));
    store_close(s);
    return rc == STORE_OK ? CTL_OK : CTL_FAIL;
}

static int ctl_account_email(const config *cfg, const char *arg_user, const char *address)
{
    char *user = ctl_user(cfg, arg_user);
    if (!user)
        return CTL_USAGE;
    store *s = ctl_store_open(cfg, false);
    int rc = CTL_FAIL;
    if (s) {
        int src = account_set_email(s, user, address);
        if (src == STORE_OK) {
            printf("e-mail of %s %s\n", user, *address ? "set" : "removed");
            rc = CTL_OK;
        } else {
            ctl_store_result(s, src, user, "");
        }
        store_close(s);
    }
    free(user);
    return rc;
}

int main(int argc, char **argv)
{
    const char *cfg_path = NULL;
    int i = 1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            ctl_usage(stdout);
            return CTL_OK;
        }
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
            cfg_path = argv[++i];
        else
            break;
    }
    if (!cfg_path || i >= argc) {
        ctl_usage(stderr);
        return CTL_USAGE;
    }
    const char *cmd = argv[i++];
    const char *sub = NULL;
    if ((strcmp(cmd, "channel") == 0 || strcmp(cmd, "reservation") == 0 || strcmp(cmd, "room") == 0 ||
         (strcmp(cmd, "account") == 0 && i < argc && strcmp(argv[i], "email") == 0)) &&
        i < argc) {
        sub = argv[i++];
        config cfg;
        char err[1024];
        config_defaults(&cfg);
        if (config_load(&cfg, cfg_path, err, sizeof err) != 0) {
            fprintf(stderr, "onairctl: %s\n", err);
            config_free(&cfg);
            return CTL_USAGE;
        }
        int rc;
        if (cmd[0] == 'c')
            rc = ctl_channel(&cfg, sub, argv + i, argc - i);
        else if (strcmp(cmd, "room") == 0)
            rc = ctl_room(&cfg, sub, argv + i, argc - i);
        else if (cmd[0] == 'r')
            rc = ctl_reservation(&cfg, sub, argv + i, argc - i);
        else if (argc - i == 2)
            rc = ctl_account_email(&cfg, argv[i], argv[i + 1]);
        else {
            ctl_usage(stderr);
            rc = CTL_USAGE;
        }
        config_free(&cfg);
        return rc;
    }
    int nargs;
    ctl_op op;
    if (strcmp(cmd, "health") == 0) {
        op = OP_HEALTH;
        nargs = argc - i;
        if (nargs != 0) {
            ctl_usage(stderr);
            return CTL_USAGE;
        }
    } else if (strcmp(cmd, "account") == 0 && i < argc) {
        sub = argv[i++];
        nargs = argc - i;
        if (strcmp(sub, "add") == 0 && (nargs == 1 || nargs == 2))
            op = OP_ADD;
        else if (strcmp(sub, "passwd") == 0 && (nargs == 1 || nargs == 2))
            op = OP_PASSWD;
        else if (strcmp(sub, "del") == 0 && nargs == 1)
            op = OP_DEL;
        else if (strcmp(sub, "list") == 0 && nargs == 0)
            op = OP_LIST;
        else if (strcmp(sub, "bulk-add") == 0 && (nargs == 2 || nargs == 3))
            op = OP_BULK;
        else {
            ctl_usage(stderr);
            return CTL_USAGE;
        }
    } else {
        ctl_usage(stderr);
        return CTL_USAGE;
    }
    char **args = argv + i;

    config cfg;
    char err[1024];
    config_defaults(&cfg);
    if (config_load(&cfg, cfg_path, err, sizeof err) != 0) {
        fprintf(stderr, "onairctl: %s\n", err);
        config_free(&cfg);
        return CTL_USAGE;
    }

    int rc = CTL_USAGE;
    char *user = NULL;
    char password[CTL_PASSWORD_MAX + 2];
    password[0] = '\0';
    if (op == OP_BULK) {
        char *end;
        errno = 0;
        unsigned long count = strtoul(args[1], &end, 10);
        if (errno || *end || args[1][0] == '-' || count == 0 || count > CTL_BULK_MAX) {
            fprintf(stderr, "onairctl: COUNT must be a number from 1 to %lu\n", CTL_BULK_MAX);
        } else if (!(user = jid_nodeprep(args[0])) || strcmp(user, args[0]) != 0) {
            fprintf(stderr, "onairctl: PREFIX must be a valid, normalised (lower-case) user name: %s\n", args[0]);
        } else if (ctl_password(nargs == 3 ? args[2] : NULL, password, sizeof password) == 0) {
            rc = ctl_bulk_add(&cfg, user, count, password);
        }
    } else if (op == OP_ADD || op == OP_PASSWD || op == OP_DEL) {
        if ((user = ctl_user(&cfg, args[0])) != NULL &&
            (op == OP_DEL || ctl_password(nargs == 2 ? args[1] : NULL, password, sizeof password) == 0))
            rc = ctl_run(&cfg, op, user, op == OP_DEL ? NULL : password);
    } else {
        rc = ctl_run(&cfg, op, NULL, NULL);
    }
    explicit_bzero(password, sizeof password);
    free(user);
    config_free(&cfg);
    return rc;
}

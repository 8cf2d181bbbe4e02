/* booking.c - onair-cast's account commands over the server's ad-hoc
 * commands: availability, book (the two stages of specs/reservation.md:
 * the request shown back with its fee, then completed or cancelled),
 * reconfirm, settings, cancel, list ("my-channel"), schedule, and the
 * transcript plugin's transcripts / transcript (specs/transcript.md).
 *
 * The client checks nothing the server checks: a bad value comes back as the
 * server's "<field>: <reason>", printed with the option that gives it.
 * Results go to stdout as "field: value" lines or tables; the server's notes
 * go to stderr when there is a result to read.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cast.h"
#include "prompt.h"

/* Field names of the booking form and the options that give them. */
static const char *const book_options[] = {
    "channel", "--channel", "start", "--start", "end", "--end", "level", "--level", "title", "--title",
    "genre", "--genre", "summary", "--summary", "detail", "--detail", "show_email", "--show-email",
    "show_url", "--show-url", "url", "--url", "friends", "--friend",
    "broadcast_password", "--broadcast-password-file", "shared_password", "--shared-password-file",
    "transcript", "--transcript", "transcript_notices", "--transcript-notices", "id", "ID", "date", "DATE",
    "format", "--format", NULL};

/* The end of a request that completes at once: prints the result, or the
 * refusal; returns the exit code. */
static int finish(const char *cmd, int rc, adhoc_answer *a, FILE *result_out)
{
    if (rc != EXIT_OK)
        return rc;
    if (a->is_error)
        return cast_refused(cmd, &a->error, book_options);
    if (strcmp(a->status, "completed") != 0) {
        fprintf(stderr, PROG " %s: the command did not complete (status '%s')\n", cmd, a->status);
        return EXIT_PROTOCOL;
    }
    if (a->form) {
        if (result_out)
            form_print(result_out, a->form);
        adhoc_print_notes(stderr, a);
    } else {
        adhoc_print_notes(stdout, a);
    }
    return EXIT_OK;
}

/* Logs in, runs node once with the optional form, prints, logs out. */
static int run_once(const char *cmd, const char *node, client_options *o, const form *submit)
{
    client *c;
    int rc = cast_login(o, &c);
    if (rc != EXIT_OK)
        return rc;
    adhoc_answer a;
    rc = adhoc_execute(c, node, NULL, NULL, submit, &a, PROG);
    rc = finish(cmd, rc, &a, stdout);
    adhoc_answer_clear(&a);
    cast_logout(c);
    return rc;
}

static int no_extra_option(int opt, const char *arg, void *ud)
{
    (void)opt;
    (void)arg;
    (void)ud;
    return EXIT_USAGE;
}

/* ---- commands taking a reservation ID ---- */

static int by_id(int argc, char **argv, client_options *o, const cast_command *self, const char *node)
{
    int first;
    int rc = cast_parse(argc, argv, NULL, 0, NULL, o, self, no_extra_option, NULL, &first);
    if (rc != EXIT_OK)
        return rc < 0 ? EXIT_OK : rc;
    if (argc - first != 1) {
        fprintf(stderr, PROG " %s: give one reservation ID ('" PROG " %s --help')\n", self->name, self->name);
        return EXIT_USAGE;
    }
    form *f = form_new("submit");
    if (!f || !form_set(f, "id", argv[first])) {
        form_free(f);
        return EXIT_USAGE;
    }
    rc = run_once(self->name, node, o, f);
    form_free(f);
    return rc;
}

static void reconfirm_help(FILE *out)
{
    fputs("usage: " PROG " reconfirm [options] ID\n\n"
          "Reconfirms the reservation ID (needed before the deadline given when booking, or it is\n"
          "cancelled) and prints the live's settings: slot, ingest window and endpoint, chat room,\n"
          "web page, bandwidth, title, level, friends and the shared password.\n",
          out);
}

static void settings_help(FILE *out)
{
    fputs("usage: " PROG " settings [options] ID\n\n"
          "Prints the settings of a reconfirmed reservation again.\n",
          out);
}

static void cancel_help(FILE *out)
{
    fputs("usage: " PROG " cancel [options] ID\n\n"
          "Cancels the reservation ID (before its live starts).\n",
          out);
}


/* ---- list, schedule, availability, transcripts ---- */

static void list_help(FILE *out)
{
    fputs("usage: " PROG " list [options]\n\n"
          "\"My channel\": your reservations with their state (awaiting_reconfirmation,\n"
          "reconfirmed, live, done, cancelled), fee and past viewer counts.\n",
          out);
}

static void schedule_help(FILE *out)
{
    fputs("usage: " PROG " schedule [options]\n\n"
          "The upcoming public and password-protected lives.\n",
          out);
}

static void availability_help(FILE *out)
{
    fputs("usage: " PROG " availability [options] [DATE]\n\n"
          "Every channel's slots on DATE (YYYY-MM-DD in the server's time zone; default today):\n"
          "free, booked or closed.\n",
          out);
}

static void transcripts_help(FILE *out)
{
    fputs("usage: " PROG " transcripts [options]\n\n"
          "The transcripts kept of your past lives' chat rooms: reservation ID, title, and when\n"
          "the room closed with how many messages.\n",
          out);
}

static int plain_run(int argc, char **argv, client_options *o, const cast_command *self, const char *node,
                     int max_args, const char *var)
{
    int first;
    int rc = cast_parse(argc, argv, NULL, 0, NULL, o, self, no_extra_option, NULL, &first);
    if (rc != EXIT_OK)
        return rc < 0 ? EXIT_OK : rc;
    if (argc - first > max_args) {
        fprintf(stderr, PROG " %s: unexpected argument '%s'\n", self->name, argv[first + max_args]);
        return EXIT_USAGE;
    }
    form *f = NULL;
    if (argc - first == 1 && var && (!(f = form_new("submit")) || !form_set(f, var, argv[first]))) {
        form_free(f);
        return EXIT_USAGE;
    }
    rc = run_once(self->name, node, o, f);
    form_free(f);
    return rc;
}


static int transcripts_run(const cast_command *self, int argc, char **argv, client_options *o)
{
    int first;
    int rc = cast_parse(argc, argv, NULL, 0, NULL, o, self, no_extra_option, NULL, &first);
    if (rc != EXIT_OK)
        return rc < 0 ? EXIT_OK : rc;
    if (argc > first) {
        fprintf(stderr, PROG " transcripts: unexpected argument '%s'\n", argv[first]);
        return EXIT_USAGE;
    }
    client *c;
    if ((rc = cast_login(o, &c)) != EXIT_OK)
        return rc;
    adhoc_answer a;
    rc = adhoc_execute(c, "transcripts", NULL, NULL, NULL, &a, PROG);
    rc = finish(self->name, rc, &a, NULL);
    /* one field per transcript: var = reservation ID, label = title */
    for (size_t i = 0; rc == EXIT_OK && a.form && i < a.form->nfields; i++) {
        const form_field *fl = &a.form->fields[i];
        if (!fl->var || strcmp(fl->var, "FORM_TYPE") == 0)
            continue;
        printf("%s  %s  %s\n", fl->var, fl->label ? fl->label : "", fl->nvalues ? fl->values[0] : "");
    }
    adhoc_answer_clear(&a);
    cast_logout(c);
    return rc;
}

/* ---- transcript ---- */

typedef struct transcript_opts {
    const char *format;
    const char *output;
} transcript_opts;

static void transcript_help(FILE *out)
{
    fputs("usage: " PROG " transcript [options] ID\n\n"
          "Fetches the transcript of the chat room of your live ID (after its room closed).\n\n"
          "  --format text|json    text (the default: one line per message, times relative to the\n"
          "                        start) or JSON\n"
          "  -o, --output FILE     write it to FILE instead of stdout\n",
          out);
}

static int transcript_option(int opt, const char *arg, void *ud)
{
    transcript_opts *t = ud;
    if (opt == 'f')
        t->format = arg;
    else if (opt == 'o')
        t->output = arg;
    else
        return EXIT_USAGE;
    return EXIT_OK;
}

static int transcript_run(const cast_command *self, int argc, char **argv, client_options *o)
{
    static const struct option extra[] = {{"format", required_argument, NULL, 'f'},
                                          {"output", required_argument, NULL, 'o'}};
    transcript_opts t = {"text", NULL};
    int first;
    int rc = cast_parse(argc, argv, extra, 2, "o:", o, self, transcript_option, &t, &first);
    if (rc != EXIT_OK)
        return rc < 0 ? EXIT_OK : rc;
    if (argc - first != 1) {
        fputs(PROG " transcript: give one reservation ID ('" PROG " transcript --help')\n", stderr);
        return EXIT_USAGE;
    }
    client *c;
    if ((rc = cast_login(o, &c)) != EXIT_OK)
        return rc;
    /* stage one: the form; stage two: the ID and format */
    adhoc_answer a;
    rc = adhoc_execute(c, "transcript", NULL, NULL, NULL, &a, PROG);
    if (rc == EXIT_OK && a.is_error)
        rc = cast_refused(self->name, &a.error, book_options);
    if (rc == EXIT_OK && (strcmp(a.status, "executing") != 0 || !a.sessionid)) {
        fprintf(stderr, PROG " transcript: the server did not ask for the reservation ID\n");
        rc = EXIT_PROTOCOL;
    }
    form *f = NULL;
    if (rc == EXIT_OK) {
        f = form_new("submit");
        if (!f || !form_set(f, "id", argv[first]) || !form_set(f, "format", t.format))
            rc = EXIT_USAGE;
    }
    adhoc_answer b = {0};
    if (rc == EXIT_OK) {
        rc = adhoc_execute(c, "transcript", a.sessionid, "complete", f, &b, PROG);
        rc = finish(self->name, rc, &b, NULL);
    }
    if (rc == EXIT_OK && !form_get(b.form, "transcript")) {
        fputs(PROG " transcript: the answer has no transcript\n", stderr);
        rc = EXIT_PROTOCOL;
    }
    if (rc == EXIT_OK) {
        FILE *out = t.output ? fopen(t.output, "w") : stdout;
        if (!out) {
            fprintf(stderr, PROG " transcript: cannot write %s: %s\n", t.output, strerror(errno));
            rc = EXIT_USAGE;
        } else {
            const form_field *fl = form_get(b.form, "transcript");
            for (size_t i = 0; i < fl->nvalues; i++)
                fprintf(out, "%s\n", fl->values[i]);
            if ((t.output && fclose(out) != 0) || (!t.output && fflush(out) != 0)) {
                fprintf(stderr, PROG " transcript: cannot write %s\n", t.output ? t.output : "stdout");
                rc = EXIT_USAGE;
            }
        }
    }
    form_free(f);
    adhoc_answer_clear(&a);
    adhoc_answer_clear(&b);
    cast_logout(c);
    return rc;
}

/* ---- book ---- */

typedef struct book_opts {
    form *f;
    const char *level;
    const char *broadcast_file, *shared_file;
    char *friends; /* one address a line */
    bool yes, quote;
    bool failed;
} book_opts;

static void book_help(FILE *out)
{
    fputs("usage: " PROG " book [options]\n\n"
          "Books a live in two stages: the request is sent and shown back with its fee, your\n"
          "e-mail address and the reconfirmation deadline; then you accept (it is booked and its\n"
          "reservation ID printed as 'id: ...') or decline (nothing is stored).\n\n"
          "  --channel ID          the channel (see 'availability')\n"
          "  --start TIME          RFC 3339, e.g. 2026-12-24T20:00:00Z or 2026-12-24T20:00:00+09:00\n"
          "  --end TIME            likewise; start and end on the server's slot boundaries\n"
          "  --level LEVEL         public (anyone watches), password (the shared password opens\n"
          "                        stream and chat) or secret (like password, and never listed)\n"
          "  --title TEXT          at most 100 characters\n"
          "  --genre TEXT, --summary TEXT (at most 20 characters), --detail TEXT (at most 200)\n"
          "  --show-email, --show-url, --url URL   show your e-mail / home page with the live\n"
          "  --friend ADDRESS      a friend to notify on reconfirmation (e-mail or XMPP address;\n"
          "                        repeat for several)\n"
          "  --transcript all|live|addressed|default   the part of the chat you receive afterwards\n"
          "  --transcript-notices true|false|default   with the room's notices or not\n"
          "  --broadcast-password-file FILE   the password you will go live with (first line;\n"
          "                        else ONAIR_BROADCAST_PASSWORD, else asked on the terminal)\n"
          "  --shared-password-file FILE      the viewers' password for password and secret lives\n"
          "                        (else ONAIR_SHARED_PASSWORD, else asked)\n"
          "  -y, --yes             accept the fee without asking\n"
          "  --quote               show the fee only, and book nothing\n",
          out);
}

enum {
    OPT_CHANNEL = 300, OPT_START, OPT_END, OPT_LEVEL, OPT_TITLE, OPT_GENRE, OPT_SUMMARY, OPT_DETAIL,
    OPT_SHOW_EMAIL, OPT_SHOW_URL, OPT_URL, OPT_FRIEND, OPT_TRANSCRIPT, OPT_NOTICES, OPT_BCAST_FILE,
    OPT_SHARED_FILE, OPT_QUOTE
};

static bool append_line(char **acc, const char *line)
{
    size_t old = *acc ? strlen(*acc) : 0;
    char *n = realloc(*acc, old + strlen(line) + 2);
    if (!n)
        return false;
    if (old)
        n[old++] = '\n';
    strcpy(n + old, line);
    *acc = n;
    return true;
}

static int book_option(int opt, const char *arg, void *ud)
{
    book_opts *b = ud;
    static const struct {
        int opt;
        const char *var;
    } plain[] = {{OPT_CHANNEL, "channel"}, {OPT_START, "start"},     {OPT_END, "end"},
                 {OPT_LEVEL, "level"},     {OPT_TITLE, "title"},     {OPT_GENRE, "genre"},
                 {OPT_SUMMARY, "summary"}, {OPT_DETAIL, "detail"},   {OPT_URL, "url"},
                 {OPT_TRANSCRIPT, "transcript"}, {OPT_NOTICES, "transcript_notices"}};
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
        if (plain[i].opt == opt) {
            if (opt == OPT_LEVEL)
                b->level = arg;
            return form_set(b->f, plain[i].var, arg) ? EXIT_OK : EXIT_USAGE;
        }
    switch (opt) {
    case OPT_SHOW_EMAIL:
        return form_set(b->f, "show_email", "true") ? EXIT_OK : EXIT_USAGE;
    case OPT_SHOW_URL:
        return form_set(b->f, "show_url", "true") ? EXIT_OK : EXIT_USAGE;
    case OPT_FRIEND:
        return append_line(&b->friends, arg) ? EXIT_OK : EXIT_USAGE;
    case OPT_BCAST_FILE:
        b->broadcast_file = arg;
        return EXIT_OK;
    case OPT_SHARED_FILE:
        b->shared_file = arg;
        return EXIT_OK;
    case 'y':
        b->yes = true;
        return EXIT_OK;
    case OPT_QUOTE:
        b->quote = true;
        return EXIT_OK;
    default:
        return EXIT_USAGE;
    }
}

/* Reads the passwords into the form (never echoed, never on the command line). */
static int book_passwords(book_opts *b)
{
    char *bp = secret_read(b->broadcast_file, "ONAIR_BROADCAST_PASSWORD", "the broadcast password (you go live with it)",
                           !b->broadcast_file && !getenv("ONAIR_BROADCAST_PASSWORD"), "--broadcast-password-file");
    if (!bp)
        return EXIT_USAGE;
    bool ok = form_set(b->f, "broadcast_password", bp);
    secret_free(bp);
    if (!ok)
        return EXIT_USAGE;
    if (b->level && strcmp(b->level, "public") == 0 && !b->shared_file)
        return EXIT_OK;
    char *sp = secret_read(b->shared_file, "ONAIR_SHARED_PASSWORD", "the shared password (viewers enter with it)",
                           !b->shared_file && !getenv("ONAIR_SHARED_PASSWORD"), "--shared-password-file");
    if (!sp)
        return EXIT_USAGE;
    ok = form_set(b->f, "shared_password", sp);
    secret_free(sp);
    return ok ? EXIT_OK : EXIT_USAGE;
}

static int book_run(const cast_command *self, int argc, char **argv, client_options *o)
{
    static const struct option extra[] = {
        {"channel", required_argument, NULL, OPT_CHANNEL},
        {"start", required_argument, NULL, OPT_START},
        {"end", required_argument, NULL, OPT_END},
        {"level", required_argument, NULL, OPT_LEVEL},
        {"title", required_argument, NULL, OPT_TITLE},
        {"genre", required_argument, NULL, OPT_GENRE},
        {"summary", required_argument, NULL, OPT_SUMMARY},
        {"detail", required_argument, NULL, OPT_DETAIL},
        {"show-email", no_argument, NULL, OPT_SHOW_EMAIL},
        {"show-url", no_argument, NULL, OPT_SHOW_URL},
        {"url", required_argument, NULL, OPT_URL},
        {"friend", required_argument, NULL, OPT_FRIEND},
        {"transcript", required_argument, NULL, OPT_TRANSCRIPT},
        {"transcript-notices", required_argument, NULL, OPT_NOTICES},
        {"broadcast-password-file", required_argument, NULL, OPT_BCAST_FILE},
        {"shared-password-file", required_argument, NULL, OPT_SHARED_FILE},
        {"yes", no_argument, NULL, 'y'},
        {"quote", no_argument, NULL, OPT_QUOTE},
    };
    book_opts b = {0};
    b.f = form_new("submit");
    if (!b.f)
        return EXIT_USAGE;
    int first;
    int rc = cast_parse(argc, argv, extra, sizeof extra / sizeof extra[0], "y", o, self, book_option, &b, &first);
    if (rc < 0) {
        form_free(b.f);
        free(b.friends);
        return EXIT_OK;
    }
    if (rc == EXIT_OK && argc - first > 0) {
        fprintf(stderr, PROG " book: unexpected argument '%s'\n", argv[first]);
        rc = EXIT_USAGE;
    }
    if (rc == EXIT_OK && b.friends && !form_set(b.f, "friends", b.friends))
        rc = EXIT_USAGE;
    if (rc == EXIT_OK && (rc = client_options_check(o)) == EXIT_OK)
        rc = book_passwords(&b);
    client *c = NULL;
    if (rc == EXIT_OK)
        rc = cast_login(o, &c);
    adhoc_answer a = {0}, done = {0};
    if (rc == EXIT_OK) {
        rc = adhoc_execute(c, "book", NULL, NULL, b.f, &a, PROG);
        if (rc == EXIT_OK && a.is_error)
            rc = cast_refused(self->name, &a.error, book_options);
        else if (rc == EXIT_OK && (strcmp(a.status, "executing") != 0 || !a.form || !a.sessionid)) {
            fputs(PROG " book: the server did not show the booking back for confirmation\n", stderr);
            rc = EXIT_PROTOCOL;
        }
    }
    if (rc == EXIT_OK) {
        form_print(stdout, a.form);
        fflush(stdout);
        adhoc_print_notes(stderr, &a);
        int accept = b.quote ? 0 : b.yes ? 1 : prompt_yes_no("Book this live for the fee shown?");
        if (accept < 0) {
            fputs(PROG " book: nothing booked: accept the fee with --yes (no terminal to ask on)\n", stderr);
            rc = EXIT_USAGE;
        }
        const char *action = accept > 0 ? "complete" : "cancel";
        int r = adhoc_execute(c, "book", a.sessionid, action, NULL, &done, PROG);
        if (accept <= 0) {
            if (r == EXIT_OK && !done.is_error)
                fputs("Not booked: nothing was stored.\n", stderr);
        } else {
            rc = finish(self->name, r, &done, stdout);
        }
    }
    adhoc_answer_clear(&a);
    adhoc_answer_clear(&done);
    if (c)
        cast_logout(c);
    form_free(b.f);
    free(b.friends);
    return rc;
}

static int reconfirm_run(const cast_command *self, int argc, char **argv, client_options *o)
{
    return by_id(argc, argv, o, self, "reconfirm");
}

static int settings_run(const cast_command *self, int argc, char **argv, client_options *o)
{
    return by_id(argc, argv, o, self, "settings");
}

static int cancel_run(const cast_command *self, int argc, char **argv, client_options *o)
{
    return by_id(argc, argv, o, self, "cancel");
}

static int list_run(const cast_command *self, int argc, char **argv, client_options *o)
{
    return plain_run(argc, argv, o, self, "my-channel", 0, NULL);
}

static int schedule_run(const cast_command *self, int argc, char **argv, client_options *o)
{
    return plain_run(argc, argv, o, self, "schedule", 0, NULL);
}

static int availability_run(const cast_command *self, int argc, char **argv, client_options *o)
{
    return plain_run(argc, argv, o, self, "availability", 1, "date");
}

const cast_command cast_booking_commands[] = {
    {"availability", "the channels' free and booked slots on a day", availability_help, availability_run},
    {"book", "book a live (shows the fee first)", book_help, book_run},
    {"reconfirm", "reconfirm a reservation and print its settings", reconfirm_help, reconfirm_run},
    {"settings", "print a reconfirmed reservation's settings", settings_help, settings_run},
    {"cancel", "cancel a reservation", cancel_help, cancel_run},
    {"list", "my channel: your reservations and their state", list_help, list_run},
    {"schedule", "upcoming public lives", schedule_help, schedule_run},
    {"transcripts", "the transcripts of your past lives", transcripts_help, transcripts_run},
    {"transcript", "fetch the transcript of a live's chat", transcript_help, transcript_run},
};
const size_t cast_booking_ncommands = sizeof cast_booking_commands / sizeof cast_booking_commands[0];

/* onair-cast - the broadcaster's command-line client (clients/README.md).
 *
 *   onair-cast [connection options] COMMAND [options] [ARGS]
 *
 * Books, reconfirms, lists and cancels reservations and fetches transcripts
 * over the server's XEP-0050 ad-hoc commands (specs/reservation.md,
 * specs/transcript.md).  Every command logs in, does its work and logs out;
 * exit codes are listed by --help.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cast.h"
#include "prompt.h"

static const cast_command *find_command(const char *name)
{
    for (size_t i = 0; i < cast_booking_ncommands; i++)
        if (strcmp(cast_booking_commands[i].name, name) == 0)
            return &cast_booking_commands[i];
    return strcmp(name, cast_live_command.name) == 0 ? &cast_live_command : NULL;
}

static void exit_codes_help(FILE *out)
{
    fputs("Exit status:\n"
          "  0  done\n"
          "  1  the server refused (its reason is printed, with the option that gives the field)\n"
          "  2  usage: a bad option or argument, or a required input is missing\n"
          "  3  cannot connect, the server's certificate is not trusted, or the login was refused\n"
          "  4  no answer from the server in time, or an answer that cannot be read\n"
          "  5  the stream failed (live)\n",
          out);
}

static void usage(FILE *out)
{
    fputs("usage: " PROG " [connection options] COMMAND [options] [ARGS]\n"
          "\n"
          "The broadcaster's client of onair: book a live, reconfirm it, list and cancel\n"
          "reservations, fetch the chat's transcript, and go live.\n"
          "\n"
          "Commands:\n",
          out);
    for (size_t i = 0; i < cast_booking_ncommands; i++)
        fprintf(out, "  %-13s %s\n", cast_booking_commands[i].name, cast_booking_commands[i].summary);
    fprintf(out, "  %-13s %s\n", cast_live_command.name, cast_live_command.summary);
    fputs("\n'" PROG " COMMAND --help' tells more about each.\n\n", out);
    client_options_help(out, false);
    fputs("  -h, --help            this help\n\n", out);
    exit_codes_help(out);
}

int cast_parse(int argc, char **argv, const struct option *extra, size_t nextra, const char *shortopts,
               client_options *o, const cast_command *cmd, cast_option_fn on_option, void *ud, int *first_arg)
{
    const struct option common[] = {CLIENT_LONG_OPTIONS, {"help", no_argument, NULL, 'h'}};
    size_t ncommon = sizeof common / sizeof common[0];
    struct option *all = calloc(nextra + ncommon + 1, sizeof *all);
    if (!all)
        return EXIT_USAGE;
    if (nextra)
        memcpy(all, extra, nextra * sizeof *all);
    memcpy(all + nextra, common, sizeof common);
    char opts[64];
    snprintf(opts, sizeof opts, "hv%s", shortopts ? shortopts : "");
    int rc = EXIT_OK, opt;
    optind = 0; /* glibc: a full restart, permutation included */
    opterr = 1;
    while (rc == EXIT_OK && (opt = getopt_long(argc, argv, opts, all, NULL)) != -1) {
        int r;
        if (opt == 'h') {
            cmd->help(stdout);
            fputc('\n', stdout);
            client_options_help(stdout, false);
            fputc('\n', stdout);
            exit_codes_help(stdout);
            rc = -1;
        } else if (opt == '?') {
            fprintf(stderr, "'" PROG " %s --help' lists the options\n", cmd->name);
            rc = EXIT_USAGE;
        } else if ((r = client_options_parse(o, opt, optarg)) != 0) {
            if (r < 0)
                rc = EXIT_USAGE;
        } else {
            rc = on_option ? on_option(opt, optarg, ud) : EXIT_USAGE;
        }
    }
    free(all);
    *first_arg = optind;
    return rc;
}

int cast_login(client_options *o, client **c)
{
    int rc = client_options_check(o);
    if (rc != EXIT_OK)
        return rc;
    char name[600];
    snprintf(name, sizeof name, "the password of %s", o->jid);
    char *pw = secret_read(o->password_file, "ONAIR_PASSWORD", name, false, "--password-file");
    if (!pw)
        return EXIT_USAGE;
    rc = client_connect(c, o, pw, PROG);
    secret_free(pw);
    return rc;
}

void cast_logout(client *c)
{
    client_disconnect(c);
    client_free(c);
}

int cast_refused(const char *cmd, const stanza_error *e, const char *const *options)
{
    const char *option = NULL;
    for (size_t i = 0; e->field[0] && options && options[i]; i += 2)
        if (strcmp(options[i], e->field) == 0)
            option = options[i + 1];
    if (option)
        fprintf(stderr, PROG " %s: refused: %s: %s (%s)\n", cmd, option, e->reason, e->condition);
    else if (e->text[0])
        fprintf(stderr, PROG " %s: refused: %s (%s)\n", cmd, e->text, e->condition);
    else
        fprintf(stderr, PROG " %s: refused by the server (%s)\n", cmd, e->condition);
    return EXIT_REFUSED;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    client_options o;
    client_options_init(&o);
    const struct option common[] = {CLIENT_LONG_OPTIONS, {"help", no_argument, NULL, 'h'}, {0}};
    int opt;
    opterr = 1;
    while ((opt = getopt_long(argc, argv, "+hv", common, NULL)) != -1) {
        if (opt == 'h') {
            usage(stdout);
            return EXIT_OK;
        }
        int r = opt == '?' ? -1 : client_options_parse(&o, opt, optarg);
        if (r <= 0) {
            fputs("'" PROG " --help' lists the options\n", stderr);
            return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const cast_command *cmd = find_command(argv[optind]);
    if (!cmd) {
        fprintf(stderr, PROG ": no command '%s' ('" PROG " --help' lists them)\n", argv[optind]);
        return EXIT_USAGE;
    }
    return cmd->run(cmd, argc - optind, argv + optind, &o);
}

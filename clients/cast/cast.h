/* cast.h - the subcommands of onair-cast, the broadcaster's client. */
#ifndef ONAIR_CAST_H
#define ONAIR_CAST_H

#include "commands.h"
#include "client.h"

#define PROG "onair-cast"

/* One subcommand: its name, a line for the overview, its help, and what runs
 * it with its own arguments (argv[0] is the subcommand's name). */
typedef struct cast_command {
    const char *name;
    const char *summary;
    void (*help)(FILE *out);
    int (*run)(const struct cast_command *self, int argc, char **argv, client_options *o);
} cast_command;

extern const cast_command cast_booking_commands[];
extern const size_t cast_booking_ncommands;
extern const cast_command cast_live_command;

/* Logs in with o (the account password from its sources); EXIT_OK and *c,
 * or the exit code after printing why. */
int cast_login(client_options *o, client **c);
/* Logs out and frees c. */
void cast_logout(client *c);

/* Prints a refused request: the server's text, and the option that gives
 * the field it names (options maps field names to options, NULL-ended
 * pairs).  Returns EXIT_REFUSED. */
int cast_refused(const char *cmd, const stanza_error *e, const char *const *options);

/* getopt_long over argv for a subcommand: the common options are handled
 * into o; the others go to on_option(opt, optarg, ud) (returns 0, or an exit
 * code).  "-h/--help" prints help and returns -1 through *exit_code = 0. */
typedef int (*cast_option_fn)(int opt, const char *arg, void *ud);
int cast_parse(int argc, char **argv, const struct option *extra, size_t nextra, const char *shortopts,
               client_options *o, const cast_command *cmd, cast_option_fn on_option, void *ud, int *first_arg);

#endif

/* prompt.h - secrets and questions for the command-line clients.
 *
 * A secret (an account, broadcast or shared password) is read from a file
 * (its first line; "-" is stdin), else from an environment variable, else
 * asked on the terminal (/dev/tty) without echo: never from the command
 * line, where any user's ps shows it.
 */
#ifndef ONAIR_PROMPT_H
#define ONAIR_PROMPT_H

#include <stdbool.h>

/* Reads a secret from file, else the environment variable env, else the
 * terminal ("Enter <name>: "; twice when confirm, for a new password).
 * Returns a string the caller frees with secret_free(), or NULL after
 * printing why (what: the option that gives the file, e.g.
 * "--password-file"; name: e.g. "the password of alice@example.org"). */
char *secret_read(const char *file, const char *env, const char *name, bool confirm, const char *what);

/* Overwrites and frees a secret; NULL is fine. */
void secret_free(char *secret);

/* Asks question on the terminal: 1 yes, 0 no, -1 when there is no terminal. */
int prompt_yes_no(const char *question);

#endif

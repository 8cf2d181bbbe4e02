/* commands.h - running XEP-0050 ad-hoc commands on the server's JID
 * (specs/adhoc.md) from the command-line clients.
 */
#ifndef ONAIR_COMMANDS_H
#define ONAIR_COMMANDS_H

#include "client.h"
#include "form.h"

#define ADHOC_MAX_NOTES 8

typedef struct adhoc_note {
    char type[8]; /* info, warn, error */
    char *text;
} adhoc_note;

/* One answer of the server to a command request.  Owned by the caller:
 * adhoc_answer_clear() frees what it holds. */
typedef struct adhoc_answer {
    bool is_error;       /* an IQ error: see error */
    stanza_error error;
    char status[16];     /* executing, completed, canceled */
    char *sessionid;
    form *form;          /* the <x/> of the answer, or NULL */
    adhoc_note notes[ADHOC_MAX_NOTES];
    size_t nnotes;
} adhoc_answer;

/* Sends one request for node (sessionid NULL to start; action NULL for the
 * default; submit NULL for none, borrowed) and waits for the answer.
 * Returns EXIT_OK with *a filled (an IQ error too: a->is_error), or
 * EXIT_PROTOCOL after printing why there is no usable answer. */
int adhoc_execute(client *c, const char *node, const char *sessionid, const char *action, const form *submit,
                  adhoc_answer *a, const char *progname);
void adhoc_answer_clear(adhoc_answer *a);

/* Prints the notes, one a line ("note: ..." / "warning: ..." / "error: ..."). */
void adhoc_print_notes(FILE *out, const adhoc_answer *a);

#endif

/* prompt.c - reading secrets from files, the environment or the terminal
 * (prompt.h).  The terminal is /dev/tty, so stdin stays free for data
 * (onair-watch reads chat lines there); echo is off while a secret is typed
 * and restored on every path. */
#include "prompt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>

#define SECRET_MAX 1024

static void chomp(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
}

static char *first_line(FILE *f)
{
    char *buf = calloc(1, SECRET_MAX);
    if (!buf)
        return NULL;
    if (!fgets(buf, SECRET_MAX, f)) {
        free(buf);
        return NULL;
    }
    chomp(buf);
    return buf;
}

/* One line from the terminal, echo off.  NULL when there is no terminal
 * (*had_tty false) or nothing was typed. */
static char *ask_tty(const char *prompt, bool *had_tty)
{
    FILE *tty = fopen("/dev/tty", "r+");
    *had_tty = tty != NULL;
    if (!tty)
        return NULL;
    struct termios old, quiet;
    bool restore = tcgetattr(fileno(tty), &old) == 0;
    if (restore) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        quiet.c_lflag |= ECHONL;
        tcsetattr(fileno(tty), TCSANOW, &quiet); /* what was typed ahead stays */
    }
    fputs(prompt, tty);
    fflush(tty);
    char *line = first_line(tty);
    if (restore)
        tcsetattr(fileno(tty), TCSANOW, &old);
    fclose(tty);
    return line;
}

char *secret_read(const char *file, const char *env, const char *name, bool confirm, const char *what)
{
    char *s = NULL;
    char prompt[256];
    snprintf(prompt, sizeof prompt, "Enter %s: ", name);
    if (file) {
        FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
        if (!f) {
            fprintf(stderr, "%s: cannot read %s: %s\n", what, file, strerror(errno));
            return NULL;
        }
        s = first_line(f);
        if (f != stdin)
            fclose(f);
        if (!s || !*s) {
            fprintf(stderr, "%s: %s has no password on its first line\n", what, file);
            secret_free(s);
            return NULL;
        }
        return s;
    }
    const char *v = env ? getenv(env) : NULL;
    if (v && *v)
        return strdup(v);
    bool had_tty;
    s = ask_tty(prompt, &had_tty);
    if (!s) {
        fprintf(stderr, "%s is needed: give %s FILE%s%s%s\n", name, what, env ? " or set " : "", env ? env : "",
                had_tty ? " (none was typed)" : " (there is no terminal to ask on)");
        return NULL;
    }
    if (confirm) {
        char *again = ask_tty("Again, to confirm: ", &had_tty);
        bool same = again && strcmp(again, s) == 0;
        secret_free(again);
        if (!same) {
            fputs("the two entries differ\n", stderr);
            secret_free(s);
            return NULL;
        }
    }
    if (!*s) {
        fputs("an empty password is not one\n", stderr);
        secret_free(s);
        return NULL;
    }
    return s;
}

void secret_free(char *secret)
{
    if (!secret)
        return;
    volatile char *p = secret;
    while (*p)
        *p++ = '\0';
    free(secret);
}

int prompt_yes_no(const char *question)
{
    FILE *tty = fopen("/dev/tty", "r+");
    if (!tty)
        return -1;
    fprintf(tty, "%s [y/N] ", question);
    fflush(tty);
    char buf[16] = "";
    int yes = fgets(buf, sizeof buf, tty) && (buf[0] == 'y' || buf[0] == 'Y');
    fclose(tty);
    return yes;
}

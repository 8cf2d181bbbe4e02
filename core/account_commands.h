/* account_commands.h - ad-hoc commands (XEP-0050) for the accounts of this
 * server: "server-info" (version, uptime, connected sessions) and
 * "change-password" (two stages; replaces the account's SCRAM secrets).
 * Both are for authenticated accounts only, not guests or remote users.
 */
#ifndef ONAIR_ACCOUNT_COMMANDS_H
#define ONAIR_ACCOUNT_COMMANDS_H

struct server;

/* Registers the commands with adhoc (adhoc_init must have run).  0 or -1. */
int account_commands_register(struct server *srv);

#endif

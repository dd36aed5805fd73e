/* What the repository commands share: --repo and --password-file, opening
 * the repository with errors an operator can act on, and progress output
 * (a status line on a terminal, JSON lines with --json, nothing in a pipe). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "backup/backup.h"
#include "cli/cli.h"
#include "repo/repo.h"

enum {
	REPO_OPT_PASSWORD_FILE = CLI_OPT_FIRST_FREE + 100,
	REPO_OPT_FIRST_FREE, /* commands number their own options from here */
};

#define REPO_CLI_LONG                                                             \
	{ "repo", required_argument, NULL, 'r' },                                 \
	{ "password-file", required_argument, NULL, REPO_OPT_PASSWORD_FILE }
#define REPO_CLI_SHORT "r:"
#define REPO_CLI_HELP                                                                       \
	"  -r, --repo DIR|URL|NAME   the repository: a directory, sftp:, rest: or s3: URL, or\n"\
	"                            a name in the plan (default $BCDR_REPOSITORY, else\n"    \
	"                            the plan's repository when it has one)\n"               \
	"      --password-file FILE  its password (else $BCDR_PASSWORD_FILE,\n"              \
	"                            $BCDR_PASSWORD, or a prompt on a terminal)\n"

struct repo_cli {
	const char *repo;
	const char *password_file;
	const char *location; /* resolved: what to open */
	const char *path;     /* the same for messages, any password masked */
	struct backend_options options; /* the plan's, when it names the repository */
	char shown[LOCATION_MAX + 8];
};

/* A location argument with any password masked in place (argv shows in
 * ps and /proc); returns a copy that keeps it, or arg itself. */
const char *repo_cli_hide_secret(char *arg);
/* Takes -r/--password-file; returns true when opt was one of them. */
bool repo_cli_option(struct repo_cli *rc, int opt, const char *arg);
/* Resolves the repository location (and the plan's password file and
 * options), checking it parses. Logs and returns an exit code on failure, 0
 * on success. */
int repo_cli_resolve(struct cli *cli, struct repo_cli *rc);
/* Resolves, asks for the password and opens. Logs; returns an exit code. */
int repo_cli_open(struct cli *cli, struct repo_cli *rc, struct repo **ret);
/* Takes the lock, logging who holds it when it fails. */
int repo_cli_lock(struct repo *repo, bool exclusive);
/* Logs a failed repository operation with a hint; returns EXIT_FAIL. */
int repo_cli_error(int r, const char *what, const char *path);

/* A progress callback for backup_options/restore_options; userdata is the
 * struct cli. Prints on stderr when it is a terminal, JSON lines on stdout
 * with --json, nothing otherwise. */
void repo_cli_progress(const struct backup_progress *p, void *userdata);
/* Ends a terminal status line. */
void repo_cli_progress_done(struct cli *cli);
bool repo_cli_progress_wanted(struct cli *cli);

/* "1a2b3c4d" (8 hex digits) of an ID. */
const char *short_id(const uint8_t id[32], char out[9]);

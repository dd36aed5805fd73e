/* What the repository commands share: --repo and --password-file, opening
 * the repository with errors an operator can act on, and progress output
 * (a status line on a terminal, JSON lines with --json, nothing in a pipe). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "backup/backup.h"
#include "cli/cli.h"
#include "cli/options.h"
#include "repo/repo.h"

/* The rows of --repo and --password-file, for a command's option table. */
#define REPO_CLI_OPTIONS(rc)                                                                   \
	{ CLI_COLUMN(28) },                                                                    \
	{ CLI_CALL("repo", 'r', repo_cli_take_location, &(rc)->repo, "DIR|URL|NAME",                      \
		   "the repository: a directory, sftp:, rest: or s3: URL, or\n"               \
		   "a name in the plan (default $BCDR_REPOSITORY, else\n"                     \
		   "the plan's repository when it has one)") },                               \
	{ CLI_STRING("password-file", 0, &(rc)->password_file, "FILE",                         \
		     "its password (else $BCDR_PASSWORD_FILE,\n"                               \
		     "$BCDR_PASSWORD, or a prompt on a terminal)") }

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
/* The row of a location option (--repo, --to-repo): o->field is the
 * const char * it sets, to the argument with any password masked. */
int repo_cli_take_location(struct cli *cli, const struct cli_option *o, const char *arg);
/* Resolves the repository location (and the plan's password file and
 * options), checking it parses. Logs and returns an exit code on failure, 0
 * on success. */
int repo_cli_resolve(struct cli *cli, struct repo_cli *rc);
/* Resolves, asks for the password and opens. Logs; returns an exit code. */
int repo_cli_open(struct cli *cli, struct repo_cli *rc, struct repo **ret);
/* cli_parse() with options (REPO_CLI_OPTIONS(rc) among them; operands
 * anywhere), then repo_cli_open(): CLI_CONTINUE with *ret open and optind
 * at the first operand, or the exit code to return now. */
int repo_cli_parse_open(struct cli *cli, int argc, char **argv, const struct cli_option *options,
			unsigned flags, struct repo_cli *rc, struct repo **ret);
/* Takes the lock, logging who holds it when it fails. */
int repo_cli_lock(struct repo *repo, bool exclusive);
/* Logs a failed repository operation with a hint; returns EXIT_FAIL. */
int repo_cli_error(int r, const char *what, const char *path);

/* How far a long command is: items of one unit ("files", "packs") and
 * their bytes. total_may_grow: the total is still being counted until
 * total_known (a backup's walk): "+" after it, no ETA before. */
struct repo_cli_progress_line {
	const char *unit;
	uint64_t done, total, bytes_done, bytes_total;
	usec_t elapsed;
	bool total_may_grow, total_known;
};
/* A status line on stderr when it is a terminal, a JSON line on stdout with
 * --json ("<unit>_done", "<unit>_total", bytes, elapsed_s), nothing else. */
void repo_cli_progress_print(struct cli *cli, const struct repo_cli_progress_line *l);
/* A progress callback for backup_options/restore_options; userdata is the
 * struct cli. Prints on stderr when it is a terminal, JSON lines on stdout
 * with --json, nothing otherwise. */
void repo_cli_progress(const struct backup_progress *p, void *userdata);
/* Ends a terminal status line. */
void repo_cli_progress_done(struct cli *cli);
bool repo_cli_progress_wanted(struct cli *cli);

/* "1a2b3c4d" (8 hex digits) of an ID. */
const char *short_id(const uint8_t id[32], char out[9]);

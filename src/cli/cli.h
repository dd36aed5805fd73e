/* The command line: a git-style table of subcommands, each in its own
 * cmd-<name>.c, sharing the options every command takes. */
#pragma once

#include <getopt.h>
#include <stdbool.h>

#include "cli/options.h" /* how a command declares and parses its options */

struct plan;

/* Exit codes, the same for every command. */
enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,     /* the command failed */
	EXIT_USAGE = 2,    /* bad usage: unknown command or option, missing argument */
	EXIT_PROBLEMS = 3, /* completed, with problems (skipped files, damage found) */
};

struct cli {
	const char *plan_path; /* -c FILE, NULL to look in the default places */
	bool json;             /* --json: machine-readable output on stdout */
	bool quiet;            /* -q: no progress, only errors */
	int verbose;           /* -v, repeatable */
	struct plan *plan;     /* loaded by cli_load_plan(), owned */
	const struct command *command; /* the one running */
	const char *group;             /* its parent group ("model"), or NULL */
};

struct command {
	const char *name;
	const char *summary; /* one line for `bcdr help` */
	const char *usage;   /* the --help text after "usage: bcdr " */
	int (*run)(struct cli *cli, int argc, char **argv); /* returns an exit code */
	/* `bcdr help NAME` runs it with --help, which adds the list of its
	 * options (cli/options.h) to usage; else it prints usage alone. */
	bool help_runs;
	/* A group's subcommands (NULL-terminated), run by cli_run_group(). */
	const struct command *const *subcommands;
};

/* The options every command accepts, for main()'s loop over the global
 * options (bcdr -c PLAN COMMAND ...); commands declare theirs in a table
 * (cli/options.h), which adds these. */
enum {
	CLI_OPT_JSON = 0x1000,
};
#define CLI_COMMON_SHORT "+c:qvh"
#define CLI_COMMON_LONG                                        \
	{ "plan", required_argument, NULL, 'c' },              \
	{ "json", no_argument, NULL, CLI_OPT_JSON },           \
	{ "quiet", no_argument, NULL, 'q' },                   \
	{ "verbose", no_argument, NULL, 'v' },                 \
	{ "help", no_argument, NULL, 'h' },                    \
	{ NULL, 0, NULL, 0 }
#define CLI_COMMON_HELP                                                              \
	"  -c, --plan FILE   the plan (default ./bcdr.yaml, then /etc/bcdr/bcdr.yaml)\n" \
	"      --json        machine-readable output\n"                                  \
	"  -q, --quiet       errors only\n"                                              \
	"  -v, --verbose     more detail (repeat for debug)\n"                          \
	"  -h, --help        this help\n"

/* Result of cli_common_option(): go on parsing, or return this exit code. */
#define CLI_CONTINUE (-1)

/* Handles a common option (or '?' / ':' from getopt); returns CLI_CONTINUE,
 * or the exit code to return now (after --help: EXIT_OK; a bad option:
 * EXIT_USAGE). */
int cli_common_option(struct cli *cli, int opt, const char *arg);

/* Parses argv for a command that takes the common options and nothing
 * else; returns CLI_CONTINUE or the exit code to return now. */
int cli_parse_common_only(struct cli *cli, int argc, char **argv);

/* Prints "bcdr: message" and the hint to see --help; returns EXIT_USAGE. */
int cli_usage_error(struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Loads the plan named by -c (or the default places) into cli->plan. Without
 * a plan file: an empty plan when !required, else an error. Logs what went
 * wrong; returns 0 or an exit code (EXIT_FAIL). */
int cli_load_plan(struct cli *cli, bool required);

/* Runs argv[0] from a NULL-terminated table of subcommands (for groups such
 * as `bcdr model availability`); group names the parent in messages. */
int cli_dispatch(struct cli *cli, const char *group, const struct command *const *table, int argc,
		 char **argv);

/* The run() of a group (`bcdr model availability`): cli_dispatch() of
 * argv[1] among cli->command's subcommands. */
int cli_run_group(struct cli *cli, int argc, char **argv);

/* Prints the help of a command table (for `bcdr help` and groups). */
void cli_print_table(const char *group, const struct command *const *table);

/* The top-level table (commands.c). */
extern const struct command *const cli_commands[];

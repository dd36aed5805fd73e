/* The options of a command, declared once as a table (git's
 * parse-options): each row names the option, what its argument is and the
 * field it fills, and its help line; cli_parse() parses argv with it, fills
 * the fields, prints --help (the command's usage, then the rows) and says
 * what is wrong with an unknown or malformed option. The common options
 * (-c, --json, -q, -v, -h) follow every table by themselves. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "lib/timeutil.h"

struct cli;
struct cli_option;

enum cli_arg {
	CLI_ARG_END = 0,  /* ends the table */
	CLI_ARG_FLAG,     /* bool: set to true */
	CLI_ARG_COUNT,    /* int: one more each time (-v -v) */
	CLI_ARG_STRING,   /* const char *: the argument, borrowed from argv; the last wins */
	CLI_ARG_INT,      /* int64_t: a whole number from min to max */
	CLI_ARG_NUMBER,   /* double: a finite number; from min to max when min < max */
	CLI_ARG_DURATION, /* usec_t: "30m", "1h30m" (lib/timeutil); min usec at least */
	CLI_ARG_SIZE,     /* uint64_t: "512M" (lib/timeutil) */
	CLI_ARG_LIST,     /* char **: each argument appended (a strv the caller frees) */
	CLI_ARG_CALL,     /* call(): anything else; field is its userdata */
	CLI_ARG_COLUMN,   /* not an option: the help of the rows below starts at column min */
};

/* What call() returns: CLI_CONTINUE, or the exit code to end with (after
 * it printed why, cli_usage_error() for a bad value). */
typedef int (*cli_option_fn)(struct cli *cli, const struct cli_option *o, const char *arg);

struct cli_option {
	const char *name; /* the long name, without "--"; NULL for a short-only one */
	int short_name;   /* 'e' for -e, or 0 */
	enum cli_arg kind;
	void *field;      /* what it fills, of the kind's type */
	const char *meta; /* the argument in the help ("GLOB"); every kind but FLAG
			   * and COUNT takes one (CALL: only when meta is set) */
	const char *help; /* its help; a '\n' starts a line at the column; NULL: not listed */
	int64_t min, max;    /* CLI_ARG_INT's range (and NUMBER's, DURATION's least;
			      * CALL's own use) */
	const char *what;    /* the error's words for a bad value, after "--name ":
			      * "takes 0 to 256"; each kind has its own by default */
	cli_option_fn call;  /* CLI_ARG_CALL */
};

/* A row is { CLI_STRING(...) } or, with more fields, { CLI_INT(...), .what = "..." }.
 * The (1 ? (f) : (T *)0) is there for the compiler to check f's type. */
#define CLI_FIELD_(f, T) .field = (1 ? (f) : (T *)0)
#define CLI_FLAG(l, s, f, h) \
	.name = (l), .short_name = (s), .kind = CLI_ARG_FLAG, CLI_FIELD_(f, bool), .help = (h)
#define CLI_COUNT(l, s, f, h) \
	.name = (l), .short_name = (s), .kind = CLI_ARG_COUNT, CLI_FIELD_(f, int), .help = (h)
#define CLI_STRING(l, s, f, m, h)                                                         \
	.name = (l), .short_name = (s), .kind = CLI_ARG_STRING, CLI_FIELD_(f, const char *), \
	.meta = (m), .help = (h)
#define CLI_INT(l, s, f, m, lo, hi, h)                                                 \
	.name = (l), .short_name = (s), .kind = CLI_ARG_INT, CLI_FIELD_(f, int64_t),    \
	.meta = (m), .help = (h), .min = (lo), .max = (hi)
#define CLI_NUMBER(l, s, f, m, h) \
	.name = (l), .short_name = (s), .kind = CLI_ARG_NUMBER, CLI_FIELD_(f, double), \
	.meta = (m), .help = (h)
#define CLI_DURATION(l, s, f, m, h) \
	.name = (l), .short_name = (s), .kind = CLI_ARG_DURATION, CLI_FIELD_(f, usec_t), \
	.meta = (m), .help = (h)
#define CLI_SIZE(l, s, f, m, h) \
	.name = (l), .short_name = (s), .kind = CLI_ARG_SIZE, CLI_FIELD_(f, uint64_t), \
	.meta = (m), .help = (h)
#define CLI_LIST(l, s, f, m, h) \
	.name = (l), .short_name = (s), .kind = CLI_ARG_LIST, CLI_FIELD_(f, char **), \
	.meta = (m), .help = (h)
#define CLI_CALL(l, s, fn, ud, m, h)                                                    \
	.name = (l), .short_name = (s), .kind = CLI_ARG_CALL, .call = (fn), .field = (ud), \
	.meta = (m), .help = (h)
#define CLI_COLUMN(n) .kind = CLI_ARG_COLUMN, .min = (n)

/* The most rows a table may have, common options included. */
#define CLI_OPTIONS_MAX 64

enum {
	CLI_PARSE_PERMUTE = 1 << 0,     /* operands may stand among the options
					 * (they end up after them, at argv[optind]);
					 * else the first operand ends the options */
	CLI_PARSE_NO_OPERANDS = 1 << 1, /* an operand is a usage error */
	CLI_PARSE_BRIEF_HELP = 1 << 2,  /* --help prints the usage line only */
};

/* Parses argv[1..] (argv[0] is the command's name) with options (ended by
 * a row of CLI_ARG_END; may be NULL) and the common ones, filling their
 * fields in the order given. Returns CLI_CONTINUE with optind at the first
 * operand, or the exit code to return now: EXIT_OK after --help (printed
 * on stdout: "usage: bcdr ", cli->command's usage, then "options:" and a
 * line for each row), EXIT_USAGE after an unknown option, a missing or
 * malformed argument (said on stderr), EXIT_FAIL when out of memory. */
int cli_parse(struct cli *cli, int argc, char **argv, const struct cli_option *options,
	      unsigned flags);

/* Prints the "options:" list of a table and the common options. */
void cli_options_help(const struct cli_option *options);

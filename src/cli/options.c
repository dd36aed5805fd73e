/* The one parser of the commands' options (options.h): a table becomes
 * getopt_long's arguments, so that the operands, "--", "--opt=value",
 * abbreviations and getopt's own messages ("unrecognized option") are what
 * they always were; the rows then say what the argument becomes. */
#include "cli/options.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "lib/cleanup.h"
#include "lib/log.h"
#include "lib/strv.h"

/* The help of the common options starts at this column (CLI_COMMON_HELP's). */
#define COMMON_COLUMN 20
#define DEFAULT_COLUMN 20
/* getopt_long's value of the long-only row i. */
#define LONG_ONLY_BASE 0x2000

static const struct cli_option common_options[] = {
	{ CLI_STRING("plan", 'c', NULL, "FILE",
		     "the plan (default ./bcdr.yaml, then /etc/bcdr/bcdr.yaml)") },
	{ CLI_FLAG("json", 0, NULL, "machine-readable output") },
	{ CLI_FLAG("quiet", 'q', NULL, "errors only") },
	{ CLI_COUNT("verbose", 'v', NULL, "more detail (repeat for debug)") },
	{ CLI_FLAG("help", 'h', NULL, "this help") },
	{}
};

enum { COMMON_PLAN, COMMON_JSON, COMMON_QUIET, COMMON_VERBOSE, COMMON_HELP };

int cli_usage_error(struct cli *cli, const char *fmt, ...)
{
	va_list ap;

	fputs("bcdr: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (cli && cli->command)
		fprintf(stderr, "\nsee 'bcdr %s%s%s --help'\n", cli->group ? cli->group : "",
			cli->group ? " " : "", cli->command->name);
	else
		fputs("\nsee 'bcdr help'\n", stderr);
	return EXIT_USAGE;
}

static bool takes_argument(const struct cli_option *o)
{
	switch (o->kind) {
	case CLI_ARG_FLAG:
	case CLI_ARG_COUNT:
		return false;
	case CLI_ARG_CALL:
		return o->meta != NULL;
	default:
		return true;
	}
}

static void print_rows(const struct cli_option *options, int column)
{
	for (const struct cli_option *o = options; o && o->kind != CLI_ARG_END; o++) {
		char left[128];
		int n;

		if (o->kind == CLI_ARG_COLUMN) {
			column = (int)o->min;
			continue;
		}
		if (!o->help)
			continue;
		if (o->short_name && o->name)
			n = snprintf(left, sizeof(left), "  -%c, --%s", o->short_name, o->name);
		else if (o->short_name)
			n = snprintf(left, sizeof(left), "  -%c", o->short_name);
		else
			n = snprintf(left, sizeof(left), "      --%s", o->name);
		if (takes_argument(o) && n >= 0 && (size_t)n < sizeof(left))
			n += snprintf(left + n, sizeof(left) - (size_t)n, " %s", o->meta);
		if (n < 0 || (size_t)n >= sizeof(left))
			continue; /* a name that long is a bug the help shows by its absence */
		/* At least one space: an option wider than the column pushes its
		 * first line right; the lines after it start at the column. */
		printf("%s%*s", left, n < column ? column - n : 1, "");
		for (const char *h = o->help;;) {
			size_t len = strcspn(h, "\n");

			printf("%.*s\n", (int)len, h);
			if (!h[len])
				break;
			h += len + 1;
			printf("%*s", column, "");
		}
	}
}

void cli_options_help(const struct cli_option *options)
{
	fputs("options:\n", stdout);
	print_rows(options, DEFAULT_COLUMN);
	print_rows(common_options, COMMON_COLUMN);
}

static int print_help(struct cli *cli, const struct cli_option *options, unsigned flags)
{
	if (!cli->command)
		return EXIT_OK;
	printf("usage: bcdr %s\n", cli->command->usage);
	if (!(flags & CLI_PARSE_BRIEF_HELP)) {
		cli_options_help(options);
		putchar('\n');
	}
	return EXIT_OK;
}

/* "--years" or "-y", for messages. */
static const char *option_name(const struct cli_option *o, char *buf, size_t size)
{
	if (o->name)
		snprintf(buf, size, "--%s", o->name);
	else
		snprintf(buf, size, "-%c", o->short_name);
	return buf;
}

static int bad_value(struct cli *cli, const struct cli_option *o, const char *arg,
		     const char *what)
{
	char name[80];

	return cli_usage_error(cli, "%s %s, not '%s'", option_name(o, name, sizeof(name)),
			       o->what ? o->what : what, arg);
}

/* A whole number in base 10, nothing before or after it. */
static bool parse_whole(const char *arg, int64_t *ret)
{
	char *end;
	long long v;

	if (!(*arg >= '0' && *arg <= '9') && !(*arg == '-' && arg[1] >= '0' && arg[1] <= '9'))
		return false;
	errno = 0;
	v = strtoll(arg, &end, 10);
	if (errno || *end)
		return false;
	*ret = v;
	return true;
}

/* Fills o's field from arg; CLI_CONTINUE or an exit code. */
static int take(struct cli *cli, const struct cli_option *o, const char *arg)
{
	char what[96];
	int64_t i;
	double d;
	char *end;
	usec_t u;
	uint64_t s;
	size_t n;

	switch (o->kind) {
	case CLI_ARG_FLAG:
		*(bool *)o->field = true;
		return CLI_CONTINUE;
	case CLI_ARG_COUNT:
		if (*(int *)o->field < INT_MAX)
			++*(int *)o->field;
		return CLI_CONTINUE;
	case CLI_ARG_STRING:
		*(const char **)o->field = arg;
		return CLI_CONTINUE;
	case CLI_ARG_INT:
		if (!parse_whole(arg, &i) || i < o->min || i > o->max) {
			snprintf(what, sizeof(what), "must be a whole number from %" PRId64 " to %" PRId64,
				 o->min, o->max);
			return bad_value(cli, o, arg, what);
		}
		*(int64_t *)o->field = i;
		return CLI_CONTINUE;
	case CLI_ARG_NUMBER:
		errno = 0;
		d = strtod(arg, &end);
		if (end == arg || *end || errno || !isfinite(d) ||
		    (o->min < o->max && !(d >= (double)o->min && d <= (double)o->max)))
			return bad_value(cli, o, arg, "wants a number");
		*(double *)o->field = d;
		return CLI_CONTINUE;
	case CLI_ARG_DURATION:
		if (duration_parse(arg, &u) < 0 || u < (usec_t)o->min)
			return bad_value(cli, o, arg, "takes a duration such as 30m or 2h");
		*(usec_t *)o->field = u;
		return CLI_CONTINUE;
	case CLI_ARG_SIZE:
		if (size_parse(arg, &s) < 0)
			return bad_value(cli, o, arg, "takes a size such as 4096, 10K or 512M");
		*(uint64_t *)o->field = s;
		return CLI_CONTINUE;
	case CLI_ARG_LIST:
		n = strv_length(*(char ***)o->field);
		if (strv_push(o->field, &n, arg) < 0) {
			log_error_errno(-ENOMEM, "cannot parse the options");
			return EXIT_FAIL;
		}
		return CLI_CONTINUE;
	case CLI_ARG_CALL:
		return o->call(cli, o, arg);
	default:
		return CLI_CONTINUE;
	}
}

static int take_common(struct cli *cli, const struct cli_option *options, unsigned flags,
		       size_t which, const char *arg)
{
	switch (which) {
	case COMMON_PLAN:
		cli->plan_path = arg;
		break;
	case COMMON_JSON:
		cli->json = true;
		break;
	case COMMON_QUIET:
		cli->quiet = true;
		log_set_level(LOG_LEVEL_WARNING);
		break;
	case COMMON_VERBOSE:
		if (cli->verbose < INT_MAX)
			cli->verbose++;
		log_set_level(cli->verbose > 1 ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
		break;
	case COMMON_HELP:
		return print_help(cli, options, flags);
	}
	return CLI_CONTINUE;
}

/* The common options' handling for main()'s own getopt loop, the global
 * options before the command (CLI_COMMON_LONG). */
int cli_common_option(struct cli *cli, int opt, const char *arg)
{
	static const int common_opts[] = { 'c', CLI_OPT_JSON, 'q', 'v', 'h' };

	for (size_t i = 0; i < ELEMENTSOF(common_opts); i++)
		if (opt == common_opts[i])
			return take_common(cli, NULL, CLI_PARSE_BRIEF_HELP, i, arg);
	/* getopt has already said which option was wrong. */
	return cli_usage_error(cli, "invalid usage");
}

int cli_parse_common_only(struct cli *cli, int argc, char **argv)
{
	/* Its usage text lists the options itself (CLI_COMMON_HELP). */
	return cli_parse(cli, argc, argv, NULL, CLI_PARSE_NO_OPERANDS | CLI_PARSE_BRIEF_HELP);
}

/* Appends the getopt spelling of the n rows of t to longs/shorts; the value
 * getopt returns for row i of the table is base + i unless it has a short
 * letter. False when the table is too large. */
static bool add_rows(const struct cli_option *t, int base, struct option *longs, size_t *nlongs,
		     char *shorts, size_t *nshorts)
{
	for (size_t i = 0; t && t[i].kind != CLI_ARG_END; i++) {
		const struct cli_option *o = &t[i];
		int has_arg = takes_argument(o) ? required_argument : no_argument;

		if (o->kind == CLI_ARG_COLUMN)
			continue;
		if (*nlongs + 1 >= CLI_OPTIONS_MAX || *nshorts + 3 >= 3 * CLI_OPTIONS_MAX)
			return false;
		if (o->name)
			longs[(*nlongs)++] = (struct option){ o->name, has_arg, NULL,
							      o->short_name ? o->short_name
									    : base + (int)i };
		if (o->short_name) {
			shorts[(*nshorts)++] = (char)o->short_name;
			if (has_arg == required_argument)
				shorts[(*nshorts)++] = ':';
		}
	}
	return true;
}

/* The row getopt's opt stands for, in t (whose long-only rows are base + i). */
static const struct cli_option *find_row(const struct cli_option *t, int base, int opt)
{
	for (size_t i = 0; t && t[i].kind != CLI_ARG_END; i++) {
		if (t[i].kind == CLI_ARG_COLUMN)
			continue;
		if (t[i].short_name ? opt == t[i].short_name : opt == base + (int)i)
			return &t[i];
	}
	return NULL;
}

int cli_parse(struct cli *cli, int argc, char **argv, const struct cli_option *options,
	      unsigned flags)
{
	struct option longs[CLI_OPTIONS_MAX];
	char shorts[3 * CLI_OPTIONS_MAX + 2];
	size_t nlongs = 0, nshorts = 0;
	int opt, code;

	/* '+': the first operand ends the options (POSIX), for commands whose
	 * operands may look like options (a subcommand, PROGRAM ARG...). */
	if (!(flags & CLI_PARSE_PERMUTE))
		shorts[nshorts++] = '+';
	if (!add_rows(options, LONG_ONLY_BASE, longs, &nlongs, shorts, &nshorts) ||
	    !add_rows(common_options, LONG_ONLY_BASE + CLI_OPTIONS_MAX, longs, &nlongs, shorts,
		      &nshorts)) {
		log_error("the command '%s' has more than %d options", argv[0], CLI_OPTIONS_MAX);
		return EXIT_FAIL;
	}
	longs[nlongs] = (struct option){ 0 };
	shorts[nshorts] = 0;

	while ((opt = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
		const struct cli_option *o = find_row(options, LONG_ONLY_BASE, opt);

		if (o)
			code = take(cli, o, optarg);
		else if ((o = find_row(common_options, LONG_ONLY_BASE + CLI_OPTIONS_MAX, opt)))
			code = take_common(cli, options, flags, (size_t)(o - common_options),
					   optarg);
		else /* '?': getopt has already said which option was wrong, and how */
			code = cli_usage_error(cli, "invalid usage");
		if (code != CLI_CONTINUE)
			return code;
	}
	if ((flags & CLI_PARSE_NO_OPERANDS) && optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	return CLI_CONTINUE;
}

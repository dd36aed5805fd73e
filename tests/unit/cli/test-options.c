/* cli/options: the option table of every command. Each kind fills its field;
 * "--opt=value", "--", repeats, abbreviations and operands behave as getopt
 * has them; missing arguments, unknown options and bad numbers are usage
 * errors that name the option and the command; --help is the usage and the
 * table's rows; garbage argv never crashes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "lib/cleanup.h"
#include "lib/log.h"

static const struct command cmd_test = {
	"test", "a command to test with", "test [OPTIONS] [ARG...]\n\nTests.\n", NULL,
};

/* What one parse filled and printed. */
struct parsed {
	struct cli cli;
	int code;
	int optind;
	char out[4096], err[4096];
};

static void slurp(FILE *f, char *buf, size_t size)
{
	size_t n;

	fflush(f);
	rewind(f);
	n = fread(buf, 1, size - 1, f);
	buf[n] = 0;
}

/* Parses argv (NULL-terminated, argv[0] the command) with options,
 * catching what goes to stdout and stderr. */
static void parse(struct parsed *p, const struct cli_option *options, unsigned flags,
		  char **argv)
{
	FILE *out = tmpfile(), *err = tmpfile();
	int saved_out = dup(STDOUT_FILENO), saved_err = dup(STDERR_FILENO), argc = 0;

	assert_non_null(out);
	assert_non_null(err);
	while (argv[argc])
		argc++;
	memset(p, 0, sizeof(*p));
	p->cli.command = &cmd_test;
	fflush(stdout);
	fflush(stderr);
	dup2(fileno(out), STDOUT_FILENO);
	dup2(fileno(err), STDERR_FILENO);
	optind = 0;
	p->code = cli_parse(&p->cli, argc, argv, options, flags);
	p->optind = optind;
	fflush(stdout);
	fflush(stderr);
	dup2(saved_out, STDOUT_FILENO);
	dup2(saved_err, STDERR_FILENO);
	close(saved_out);
	close(saved_err);
	slurp(out, p->out, sizeof(p->out));
	slurp(err, p->err, sizeof(p->err));
	fclose(out);
	fclose(err);
	log_set_level(LOG_LEVEL_INFO); /* -q and -v change it */
}

#define ARGV(...) ((char *[]){ "test", __VA_ARGS__, NULL })

/* Every kind, in one table. */
struct fields {
	bool flag;
	int count;
	const char *str;
	int64_t num;
	double real;
	usec_t dur;
	uint64_t size;
	char **list;
	int calls;
	const char *last_call;
};

static int take_call(struct cli *cli, const struct cli_option *o, const char *arg)
{
	struct fields *f = o->field;

	(void)cli;
	f->calls++;
	f->last_call = arg;
	if (arg && strcmp(arg, "refuse") == 0)
		return cli_usage_error(cli, "refused '%s'", arg);
	return CLI_CONTINUE;
}

#define TABLE(f)                                                                          \
	const struct cli_option options[] = {                                             \
		{ CLI_FLAG("flag", 'f', &(f).flag, "a flag") },                           \
		{ CLI_COUNT("count", 'n', &(f).count, "counted") },                      \
		{ CLI_STRING("str", 's', &(f).str, "S", "a string\non two lines") },      \
		{ CLI_INT("num", 'N', &(f).num, "N", -5, 100, "a number from -5 to 100") }, \
		{ CLI_NUMBER("real", 0, &(f).real, "X", "a real number") },              \
		{ CLI_DURATION("dur", 0, &(f).dur, "D", "a duration"), .min = 1 },       \
		{ CLI_SIZE("size", 0, &(f).size, "SIZE", "a size") },                    \
		{ CLI_LIST("list", 'l', &(f).list, "ITEM", "repeatable") },             \
		{ CLI_CALL("call", 0, take_call, &(f), "V", "calls back") },            \
		{ CLI_CALL("hit", 0, take_call, &(f), NULL, NULL) },                    \
		{ CLI_INT("port", 0, &(f).num, "PORT", 1, 65535, NULL), .what = "takes 1 to 65535" }, \
		{}                                                                        \
	}

static void test_kinds_fill_their_fields(void **state)
{
	struct fields f = {};
	struct parsed p;
	TABLE(f);

	(void)state;
	parse(&p, options, 0,
	      ARGV("-f", "-nn", "--count", "--str", "a", "-N", "-5", "--real=2.5", "--dur", "1h30m",
		   "--size=10K", "-l", "x", "--list=y", "--call", "v", "--hit", "rest", "-f"));
	assert_int_equal(p.code, CLI_CONTINUE);
	assert_true(f.flag);
	assert_int_equal(f.count, 3);
	assert_string_equal(f.str, "a");
	assert_int_equal(f.num, -5);
	assert_true(f.real == 2.5);
	assert_int_equal(f.dur, 90 * USEC_PER_MINUTE);
	assert_int_equal(f.size, 10240);
	assert_non_null(f.list);
	assert_string_equal(f.list[0], "x");
	assert_string_equal(f.list[1], "y");
	assert_null(f.list[2]);
	assert_int_equal(f.calls, 2);
	assert_null(f.last_call); /* --hit takes no argument */
	/* the first operand ends the options: "-f" after it is an operand */
	assert_int_equal(p.optind, 18);
	assert_string_equal(p.err, "");
	strv_free(f.list);
}

static void test_attached_and_equals(void **state)
{
	struct fields f = {};
	struct parsed p;
	TABLE(f);

	(void)state;
	parse(&p, options, 0, ARGV("-sabc", "-N42", "--str=x=y", "--num=7", "--list="));
	assert_int_equal(p.code, CLI_CONTINUE);
	assert_string_equal(f.str, "x=y"); /* the last one wins */
	assert_int_equal(f.num, 7);
	assert_string_equal(f.list[0], ""); /* an empty item is an item */
	/* abbreviations, as getopt_long has them */
	parse(&p, options, 0, ARGV("--fl", "--verb", "--j"));
	assert_int_equal(p.code, CLI_CONTINUE);
	assert_true(f.flag);
	assert_int_equal(p.cli.verbose, 1);
	assert_true(p.cli.json);
	strv_free(f.list);
}

static void test_double_dash_ends_options(void **state)
{
	struct fields f = {};
	struct parsed p;
	TABLE(f);

	(void)state;
	parse(&p, options, CLI_PARSE_PERMUTE, ARGV("a", "-f", "--", "--help", "-n"));
	assert_int_equal(p.code, CLI_CONTINUE);
	assert_true(f.flag);
	assert_int_equal(f.count, 0);
	assert_string_equal(p.out, ""); /* --help after -- is an operand */
	/* permuted: the operands end up after the options */
	assert_int_equal(p.optind, 3);
	/* an operand that is a lone "-" (stdin) */
	parse(&p, options, CLI_PARSE_PERMUTE | CLI_PARSE_NO_OPERANDS, ARGV("-"));
	assert_int_equal(p.code, EXIT_USAGE);
	assert_string_equal(p.err, "bcdr: unexpected argument '-'\nsee 'bcdr test --help'\n");
	parse(&p, options, CLI_PARSE_NO_OPERANDS, ARGV("--"));
	assert_int_equal(p.code, CLI_CONTINUE);
}

static void test_permute_takes_options_after_operands(void **state)
{
	struct fields f = {};
	struct parsed p;
	char *argv[] = { "test", "one", "--str", "s", "two", "-f", NULL };
	TABLE(f);

	(void)state;
	parse(&p, options, CLI_PARSE_PERMUTE, argv);
	assert_int_equal(p.code, CLI_CONTINUE);
	assert_true(f.flag);
	assert_string_equal(f.str, "s");
	assert_int_equal(p.optind, 4);
	assert_string_equal(argv[4], "one");
	assert_string_equal(argv[5], "two");
}

static void test_missing_and_unknown(void **state)
{
	struct fields f = {};
	struct parsed p;
	TABLE(f);

	(void)state;
	parse(&p, options, 0, ARGV("--str"));
	assert_int_equal(p.code, EXIT_USAGE);
	assert_non_null(strstr(p.err, "option '--str' requires an argument"));
	assert_non_null(strstr(p.err, "bcdr: invalid usage\nsee 'bcdr test --help'\n"));
	parse(&p, options, 0, ARGV("-s"));
	assert_int_equal(p.code, EXIT_USAGE);
	assert_non_null(strstr(p.err, "option requires an argument -- 's'"));
	parse(&p, options, 0, ARGV("--frob"));
	assert_int_equal(p.code, EXIT_USAGE);
	assert_non_null(strstr(p.err, "unrecognized option '--frob'"));
	parse(&p, options, 0, ARGV("-Z"));
	assert_int_equal(p.code, EXIT_USAGE);
	assert_non_null(strstr(p.err, "invalid option -- 'Z'"));
	parse(&p, options, 0, ARGV("--flag=1"));
	assert_int_equal(p.code, EXIT_USAGE);
	assert_non_null(strstr(p.err, "option '--flag' doesn't allow an argument"));
	/* an ambiguous abbreviation (--s: --str, --size) */
	parse(&p, options, 0, ARGV("--s", "x"));
	assert_int_equal(p.code, EXIT_USAGE);
	assert_non_null(strstr(p.err, "ambiguous"));
	/* the error ends the parse: what comes after is not taken */
	parse(&p, options, 0, ARGV("--frob", "-f"));
	assert_false(f.flag);
}

static void test_bad_numbers(void **state)
{
	static const char *const bad_ints[] = {
		"", "x", "12x", " 5", "5 ", "+5", "0x10", "1e3", "--5", "-", "101", "-6",
		"99999999999999999999", "-99999999999999999999", "1.5", "5\n",
	};
	static const char *const bad_reals[] = { "", "x", "1,5", "nan", "inf", "-inf", "1e999",
						 "0x", "2.5.1" };
	static const char *const bad_durations[] = { "", "5", "x", "1h-", "0s", "-1h", "1hh" };
	static const char *const bad_sizes[] = { "", "x", "10Q", "-1", "K" };
	struct fields f = { .num = 33 };
	struct parsed p;
	char want[256];
	TABLE(f);

	(void)state;
	for (size_t i = 0; i < ELEMENTSOF(bad_ints); i++) {
		parse(&p, options, 0, ARGV("--num", (char *)bad_ints[i]));
		assert_int_equal(p.code, EXIT_USAGE);
		snprintf(want, sizeof(want),
			 "bcdr: --num must be a whole number from -5 to 100, not '%s'\n"
			 "see 'bcdr test --help'\n", bad_ints[i]);
		assert_string_equal(p.err, want);
		assert_int_equal(f.num, 33); /* not written */
	}
	parse(&p, options, 0, ARGV("--port", "0"));
	assert_string_equal(p.err, "bcdr: --port takes 1 to 65535, not '0'\n"
				   "see 'bcdr test --help'\n");
	for (size_t i = 0; i < ELEMENTSOF(bad_reals); i++) {
		parse(&p, options, 0, ARGV("--real", (char *)bad_reals[i]));
		assert_int_equal(p.code, EXIT_USAGE);
		assert_non_null(strstr(p.err, "--real wants a number, not '"));
	}
	for (size_t i = 0; i < ELEMENTSOF(bad_durations); i++) {
		parse(&p, options, 0, ARGV("--dur", (char *)bad_durations[i]));
		assert_int_equal(p.code, EXIT_USAGE);
		assert_non_null(strstr(p.err, "--dur takes a duration"));
	}
	for (size_t i = 0; i < ELEMENTSOF(bad_sizes); i++) {
		parse(&p, options, 0, ARGV("--size", (char *)bad_sizes[i]));
		assert_int_equal(p.code, EXIT_USAGE);
		assert_non_null(strstr(p.err, "--size takes a size"));
	}
	assert_true(f.real == 0 && f.dur == 0 && f.size == 0);
	/* the edges of the range are in it */
	parse(&p, options, 0, ARGV("-N", "100"));
	assert_int_equal(p.code, CLI_CONTINUE);
	assert_int_equal(f.num, 100);
	parse(&p, options, 0, ARGV("-N", "-0"));
	assert_int_equal(f.num, 0);
}

static void test_a_callback_ends_the_parse(void **state)
{
	struct fields f = {};
	struct parsed p;
	TABLE(f);

	(void)state;
	parse(&p, options, 0, ARGV("--call", "refuse", "-f"));
	assert_int_equal(p.code, EXIT_USAGE);
	assert_string_equal(p.err, "bcdr: refused 'refuse'\nsee 'bcdr test --help'\n");
	assert_false(f.flag);
}

static void test_common_options(void **state)
{
	struct parsed p;

	(void)state;
	parse(&p, NULL, CLI_PARSE_NO_OPERANDS, ARGV("-c", "plan.yaml", "--json", "-vv", "-q"));
	assert_int_equal(p.code, CLI_CONTINUE);
	assert_string_equal(p.cli.plan_path, "plan.yaml");
	assert_true(p.cli.json);
	assert_int_equal(p.cli.verbose, 2);
	assert_true(p.cli.quiet);
	parse(&p, NULL, CLI_PARSE_NO_OPERANDS, ARGV("--plan=x", "extra"));
	assert_int_equal(p.code, EXIT_USAGE);
	assert_string_equal(p.err, "bcdr: unexpected argument 'extra'\nsee 'bcdr test --help'\n");
}

static void test_help(void **state)
{
	struct fields f = {};
	struct parsed p;
	TABLE(f);

	(void)state;
	/* --help ends the parse with EXIT_OK, before what follows it */
	parse(&p, options, 0, ARGV("--help", "--frob"));
	assert_int_equal(p.code, EXIT_OK);
	assert_string_equal(p.err, "");
	assert_string_equal(p.out,
			    "usage: bcdr test [OPTIONS] [ARG...]\n\nTests.\n\n"
			    "options:\n"
			    "  -f, --flag        a flag\n"
			    "  -n, --count       counted\n"
			    "  -s, --str S       a string\n"
			    "                    on two lines\n"
			    "  -N, --num N       a number from -5 to 100\n"
			    "      --real X      a real number\n"
			    "      --dur D       a duration\n"
			    "      --size SIZE   a size\n"
			    "  -l, --list ITEM   repeatable\n"
			    "      --call V      calls back\n"
			    "  -c, --plan FILE   the plan (default ./bcdr.yaml, then /etc/bcdr/bcdr.yaml)\n"
			    "      --json        machine-readable output\n"
			    "  -q, --quiet       errors only\n"
			    "  -v, --verbose     more detail (repeat for debug)\n"
			    "  -h, --help        this help\n\n");
	/* a column of its own; a wider option pushes its first line right */
	{
		const struct cli_option cols[] = {
			{ CLI_COLUMN(12) },
			{ CLI_FLAG("a", 'a', &f.flag, "first\nsecond") },
			{ CLI_STRING("longer-than-that", 0, &f.str, "X", "pushed") },
			{}
		};

		parse(&p, cols, CLI_PARSE_BRIEF_HELP, ARGV("-h"));
		assert_string_equal(p.out, "usage: bcdr test [OPTIONS] [ARG...]\n\nTests.\n\n");
		parse(&p, cols, 0, ARGV("-h"));
		assert_non_null(strstr(p.out, "options:\n"
					      "  -a, --a   first\n"
					      "            second\n"
					      "      --longer-than-that X pushed\n"
					      "  -c, --plan FILE"));
	}
}

static void test_too_many_options(void **state)
{
	struct cli_option many[CLI_OPTIONS_MAX + 2] = {};
	bool flag;
	struct parsed p;

	(void)state;
	for (size_t i = 0; i < CLI_OPTIONS_MAX + 1; i++)
		many[i] = (struct cli_option){ CLI_FLAG("x", 0, &flag, NULL) };
	parse(&p, many, 0, ARGV("-f"));
	assert_int_equal(p.code, EXIT_FAIL);
	assert_non_null(strstr(p.err, "more than 64 options"));
}

/* Random argv (printable and not) against the full table: no crash, no
 * leak (ASan), an exit code or CLI_CONTINUE each time. */
static void test_garbage(void **state)
{
	static const char *const pieces[] = { "-", "--", "-f", "--str", "--num", "=", "x", "-N",
					      "--list", "-l", "--help=", "--json", "-c", "",
					      "--dur", "--size", "--call", "--call=refuse", "-nnnn",
					      "---", "-\xff", "--\x01" };
	struct parsed p;

	(void)state;
	srand(13);
	for (int round = 0; round < 300; round++) {
		struct fields f = {};
		char buf[8][24];
		char *argv[10] = { "test" };
		int argc = 1 + rand() % 8;
		TABLE(f);

		for (int i = 1; i < argc; i++) {
			if (rand() % 3) {
				snprintf(buf[i], sizeof(buf[i]), "%s", pieces[rand() % ELEMENTSOF(pieces)]);
			} else {
				size_t n = (size_t)(rand() % 20);

				for (size_t k = 0; k < n; k++)
					buf[i][k] = (char)(1 + rand() % 255);
				buf[i][n] = 0;
			}
			argv[i] = buf[i];
		}
		argv[argc] = NULL;
		parse(&p, options, (unsigned)(rand() % 4), argv);
		assert_true(p.code == CLI_CONTINUE || p.code == EXIT_OK || p.code == EXIT_USAGE);
		assert_true(p.optind >= 1 && p.optind <= argc);
		strv_free(f.list);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kinds_fill_their_fields),
		cmocka_unit_test(test_attached_and_equals),
		cmocka_unit_test(test_double_dash_ends_options),
		cmocka_unit_test(test_permute_takes_options_after_operands),
		cmocka_unit_test(test_missing_and_unknown),
		cmocka_unit_test(test_bad_numbers),
		cmocka_unit_test(test_a_callback_ends_the_parse),
		cmocka_unit_test(test_common_options),
		cmocka_unit_test(test_help),
		cmocka_unit_test(test_too_many_options),
		cmocka_unit_test(test_garbage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

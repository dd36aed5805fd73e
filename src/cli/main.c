/* bcdr: business continuity and disaster recovery for one Linux server. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "lib/err.h"
#include "lib/log.h"
#include "plan/plan.h"

int cli_load_plan(struct cli *cli, bool required)
{
	const char *path = cli->plan_path ? cli->plan_path : plan_default_path();
	char *error = NULL;
	int r;

	if (cli->plan)
		return 0;
	if (!path) {
		if (required) {
			log_error("no plan: pass -c FILE, or write ./bcdr.yaml or /etc/bcdr/bcdr.yaml "
				  "(examples/ has plans to start from)");
			return EXIT_FAIL;
		}
		r = plan_new_empty(&cli->plan);
		return r < 0 ? (log_error_errno(r, "cannot create an empty plan"), EXIT_FAIL) : 0;
	}
	r = plan_load(path, &cli->plan, &error);
	if (r < 0) {
		log_error("%s", error ? error : err_str(r));
		free(error);
		return EXIT_FAIL;
	}
	return 0;
}

void cli_print_table(const char *group, const struct command *const *table)
{
	size_t width = 0;

	for (size_t i = 0; table[i]; i++)
		if (strlen(table[i]->name) > width)
			width = strlen(table[i]->name);
	printf("usage: bcdr %s%sCOMMAND [OPTIONS]\n\ncommands:\n", group ? group : "",
	       group ? " " : "[-c PLAN] [--json] ");
	for (size_t i = 0; table[i]; i++)
		printf("  %-*s  %s\n", (int)width, table[i]->name, table[i]->summary);
	printf("\nsee 'bcdr %s%sCOMMAND --help' for the options of one\n", group ? group : "",
	       group ? " " : "");
}

int cli_dispatch(struct cli *cli, const char *group, const struct command *const *table, int argc,
		 char **argv)
{
	const struct command *parent = cli->command;

	if (argc < 1) {
		if (group) {
			cli_print_table(group, table);
			return EXIT_USAGE;
		}
		return cli_usage_error(NULL, "no command given");
	}
	if (group && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0 ||
		      strcmp(argv[0], "help") == 0)) {
		cli_print_table(group, table);
		return EXIT_OK;
	}
	for (size_t i = 0; table[i]; i++) {
		if (strcmp(table[i]->name, argv[0]) != 0)
			continue;
		cli->command = table[i];
		cli->group = group;
		optind = 0; /* each command parses its own argv with getopt */
		return table[i]->run(cli, argc, argv);
	}
	cli->command = parent;
	if (group)
		return cli_usage_error(NULL, "'%s' is not a '%s' command (bcdr %s help lists them)",
				       argv[0], group, group);
	return cli_usage_error(NULL, "'%s' is not a bcdr command", argv[0]);
}

int cli_run_group(struct cli *cli, int argc, char **argv)
{
	return cli_dispatch(cli, cli->command->name, cli->command->subcommands, argc - 1, argv + 1);
}

/* A command whose usage text lives in a module (module-commands.c), or
 * whose options list comes from its table, is asked for it: it answers
 * --help (after loading its module). */
static int print_usage(struct cli *cli, const struct command *c)
{
	char *argv[] = { (char *)c->name, (char *)"--help", NULL };

	if (c->usage && !c->help_runs) {
		printf("usage: bcdr %s\n", c->usage);
		return EXIT_OK;
	}
	cli->command = c;
	optind = 0;
	return c->run(cli, 2, argv);
}

static int run_help(struct cli *cli, int argc, char **argv)
{
	if (argc > 1) {
		for (size_t i = 0; cli_commands[i]; i++)
			if (strcmp(cli_commands[i]->name, argv[1]) == 0)
				return print_usage(cli, cli_commands[i]);
		return cli_usage_error(NULL, "no help for '%s': not a bcdr command", argv[1]);
	}
	puts("bcdr keeps a server's business running through faults and disasters.\n");
	cli_print_table(NULL, cli_commands);
	return EXIT_OK;
}

const struct command cmd_help = {
	"help", "show the commands, or the help of one", "help [COMMAND]", run_help,
};

static int run_version(struct cli *cli, int argc, char **argv)
{
	int code = argv ? cli_parse(cli, argc, argv, NULL, CLI_PARSE_BRIEF_HELP) : CLI_CONTINUE;

	if (code != CLI_CONTINUE)
		return code;
	if (cli->json)
		printf("{\"version\":\"%s\"}\n", BCDR_VERSION);
	else
		printf("bcdr %s\n", BCDR_VERSION);
	return EXIT_OK;
}

const struct command cmd_version = {
	"version", "print the version", "version [--json]", run_version,
};

int main(int argc, char **argv)
{
	static const struct option options[] = { CLI_COMMON_LONG };
	struct cli cli = { 0 };
	int opt, code;

	/* Global options come before the command: bcdr -c plan.yaml backup ... */
	while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT, options, NULL)) != -1) {
		if (opt == 'h') {
			run_help(&cli, 0, NULL);
			return EXIT_OK;
		}
		code = cli_common_option(&cli, opt, optarg);
		if (code != CLI_CONTINUE)
			return code;
	}
	if (optind >= argc) {
		run_help(&cli, 0, NULL);
		return EXIT_USAGE;
	}
	if (strcmp(argv[optind], "--version") == 0)
		return run_version(&cli, 0, NULL);
	code = cli_dispatch(&cli, NULL, cli_commands, argc - optind, argv + optind);
	plan_free(cli.plan);
	fflush(stdout);
	if (ferror(stdout)) {
		log_error("cannot write the output");
		return EXIT_FAIL;
	}
	return code;
}

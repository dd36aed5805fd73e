/* The backup engine's commands as the binary knows them: name and summary,
 * for `bcdr help`, which so loads nothing. Each runs the command of the
 * same name from bcdr-backup.so (backup/module.h); their usage text lives
 * there too (a NULL usage: main.c's help asks the command itself). */
#include <stdio.h>
#include <string.h>

#include "backup/commands.h"
#include "backup/module.h"
#include "cli/cli.h"
#include "lib/log.h"

static int run_in_module(struct cli *cli, int argc, char **argv);

#define BACKUP_COMMAND_STUB(id, summary) \
	const struct command cmd_##id = { #id, summary, NULL, run_in_module };
BACKUP_COMMANDS(BACKUP_COMMAND_STUB)

static const struct command *const stubs[] = { BACKUP_COMMANDS(BACKUP_COMMAND_ADDRESS) NULL };

static const struct command *find(const struct command *const *table, const char *name)
{
	for (size_t i = 0; table[i]; i++)
		if (strcmp(table[i]->name, name) == 0)
			return table[i];
	return NULL;
}

/* The module's commands must be the ones listed here, with the same
 * summaries: a module that differs is from another source tree. */
static bool module_matches(const struct command *const *commands)
{
	size_t n = 0;

	for (; commands[n]; n++)
		;
	if (n != sizeof(stubs) / sizeof(stubs[0]) - 1)
		return false;
	for (size_t i = 0; stubs[i]; i++) {
		const struct command *c = find(commands, stubs[i]->name);

		if (!c || strcmp(c->summary, stubs[i]->summary) != 0)
			return false;
	}
	return true;
}

static int run_in_module(struct cli *cli, int argc, char **argv)
{
	const char *why = NULL;
	const struct backup_ops *o = backup_module(&why);
	const struct command *c;

	if (!o)
		return EXIT_FAIL; /* backup_module() logged why */
	c = find(o->commands, cli->command->name);
	if (!c || !module_matches(o->commands)) {
		log_error("the commands of the backup engine '%s' are not those of this bcdr: "
			  "reinstall bcdr", BACKUP_MODULE_NAME);
		return EXIT_FAIL;
	}
	cli->command = c;
	return c->run(cli, argc, argv);
}

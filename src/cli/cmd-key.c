/* bcdr key: the passwords of a repository (each wraps the same master key). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backup/password.h"
#include "cli/repo-cli.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/secret.h"

static int new_password(const char *file, char **ret)
{
	const char *env = getenv("BCDR_NEW_PASSWORD_FILE");
	int r;

	if (!file && env && *env)
		file = env;
	if (!file && (env = getenv("BCDR_NEW_PASSWORD"))) {
		*ret = strdup(env);
		r = *ret ? 0 : -ENOMEM;
	} else if (file) {
		r = password_read_file(file, ret);
	} else {
		/* Not BCDR_PASSWORD*: those name the current password. */
		r = isatty(0) ? 0 : -ENOKEY;
		if (r == 0) {
			_cleanup_secret_ char *saved =
				getenv("BCDR_PASSWORD") ? strdup(getenv("BCDR_PASSWORD")) : NULL;

			unsetenv("BCDR_PASSWORD");
			unsetenv("BCDR_PASSWORD_FILE");
			r = password_get(NULL, "new password", true, ret);
		}
	}
	if (r == -ENOKEY)
		log_error("no new password: use --new-password-file, BCDR_NEW_PASSWORD_FILE or "
			  "BCDR_NEW_PASSWORD");
	else if (r == -EINVAL)
		log_error("the passwords do not match");
	else if (r < 0 && file) {
		char why[8400];

		secret_message(r, "new password", file, why, sizeof(why));
		log_error("%s", why);
	} else if (r < 0)
		log_error_errno(r, "cannot read the new password");
	else if (!**ret) {
		log_error("an empty password protects nothing: choose one");
		secret_free(TAKE_PTR(*ret));
		return -EINVAL;
	}
	return r;
}

static int key_change(struct cli *cli, int argc, char **argv, bool replace)
{
	const char *file = NULL;
	_cleanup_secret_ char *password = NULL;
	struct repo_cli rc = {};
	struct repo *repo = NULL;
	char name[65], old[65];
	int code, r;

	const struct cli_option options[] = {
		{ CLI_COLUMN(32) },
		{ CLI_STRING("new-password-file", 0, &file, "FILE", "the new password") },
		REPO_CLI_OPTIONS(&rc),
		{}
	};

	code = repo_cli_parse_open(cli, argc, argv, options, CLI_PARSE_NO_OPERANDS, &rc, &repo);
	if (code != CLI_CONTINUE)
		return code;
	if (new_password(file, &password) < 0) {
		repo_free(repo);
		return EXIT_FAIL;
	}
	snprintf(old, sizeof(old), "%s", repo->key_name);
	/* The new key is durable before the old one goes. */
	r = repo_add_key(repo, password, name);
	if (r >= 0 && replace)
		r = repo_remove_key(repo, old);
	repo_free(repo);
	if (r < 0)
		return repo_cli_error(r, "cannot store the new key", rc.path);
	if (cli->json) {
		_cleanup_json_ json_t *j = json_object();

		json_set_str(j, "key", name);
		if (replace)
			json_set_str(j, "removed", old);
		json_print(stdout, j);
	} else if (!cli->quiet) {
		printf(replace ? "password changed: key %.8s replaces %.8s\n" : "added key %.8s\n",
		       name, old);
	}
	return EXIT_OK;
}

static int run_key_passwd(struct cli *cli, int argc, char **argv)
{
	return key_change(cli, argc, argv, true);
}

static int run_key_add(struct cli *cli, int argc, char **argv)
{
	return key_change(cli, argc, argv, false);
}

static const struct command cmd_key_passwd = {
	"passwd", "change the password (the data is not re-encrypted)",
	"key passwd [--new-password-file FILE] [--repo DIR]\n\n"
	"Wraps the repository's master key with a new password and removes the key\n"
	"the current password opened. The new password comes from FILE,\n"
	"BCDR_NEW_PASSWORD_FILE, BCDR_NEW_PASSWORD or a prompt.\n",
	run_key_passwd,
};

static const struct command cmd_key_add = {
	"add", "add another password",
	"key add [--new-password-file FILE] [--repo DIR]\n\n"
	"Adds a key for a second password; both open the repository.\n",
	run_key_add,
};

static const struct command *const key_commands[] = { &cmd_key_passwd, &cmd_key_add, NULL };

const struct command cmd_key = {
	"key", "change or add repository passwords",
	"key passwd|add [--new-password-file FILE] [--repo DIR]",
	cli_run_group,
	.subcommands = key_commands,
};

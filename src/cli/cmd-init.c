/* bcdr init: create a repository. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup/password.h"
#include "cli/repo-cli.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/secret.h"
#include "lib/timeutil.h"

static int run_init(struct cli *cli, int argc, char **argv)
{
	const char *lock = NULL, *lock_mode = NULL;
	usec_t lock_for = 0;
	struct repo_cli rc = {};
	_cleanup_secret_ char *password = NULL;
	struct repo *repo = NULL;
	int code, r;

	const struct cli_option options[] = {
		REPO_CLI_OPTIONS(&rc),
		{ CLI_STRING("object-lock", 0, &lock, "DAYS",
			     "s3: a new bucket with Object Lock; every object is\n"
			     "kept (not deletable) for DAYS, like '30d'") },
		{ CLI_STRING("object-lock-mode", 0, &lock_mode, "M",
			     "compliance (default: nobody can shorten it) or\ngovernance") },
		{}
	};

	code = cli_parse(cli, argc, argv, options, CLI_PARSE_PERMUTE | CLI_PARSE_NO_OPERANDS);
	if (code != CLI_CONTINUE)
		return code;
	if (lock && (duration_parse(lock, &lock_for) < 0 || lock_for < 24 * 3600 * USEC_PER_SEC ||
		     lock_for > 36500ull * 24 * 3600 * USEC_PER_SEC))
		return cli_usage_error(cli, "--object-lock takes whole days from 1d, like '30d'");
	if (lock_mode && strcmp(lock_mode, "compliance") && strcmp(lock_mode, "governance"))
		return cli_usage_error(cli, "--object-lock-mode is compliance or governance");
	code = repo_cli_resolve(cli, &rc);
	if (code)
		return code;
	if (lock) {
		if (strncmp(rc.location, "s3:", 3) != 0)
			return cli_usage_error(cli, "--object-lock needs an s3: location");
		rc.options.object_lock_days = lock_for / (24 * 3600 * USEC_PER_SEC);
		rc.options.object_lock_governance = lock_mode && !strcmp(lock_mode, "governance");
	}
	r = password_get(rc.password_file, "new repository password", true, &password);
	if (r == -EINVAL) {
		log_error("the passwords do not match");
		return EXIT_FAIL;
	}
	if (r < 0 && r != -ENOKEY) {
		char why[8400];

		secret_message(r, "password",
			       rc.password_file ? rc.password_file : getenv("BCDR_PASSWORD_FILE"),
			       why, sizeof(why));
		log_error("%s", why);
		return EXIT_FAIL;
	}
	if (r < 0)
		return repo_cli_error(r, "cannot read the password", rc.path);
	if (!*password) {
		log_error("an empty password protects nothing: choose one");
		return EXIT_FAIL;
	}
	r = repo_init_at(rc.location, &rc.options, password, &repo);
	if (r == -EEXIST) {
		log_error("cannot create a repository in '%s': it is not empty (a repository "
			  "is there already?)", rc.path);
		return EXIT_FAIL;
	}
	if (r < 0)
		return repo_cli_error(r, "cannot create the repository", rc.path);
	if (cli->json) {
		_cleanup_json_ json_t *j = json_object();

		json_set_str(j, "id", repo->id);
		json_set_str(j, "path", rc.path);
		json_set_int(j, "version", REPO_FORMAT_VERSION);
		json_print(stdout, j);
	} else if (!cli->quiet) {
		printf("created repository %.8s at '%s'\n", repo->id, rc.path);
		printf("keep the password safe: without it the data cannot be read\n");
	}
	repo_free(repo);
	return EXIT_OK;
}

const struct command cmd_init = {
	"init", "create a repository",
	"init [--repo DIR|URL] [--password-file FILE] [--json]\n\n"
	"Creates an encrypted repository in DIR (missing or empty), or at a\n"
	"rest:https://HOST:PORT/PATH, s3:https://HOST/BUCKET[/PREFIX] or\n"
	"sftp:[USER@]HOST:/PATH location (an S3 bucket is created when missing).\n"
	"The password wraps a random master key; change it later with\n"
	"'bcdr key passwd'.\n",
	run_init,
};

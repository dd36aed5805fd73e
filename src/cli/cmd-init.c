/* bcdr init: create a repository. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "backup/password.h"
#include "cli/repo-cli.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/log.h"

static int run_init(struct cli *cli, int argc, char **argv)
{
	static const struct option options[] = { REPO_CLI_LONG, CLI_COMMON_LONG };
	struct repo_cli rc = {};
	_cleanup_free_ char *password = NULL;
	struct repo *repo = NULL;
	int opt, code, r;

	while ((opt = getopt_long(argc, argv, "c:qvh" REPO_CLI_SHORT, options, NULL)) != -1) {
		if (repo_cli_option(&rc, opt, optarg))
			continue;
		code = cli_common_option(cli, opt, optarg);
		if (code != CLI_CONTINUE)
			return code;
	}
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	code = repo_cli_resolve(cli, &rc);
	if (code)
		return code;
	r = password_get(rc.password_file, "new repository password", true, &password);
	if (r == -EINVAL) {
		log_error("the passwords do not match");
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
	"'bcdr key passwd'.\n\n"
	"options:\n" REPO_CLI_HELP CLI_COMMON_HELP,
	run_init,
};

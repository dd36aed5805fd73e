/* bcdr copy: snapshots into a second repository (redundancy). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup/copy.h"
#include "backup/password.h"
#include "cli/repo-cli.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/secret.h"

static int to_password(const char *file, char **ret)
{
	const char *env = getenv("BCDR_TO_PASSWORD_FILE");

	if (!file && env && *env)
		file = env;
	if (file)
		return password_read_file(file, ret);
	if ((env = getenv("BCDR_TO_PASSWORD"))) {
		*ret = strdup(env);
		return *ret ? 0 : -ENOMEM;
	}
	return -ENOKEY;
}

static int run_copy(struct cli *cli, int argc, char **argv)
{
	const char *to = NULL, *to_file = NULL;
	_cleanup_secret_ char *password = NULL;
	struct repo_cli rc = {}, trc = {};
	struct repo *src = NULL, *dst = NULL;
	int code, r = 0, copied = 0;

	const struct cli_option options[] = {
		{ CLI_COLUMN(32) },
		{ CLI_CALL("to-repo", 0, repo_cli_take_location, &to, "DIR|URL|NAME",
			   "the destination repository") },
		{ CLI_STRING("to-password-file", 0, &to_file, "FILE", "its password") },
		REPO_CLI_OPTIONS(&rc),
		{}
	};

	code = cli_parse(cli, argc, argv, options, CLI_PARSE_PERMUTE);
	if (code != CLI_CONTINUE)
		return code;
	if (optind == argc)
		return cli_usage_error(cli, "name the snapshots to copy (IDs or 'latest')");
	if (!to)
		return cli_usage_error(cli, "say where to copy to: --to-repo DIR|URL");
	trc.repo = to;
	if ((code = repo_cli_resolve(cli, &trc)))
		return code;
	if (!to_file)
		to_file = trc.password_file;
	r = to_password(to_file, &password);
	if (r < 0) {
		if (r == -ENOKEY)
			log_error("no password for '%s': use --to-password-file, BCDR_TO_PASSWORD_FILE "
				  "or BCDR_TO_PASSWORD", trc.path);
		else {
			char why[8400];

			secret_message(r, "password",
				       to_file ? to_file : getenv("BCDR_TO_PASSWORD_FILE"), why,
				       sizeof(why));
			log_error("%s", why);
		}
		return EXIT_FAIL;
	}
	if ((code = repo_cli_open(cli, &rc, &src)))
		return code;
	r = repo_open_at(trc.location, &trc.options, password, &dst);
	if (*repo_key_refusal())
		log_warning("repository '%s': %s", trc.path, repo_key_refusal());
	if (r < 0) {
		repo_free(src);
		if (r == -BCDR_ERR_NOT_FOUND || r == -ENOENT)
			log_error("no repository at '%s': create it with 'bcdr init --repo %s'", trc.path,
				  trc.path);
		else
			repo_cli_error(r, "cannot open the destination", trc.path);
		return EXIT_FAIL;
	}
	if ((code = repo_cli_lock(src, false)) || (code = repo_cli_lock(dst, false))) {
		repo_free(src);
		repo_free(dst);
		return code;
	}
	for (int i = optind; i < argc && r >= 0; i++) {
		struct snapshot *s = NULL;
		struct copy_result res;
		char id[9], nid[9], hex[65], nhex[65], size[32];

		r = repo_find_snapshot(src, argv[i], &s);
		if (r < 0) {
			log_error("snapshot '%s': %s", argv[i], r == -BCDR_ERR_NOT_FOUND ? "not found" :
				  r == -BCDR_ERR_AMBIGUOUS ? "ambiguous, give more of its ID" :
				  err_str(r));
			break;
		}
		r = copy_snapshot(src, dst, s, &res);
		if (r < 0) {
			repo_cli_error(r, "copy failed", trc.path);
			snapshot_free(s);
			break;
		}
		copied++;
		hex_encode(s->id, 32, hex);
		hex_encode(res.new_id, 32, nhex);
		if (cli->json) {
			_cleanup_json_ json_t *j = json_object();

			json_set_str(j, "snapshot", hex);
			json_set_bool(j, "skipped", res.skipped);
			if (!res.skipped) {
				json_set_str(j, "copy", nhex);
				json_set_int(j, "blobs_copied", (long long)res.blobs_copied);
				json_set_int(j, "bytes_copied", (long long)res.bytes_copied);
			}
			json_print(stdout, j);
		} else if (!cli->quiet) {
			if (res.skipped)
				printf("snapshot %s is already in '%s'\n", short_id(s->id, id), trc.path);
			else
				printf("snapshot %s copied to '%s' as %s (%s new data)\n",
				       short_id(s->id, id), trc.path, short_id(res.new_id, nid),
				       size_format(res.bytes_copied, size, sizeof(size)));
		}
		snapshot_free(s);
	}
	repo_free(src);
	repo_free(dst);
	return r < 0 ? EXIT_FAIL : EXIT_OK;
}

const struct command cmd_copy = {
	"copy", "copy snapshots to a second repository",
	"copy SNAP... --to-repo DIR|URL|NAME [--to-password-file FILE] [--repo DIR|URL]\n\n"
	"Copies snapshots into another repository, which has its own key: each\n"
	"chunk is checked, re-keyed and stored unless the destination has it. A\n"
	"snapshot already copied is skipped. The destination's password comes\n"
	"from FILE, BCDR_TO_PASSWORD_FILE or BCDR_TO_PASSWORD (or its plan entry).\n",
	run_copy,
};

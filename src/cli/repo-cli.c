#include "cli/repo-cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backup/password.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/secret.h"
#include "plan/plan.h"
#include "repo/remote.h"

static char kept[4][LOCATION_MAX + 1];
static size_t nkept;

const char *repo_cli_hide_secret(char *arg)
{
	const char *scheme = arg ? strstr(arg, "://") : NULL;
	char *auth, *end, *at = NULL, *colon, *copy;

	if (!scheme)
		return arg;
	auth = (char *)scheme + 3;
	end = auth + strcspn(auth, "/?#");
	for (char *p = auth; p < end; p++)
		if (*p == '@')
			at = p;
	colon = at ? memchr(auth, ':', at - auth) : NULL;
	/* one slot each for --repo and --to-repo, for the life of the command */
	if (!colon || nkept >= ELEMENTSOF(kept) || strlen(arg) > LOCATION_MAX)
		return arg;
	copy = kept[nkept++];
	snprintf(copy, LOCATION_MAX + 1, "%s", arg);
	/* /proc/PID/cmdline shows argv's memory: mask the password there */
	memset(colon + 1, '*', at - colon - 1);
	return copy;
}

int repo_cli_take_location(struct cli *cli, const struct cli_option *o, const char *arg)
{
	(void)cli;
	*(const char **)o->field = repo_cli_hide_secret((char *)arg);
	return CLI_CONTINUE;
}

/* A location must parse before anything is asked (a password, ...). */
static int set_location(struct repo_cli *rc, const char *text)
{
	struct location *loc = NULL;
	const char *why = NULL;
	int r = location_parse(text, &loc, &why);

	location_free(loc);
	location_redact(text, rc->shown, sizeof(rc->shown));
	rc->location = text;
	rc->path = rc->shown;
	if (r == -EINVAL) {
		log_error("bad repository location '%s': %s", rc->shown, why);
		return EXIT_USAGE;
	}
	if (r < 0) {
		log_error_errno(r, "cannot read the repository location");
		return EXIT_FAIL;
	}
	return 0;
}

int repo_cli_resolve(struct cli *cli, struct repo_cli *rc)
{
	const struct repository_def *def = NULL;
	const char *want = rc->repo ? rc->repo : getenv("BCDR_REPOSITORY");
	int code;

	if (want && *want && strchr(want, '/'))
		return set_location(rc, want);
	code = cli_load_plan(cli, false);
	if (code)
		return code;
	if (want && *want) {
		def = backup_plan_repo(cli->plan->backup, want);
		if (!def)
			return set_location(rc, want); /* a relative directory name */
	} else if (cli->plan->backup && cli->plan->backup->nrepos == 1) {
		def = &cli->plan->backup->repos[0];
	} else {
		log_error("no repository: pass --repo DIR|URL, set BCDR_REPOSITORY, or name one in "
			  "the plan's repositories:");
		return EXIT_USAGE;
	}
	if ((code = set_location(rc, def->path)))
		return code;
	backup_repo_options(def, &rc->options);
	if (!rc->password_file)
		rc->password_file = def->password_file;
	return 0;
}

int repo_cli_error(int r, const char *what, const char *path)
{
	switch (r) {
	case -BCDR_ERR_AUTH:
		log_error("wrong password: no key of repository '%s' opens with it", path);
		break;
	case -BCDR_ERR_VERSION:
		log_error("repository '%s' uses a newer format than this bcdr supports (version %d): "
			  "upgrade bcdr", path, REPO_FORMAT_VERSION);
		break;
	case -BCDR_ERR_NOT_FOUND:
		log_error("%s: not found in '%s'", what, path);
		break;
	case -ENOKEY:
		log_error("no password: use --password-file, BCDR_PASSWORD_FILE or BCDR_PASSWORD");
		break;
	case -BCDR_ERR_LOCKED:
		log_error("repository '%s' is locked: %s (a lock of a process that is gone is "
			  "removed automatically)", path, repo_lock_conflict());
		break;
	case -BCDR_ERR_LOCK_LOST:
		log_error(
			"%s: the lock on '%s' was removed as stale while this process was stopped "
			"or cut off from the repository for longer than the stale age; nothing was "
			"committed: run it again",
			what, path);
		break;
	case -BCDR_ERR_UNSUPPORTED:
		log_error("%s: this bcdr cannot reach '%s' (its kind of location is not built in)",
			  what, path);
		break;
	case -ENOSPC:
		if (*remote_error(r)) {
			log_error("%s: %s", what, remote_error(r));
			break;
		}
		log_error("%s: no space left on the device of '%s'; the repository is unchanged "
			  "up to the last snapshot", what, path);
		break;
	default:
		if (*remote_error(r))
			log_error("%s: %s", what, remote_error(r));
		else
			log_error_errno(r, "%s ('%s')", what, path);
	}
	return EXIT_FAIL;
}

int repo_cli_open(struct cli *cli, struct repo_cli *rc, struct repo **ret)
{
	_cleanup_secret_ char *password = NULL;
	int code = repo_cli_resolve(cli, rc), r;

	if (code)
		return code;
	r = password_get(rc->password_file, "repository password", false, &password);
	if (r < 0) {
		if (r == -ENOKEY)
			return repo_cli_error(r, "password", rc->path);
		char why[8400];

		secret_message(r, "password",
			       rc->password_file ? rc->password_file : getenv("BCDR_PASSWORD_FILE"),
			       why, sizeof(why));
		log_error("%s", why);
		return EXIT_FAIL;
	}
	r = repo_open_at(rc->location, &rc->options, password, ret);
	if (*repo_key_refusal())
		log_warning("repository '%s': %s", rc->path, repo_key_refusal());
	if (r == -BCDR_ERR_NOT_FOUND || r == -ENOENT || r == -ENOTDIR) {
		log_error("no repository at '%s': create one with 'bcdr init --repo %s'", rc->path,
			  rc->path);
		return EXIT_FAIL;
	}
	if (r == -BCDR_ERR_CORRUPT) {
		log_error("cannot open repository '%s': its config is damaged", rc->path);
		return EXIT_FAIL;
	}
	if (r < 0)
		return repo_cli_error(r, "cannot open the repository", rc->path);
	return 0;
}

int repo_cli_parse_open(struct cli *cli, int argc, char **argv, const struct cli_option *options,
			unsigned flags, struct repo_cli *rc, struct repo **ret)
{
	int code = cli_parse(cli, argc, argv, options, flags | CLI_PARSE_PERMUTE);

	if (code != CLI_CONTINUE)
		return code; /* EXIT_OK too, after --help */
	code = repo_cli_open(cli, rc, ret);
	return code ? code : CLI_CONTINUE;
}

int repo_cli_lock(struct repo *repo, bool exclusive)
{
	int r = repo_lock(repo, exclusive);

	/* Reading needs no lock when none can be written (a full or read-only
	 * file system): better a check or a restore than none. */
	if (!exclusive && (r == -ENOSPC || r == -EROFS || r == -EDQUOT)) {
		log_warning("cannot write a lock in '%s' (%s): going on without one",
			    repo->backend->location, err_str(r));
		return 0;
	}
	if (r < 0)
		return repo_cli_error(r, "cannot lock", repo->backend->location);
	return 0;
}

bool repo_cli_progress_wanted(struct cli *cli)
{
	return cli->json || (!cli->quiet && isatty(STDERR_FILENO));
}

void repo_cli_progress_print(struct cli *cli, const struct repo_cli_progress_line *l)
{
	double secs = (double)l->elapsed / USEC_PER_SEC;
	double rate = secs > 0 ? (double)l->bytes_done / secs : 0;
	bool known = !l->total_may_grow || l->total_known;
	char key[32], done[32], total[32], rs[32];

	if (cli->json) {
		_cleanup_json_ json_t *j = json_object();

		json_set_str(j, "type", "progress");
		snprintf(key, sizeof(key), "%s_done", l->unit);
		json_set_int(j, key, (long long)l->done);
		snprintf(key, sizeof(key), "%s_total", l->unit);
		json_set_int(j, key, (long long)l->total);
		json_set_int(j, "bytes_done", (long long)l->bytes_done);
		json_set_int(j, "bytes_total", (long long)l->bytes_total);
		if (l->total_may_grow)
			json_set_bool(j, "total_known", l->total_known);
		json_set_real(j, "elapsed_s", secs);
		json_print(stdout, j);
		fflush(stdout);
		return;
	}
	if (cli->quiet || !isatty(STDERR_FILENO))
		return;
	size_format(l->bytes_done, done, sizeof(done));
	size_format(l->bytes_total, total, sizeof(total));
	size_format((uint64_t)rate, rs, sizeof(rs));
	fprintf(stderr, "\r\033[K[%d:%02d] %llu/%llu%s %s, %s/%s, %s/s", (int)secs / 60,
		(int)secs % 60, (unsigned long long)l->done, (unsigned long long)l->total,
		known ? "" : "+", l->unit, done, total, rs);
	if (known && rate > 0 && l->bytes_total > l->bytes_done) {
		int eta = (int)((double)(l->bytes_total - l->bytes_done) / rate);

		fprintf(stderr, ", ETA %d:%02d", eta / 60, eta % 60);
	}
	fflush(stderr);
}

void repo_cli_progress(const struct backup_progress *p, void *userdata)
{
	const struct repo_cli_progress_line line = {
		.unit = "files",
		.done = p->files_done,
		.total = p->files_seen,
		.bytes_done = p->bytes_done,
		.bytes_total = p->bytes_seen,
		.elapsed = p->elapsed,
		.total_may_grow = true,
		.total_known = p->walk_done,
	};

	repo_cli_progress_print(userdata, &line);
}

void repo_cli_progress_done(struct cli *cli)
{
	if (!cli->json && !cli->quiet && isatty(STDERR_FILENO))
		fprintf(stderr, "\r\033[K");
}

const char *short_id(const uint8_t id[32], char out[9])
{
	char hex[65];

	hex_encode(id, 32, hex);
	memcpy(out, hex, 8);
	out[8] = 0;
	return out;
}

/* bcdr backup: store paths as a new snapshot. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backup/backup.h"
#include "backup/hooks.h"
#include "backup/stdin-source.h"
#include "cli/repo-cli.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/strv.h"
#include "plan/plan.h"

static int read_exclude_file(const char *path, char ***v, size_t *n)
{
	_cleanup_free_ char *data = NULL;
	char *line, *rest;
	size_t len;
	int r = fs_read_file(path, 1 << 20, &data, &len);

	if (r < 0)
		return r;
	rest = data;
	while ((line = strsep(&rest, "\n"))) {
		line[strcspn(line, "\r")] = 0;
		if (!*line || *line == '#')
			continue;
		if ((r = strv_push(v, n, line)) < 0)
			return r;
	}
	return 0;
}

static int take_exclude_file(struct cli *cli, const struct cli_option *opt, const char *arg)
{
	char ***exclude = opt->field;
	size_t n = strv_length(*exclude);
	int r = read_exclude_file(arg, exclude, &n);

	(void)cli;
	if (r < 0) {
		log_error_errno(r, "cannot read the exclude file '%s'", arg);
		return EXIT_FAIL;
	}
	return CLI_CONTINUE;
}

static void skipped(const char *path, int error, void *userdata)
{
	struct cli *cli = userdata;

	repo_cli_progress_done(cli);
	log_warning("cannot read '%s': %s (skipped, recorded in the snapshot)", path, err_str(error));
}

static int run_backup(struct cli *cli, int argc, char **argv);

/* A job's after: hooks, told how it went; their failure is an error. */
static int after_hooks(const struct backup_job *job, char *const *env, int code,
		       const struct snapshot *s, const char *message)
{
	char hex[65] = "", msg[512];

	if (!job || !job->after.n)
		return code;
	if (s && code != EXIT_FAIL)
		hex_encode(s->id, 32, hex);
	if (hooks_run_after(job, env, code != EXIT_FAIL, message, hex, msg, sizeof(msg)) < 0) {
		log_error("%s", msg);
		return EXIT_FAIL;
	}
	return code;
}

static int backup_main(struct cli *cli, int argc, char **argv, const struct backup_job **ret_job,
		       char ***ret_env, struct snapshot **ret_s, bool *ret_own_repo, char *message,
		       size_t msize);

static void copied_one(const char *id, const char *copy_id, uint64_t bytes, void *userdata)
{
	struct cli *cli = ((void **)userdata)[0];
	const char *copy = ((void **)userdata)[1];
	char size[32];

	if (cli->json) {
		_cleanup_json_ json_t *j = json_object();

		json_set_str(j, "type", "copy");
		json_set_str(j, "copy", copy);
		json_set_str(j, "snapshot", id);
		json_set_str(j, "copy_snapshot", copy_id);
		json_set_int(j, "bytes_copied", (long long)bytes);
		json_print(stdout, j);
	} else if (!cli->quiet) {
		printf("copy to '%s': snapshot %.8s copied as %.8s (%s new data)\n", copy, id,
		       copy_id, size_format(bytes, size, sizeof(size)));
		fflush(stdout);
	}
}

/* The job's copies: brought up to date one after the other, as the
 * agent does after a run; a failed one leaves the others going. */
static int job_copies(struct cli *cli, const struct backup_job *job, int code)
{
	for (size_t i = 0; i < job->ncopies; i++) {
		struct backup_copy_result res;
		void *ud[2] = { cli, job->copies[i] };
		int r;

		if (!cli->json && !cli->quiet) {
			printf("copy to '%s'...\n", job->copies[i]);
			fflush(stdout);
		}
		r = backup_job_copy(cli->plan, job->name, job->copies[i], false, copied_one, ud,
				    &res);
		if (cli->json) {
			_cleanup_json_ json_t *j = json_object();

			json_set_str(j, "type", "copy_summary");
			json_set_str(j, "copy", job->copies[i]);
			json_set_bool(j, "ok", r >= 0);
			json_set_int(j, "snapshots", res.copied);
			json_set_int(j, "bytes_copied", (long long)res.bytes_copied);
			json_set_real(j, "duration_s", res.duration_s);
			json_set_str(j, "message", res.message);
			json_print(stdout, j);
		} else if (r >= 0 && !cli->quiet) {
			printf("copy to '%s': %s\n", job->copies[i], res.message);
		}
		if (r < 0) {
			log_error("%s", res.message);
			code = EXIT_PROBLEMS; /* the snapshot is saved */
		}
	}
	return code;
}

static int run_backup(struct cli *cli, int argc, char **argv)
{
	const struct backup_job *job = NULL;
	_cleanup_strv_free_ char **env = NULL;
	struct snapshot *s = NULL;
	char message[512] = "";
	bool own_repo = false;
	int code =
		backup_main(cli, argc, argv, &job, &env, &s, &own_repo, message, sizeof(message));

	if (job && env)
		code = after_hooks(job, env, code, s, message[0] ? message : code == EXIT_FAIL ?
				   "backup failed" : "snapshot saved");
	/* After the hooks, as the agent does: a long copy keeps nothing frozen. */
	if (job && s && own_repo && code != EXIT_FAIL)
		code = job_copies(cli, job, code);
	snapshot_free(s);
	return code;
}

/* The backup; the job (once its before: hooks ran), its environment and
 * the snapshot go to the caller for the after: hooks. */
static int backup_main(struct cli *cli, int argc, char **argv, const struct backup_job **ret_job,
		       char ***ret_env, struct snapshot **ret_s, bool *ret_own_repo, char *message,
		       size_t msize)
{
	_cleanup_strv_free_ char **exclude = NULL, **tags = NULL, **paths = NULL;
	size_t nexclude, ntags, npaths = 0;
	struct repo_cli rc = {};
	struct backup_options o = {};
	/* Declared after what it uses: stopped and freed before them. */
	_cleanup_(backup_walk_freep) struct backup_walk *walk = NULL;
	_cleanup_(stdin_source_freep) struct stdin_source *src = NULL;
	_cleanup_strv_free_ char **command = NULL;
	const struct backup_job *job = NULL;
	const char *job_name = NULL, *stdin_name = NULL;
	bool from_stdin = false, from_command = false;
	struct repo *repo = NULL;
	struct snapshot *s = NULL;
	size_t ncommand = 0;
	int code, r;
	const struct cli_option options[] = {
		{ CLI_COLUMN(26) },
		{ CLI_LIST("exclude", 'e', &exclude, "GLOB",
			   "skip matching paths (with a '/': the full path,\n"
			   "else the name), repeatable") },
		{ CLI_CALL("exclude-file", 0, take_exclude_file, &exclude, "F",
			   "one GLOB per line") },
		{ CLI_FLAG("one-file-system", 0, &o.one_file_system,
			   "do not descend into other file systems") },
		{ CLI_LIST("tag", 0, &tags, "TAG", "label the snapshot, repeatable") },
		{ CLI_STRING("host", 0, &o.host, "HOST", "record HOST instead of this host's name") },
		{ CLI_STRING("job", 0, &job_name, "NAME",
			     "the plan's backup job: its paths, excludes, tags\nand repository") },
		{ CLI_FLAG("force", 0, &o.force, "read every file, even unchanged ones") },
		{ CLI_FLAG("stdin-from-command", 0, &from_command,
			   "store the standard output of the command after --") },
		{ CLI_FLAG("stdin", 0, &from_stdin, "store the standard input") },
		{ CLI_STRING("stdin-filename", 0, &stdin_name, "N",
			     "the stored file's name (default 'stdin')") },
		REPO_CLI_OPTIONS(&rc),
		{}
	};

	code = cli_parse(cli, argc, argv, options, CLI_PARSE_PERMUTE);
	if (code != CLI_CONTINUE)
		return code;
	nexclude = strv_length(exclude);
	ntags = strv_length(tags);
	if (from_stdin && from_command)
		return cli_usage_error(cli, "--stdin and --stdin-from-command exclude each other");
	if (stdin_name && !from_stdin && !from_command)
		return cli_usage_error(cli, "--stdin-filename names what --stdin or "
				       "--stdin-from-command stores");
	if (from_stdin && optind < argc)
		return cli_usage_error(cli, "--stdin stores standard input: no PATH with it");
	if (from_stdin && isatty(STDIN_FILENO))
		return cli_usage_error(cli, "--stdin reads the standard input, which is a terminal: "
				       "pipe the data in (pg_dump shop | bcdr backup --stdin ...)");
	if (from_command && optind == argc)
		return cli_usage_error(cli, "name the command: bcdr backup --stdin-from-command "
				       "--stdin-filename NAME -- PROGRAM [ARG...]");
	for (int i = optind; i < argc; i++)
		if (strv_push(from_command ? &command : &paths, from_command ? &ncommand : &npaths,
			      argv[i]) < 0)
			return EXIT_FAIL;
	if (!stdin_name)
		stdin_name = "stdin"; /* restic's default */
	if (strchr(stdin_name, '/') || !stdin_name[0] || !strcmp(stdin_name, ".") ||
	    !strcmp(stdin_name, "..") || strlen(stdin_name) > 255)
		return cli_usage_error(cli, "--stdin-filename takes a file name without '/'");
	if (job_name) {
		code = cli_load_plan(cli, true);
		if (code)
			return code;
		job = backup_plan_job(cli->plan->backup, job_name);
		if (!job) {
			log_error("no backup job '%s' in the plan '%s'", job_name, cli->plan->path);
			return EXIT_FAIL;
		}
		if (!rc.repo) {
			rc.repo = job->repo->name;
			*ret_own_repo = true; /* its copies: are copies of this repository */
		}
		for (char **p = job->paths; !npaths && p && *p; p++)
			if (strv_push(&paths, &npaths, *p) < 0)
				return EXIT_FAIL;
		for (char **p = job->exclude; p && *p; p++)
			if (strv_push(&exclude, &nexclude, *p) < 0)
				return EXIT_FAIL;
		for (char **p = job->tags; p && *p; p++)
			if (strv_push(&tags, &ntags, *p) < 0)
				return EXIT_FAIL;
		o.one_file_system |= job->one_file_system;
		o.job = job->name;
		if (job->command && !from_stdin && !from_command) {
			if (!(command = strv_copy(job->command)))
				return EXIT_FAIL;
			from_command = true;
			stdin_name = job->filename;
		}
		r = job_env(job, ret_env, message, msize);
		if (r < 0) {
			log_error("%s", message[0] ? message : err_str(r));
			return EXIT_FAIL;
		}
		r = hooks_run(&job->before, *ret_env, "before", message, msize);
		*ret_job = job; /* the after: hooks run from here on */
		if (r < 0) {
			log_error("%s: backup not run", message);
			return EXIT_FAIL;
		}
	}
	if (!npaths && !from_stdin && !from_command)
		return cli_usage_error(cli, "name what to back up: bcdr backup PATH... (or --job NAME, "
				       "--stdin, --stdin-from-command)");
	for (size_t i = 0; i < npaths; i++)
		if (access(paths[i], F_OK) < 0) {
			log_error_errno(-errno, "cannot back up '%s'", paths[i]);
			return EXIT_FAIL;
		}
	if (from_command) {
		r = stdin_source_command(command, *ret_env, stdin_name, &src);
		if (r < 0) {
			log_error_errno(r, "cannot run '%s'", command[0]);
			return EXIT_FAIL;
		}
	} else if (from_stdin && (r = stdin_source_fd(STDIN_FILENO, stdin_name, &src)) < 0) {
		log_error_errno(r, "cannot read the standard input");
		return EXIT_FAIL;
	}
	if (src)
		o.stream = stdin_source_stream(src);
	o.paths = paths;
	o.exclude = exclude;
	o.tags = tags;
	o.skipped = skipped;
	o.userdata = cli;
	if (repo_cli_progress_wanted(cli))
		o.progress = repo_cli_progress;
	/* The walk goes on while the password's key is derived. */
	r = backup_walk_start(&o, &walk);
	if (r < 0) {
		log_error_errno(r, "cannot start the backup");
		return EXIT_FAIL;
	}
	o.walk = walk;
	code = repo_cli_open(cli, &rc, &repo);
	if (code) {
		if (src)
			stdin_source_finish(src, -ECANCELED);
		return code;
	}
	r = backup_run(repo, &o, &s);
	repo_cli_progress_done(cli);
	if (src)
		stdin_source_finish(src, r); /* when backup_run failed before reading */
	if (r < 0 && r != -BCDR_ERR_PARTIAL) {
		if (src && stdin_source_message(src)[0]) {
			log_error("%s: no snapshot saved", stdin_source_message(src));
			snprintf(message, msize, "%s", stdin_source_message(src));
			code = EXIT_FAIL;
		} else {
			code = repo_cli_error(r, "backup failed", rc.path);
		}
		repo_free(repo);
		return code;
	}
	{
		struct snapshot_summary *m = &s->summary;
		char id[9], hex[65], added[32], stored[32], processed[32];

		hex_encode(s->id, 32, hex);
		if (cli->json) {
			_cleanup_json_ json_t *j = json_object(), *sum = snapshot_summary_json(m);

			json_set_str(j, "type", "summary");
			json_set_str(j, "snapshot", hex);
			json_object_update(j, sum);
			json_print(stdout, j);
		} else if (!cli->quiet) {
			printf("snapshot %s saved\n", short_id(s->id, id));
			printf("files: %llu new, %llu changed, %llu unchanged; %llu directories\n",
			       (unsigned long long)m->files_new, (unsigned long long)m->files_changed,
			       (unsigned long long)m->files_unchanged, (unsigned long long)m->dirs);
			printf("data: %s processed, %s added (%s stored) in %.2fs\n",
			       size_format(m->bytes_processed, processed, sizeof(processed)),
			       size_format(m->bytes_added, added, sizeof(added)),
			       size_format(m->bytes_stored, stored, sizeof(stored)), m->duration_s);
			if (m->errors)
				printf("skipped: %llu unreadable files or directories (see above)\n",
				       (unsigned long long)m->errors);
		}
	}
	*ret_s = s;
	repo_free(repo);
	return r == -BCDR_ERR_PARTIAL ? EXIT_PROBLEMS : EXIT_OK;
}

const struct command cmd_backup = {
	"backup",
	"back up files and directories as a new snapshot",
	"backup [PATH...] [--job NAME] [--exclude GLOB]... [--exclude-file FILE]\n"
	"       [--one-file-system] [--tag TAG]... [--host HOST] [--force] [--repo DIR]\n"
	"   or: bcdr backup --stdin-from-command [--stdin-filename NAME] -- PROGRAM [ARG...]\n"
	"   or: bcdr backup --stdin [--stdin-filename NAME]\n\n"
	"Stores PATHs as a new snapshot. Files unchanged since the last snapshot of\n"
	"the same paths (size, mtime, ctime, inode) are not read again. Unreadable\n"
	"files are reported, skipped and recorded; the exit status is then 3.\n\n"
	"With --stdin-from-command, PROGRAM runs (no shell) and its standard output\n"
	"is stored as the file NAME (default 'stdin') of the snapshot, chunked and\n"
	"deduplicated like any file: `-- pg_dump shop`. If it exits non-zero or is\n"
	"killed, no snapshot is saved and its standard error says why (exit 1).\n"
	"--stdin stores bcdr's own standard input the same way. A --job whose plan\n"
	"gives command: and filename: runs that command, and its before: and after:\n"
	"hooks, and then brings the job's copies: up to date (each snapshot of the\n"
	"job the copy lacks, newer than its newest; exit status 3 when one fails).\n",
	run_backup,
};

/* The agent's seam: a plan's backup job run, its newest snapshot, and the
 * restore drill. */
#include "backup/backup.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backup/copy.h"
#include "backup/db-drill.h"
#include "backup/forget.h"
#include "backup/hooks.h"
#include "backup/password.h"
#include "backup/stdin-source.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/fs.h"
#include "lib/secret.h"
#include "plan/plan.h"
#include "repo/location.h"
#include "repo/remote.h"

void backup_repo_options(const struct repository_def *def, struct backend_options *o)
{
	*o = (struct backend_options){
		.connections = (unsigned)def->connections,
		.ca_file = def->ca_file,
		.timeout_usec = def->timeout,
		.retries = def->retries < 0 ? 0 : def->retries == 0 ? -1 : (int)def->retries,
		.region = def->region,
		.storage_class = def->storage_class,
		.addressing = (enum s3_addressing)def->virtual_host,
		.list_v1 = def->list_objects_v1,
		.access_key_id_file = def->access_key_id_file,
		.secret_access_key_file = def->secret_access_key_file,
		.profile = def->profile,
		.ssh_command = def->ssh_command,
	};
}

/* For the agent's API and dashboard: the location without a password,
 * and what the remote store said. */
static void open_failure(char *out, size_t size, const struct repository_def *def, int r)
{
	char shown[LOCATION_MAX + 8];

	location_redact(def->path, shown, sizeof(shown));
	if (r == -BCDR_ERR_INSECURE && def->password_file) {
		secret_message(r, "password", def->password_file, out, size);
		return;
	}
	snprintf(out, size, "cannot open repository '%.200s': %s", shown,
		 *remote_error(r) ? remote_error(r) : err_str(r));
}

int backup_open_plan_repo(const struct repository_def *def, struct repo **ret)
{
	_cleanup_secret_ char *password = NULL;
	int r = password_get(def->password_file, "repository password", false, &password);
	struct backend_options o;

	if (r < 0)
		return r;
	backup_repo_options(def, &o);
	r = repo_open_at(def->path, &o, password, ret);
	if (*repo_key_refusal())
		log_warning("repository '%s': %s", def->name, repo_key_refusal());
	return r;
}

static const struct backup_job *find_job(const struct plan *plan, const char *name)
{
	return plan ? backup_plan_job(plan->backup, name) : NULL;
}

static int run_job(const struct backup_job *job, char *const *envp,
		   struct backup_job_result *ret);

/* The job between its hooks: the after: hooks run whatever happened (once
 * the before: hooks started), told the outcome. */
int backup_job_run(const struct plan *plan, const char *job_name, struct backup_job_result *ret)
{
	const struct backup_job *job = find_job(plan, job_name);
	_cleanup_strv_free_ char **env = NULL;
	char msg[512], hex[65] = "";
	int r;

	memset(ret, 0, sizeof(*ret));
	if (!job) {
		snprintf(ret->message, sizeof(ret->message), "no backup job '%s' in the plan", job_name);
		return -BCDR_ERR_NOT_FOUND;
	}
	r = job_env(job, &env, msg, sizeof(msg));
	if (r < 0) {
		snprintf(ret->message, sizeof(ret->message), "%.480s: backup not run",
			 msg[0] ? msg : err_str(r));
		return r;
	}
	r = hooks_run(&job->before, env, "before", msg, sizeof(msg));
	if (r < 0)
		snprintf(ret->message, sizeof(ret->message), "%.450s: backup not run", msg);
	else
		r = run_job(job, env, ret);
	if (ret->ok)
		hex_encode(ret->snapshot, 32, hex);
	if (hooks_run_after(job, env, ret->ok, ret->message, hex, msg, sizeof(msg)) < 0) {
		size_t l = strlen(ret->message);

		snprintf(ret->message + l, sizeof(ret->message) - l, "; %s", msg);
		if (r >= 0)
			r = -ECHILD;
	}
	return r;
}

static int run_job(const struct backup_job *job, char *const *envp,
		   struct backup_job_result *ret)
{
	_cleanup_(repo_freep) struct repo *repo = NULL;
	_cleanup_(snapshot_freep) struct snapshot *s = NULL;
	_cleanup_(stdin_source_freep) struct stdin_source *src = NULL;
	struct backup_options o = {};
	_cleanup_(backup_walk_freep) struct backup_walk *walk = NULL;
	struct forget_result fr = {};
	int r, rf;

	if (job->command) {
		r = stdin_source_command(job->command, envp, job->filename, &src);
		if (r < 0) {
			snprintf(ret->message, sizeof(ret->message), "cannot run '%s': %s",
				 job->command[0], err_str(r));
			return r;
		}
		o.stream = stdin_source_stream(src);
	}
	o.paths = job->paths;
	o.exclude = job->exclude;
	o.tags = job->tags;
	o.job = job->name;
	o.one_file_system = job->one_file_system;
	/* The walk goes on while the password's key is derived. */
	r = backup_walk_start(&o, &walk);
	if (r < 0) {
		snprintf(ret->message, sizeof(ret->message), "cannot back up: %s", err_str(r));
		return r;
	}
	o.walk = walk;
	r = backup_open_plan_repo(job->repo, &repo);
	if (r < 0) {
		if (src)
			stdin_source_finish(src, r);
		open_failure(ret->message, sizeof(ret->message), job->repo, r);
		return r;
	}
	r = backup_run(repo, &o, &s);
	if (src) /* when backup_run failed before it read the stream */
		stdin_source_finish(src, r);
	if (r < 0 && r != -BCDR_ERR_PARTIAL) {
		if (src && stdin_source_message(src)[0])
			snprintf(ret->message, sizeof(ret->message), "%.400s: no snapshot saved",
				 stdin_source_message(src));
		else
			snprintf(ret->message, sizeof(ret->message), "backup failed: %s",
				 *remote_error(r) ? remote_error(r) : err_str(r));
		return r;
	}
	ret->ok = true;
	ret->partial = r == -BCDR_ERR_PARTIAL;
	memcpy(ret->snapshot, s->id, 32);
	ret->time = s->time;
	ret->summary = s->summary;
	if (keep_policy_set(&job->keep)) {
		rf = forget_run(repo, &job->keep, job->name, false, NULL, NULL, &fr);
		if (rf < 0) {
			snprintf(ret->message, sizeof(ret->message),
				 "snapshot saved, but forget failed: %s", err_str(rf));
			return rf;
		}
		ret->forgotten = (unsigned)fr.removed;
	}
	{
		char hex[65], size[32];

		hex_encode(s->id, 32, hex);
		snprintf(ret->message, sizeof(ret->message),
			 "snapshot %.8s: %llu new, %llu changed, %llu unchanged files, %s added%s%s",
			 hex, (unsigned long long)s->summary.files_new,
			 (unsigned long long)s->summary.files_changed,
			 (unsigned long long)s->summary.files_unchanged,
			 size_format(s->summary.bytes_added, size, sizeof(size)),
			 ret->partial ? ", some files skipped" : "",
			 ret->forgotten ? ", older snapshots forgotten" : "");
	}
	return r;
}

/* The newest snapshot of the job in repository def. */
static int newest_in(const struct backup_job *job, const struct repository_def *def,
		     usec_t *ret_time)
{
	_cleanup_(repo_freep) struct repo *repo = NULL;
	struct snapshot **v;
	size_t n;
	int r = backup_open_plan_repo(def, &repo);

	if (r < 0)
		return r;
	r = repo_list_snapshots(repo, &v, &n);
	if (r < 0)
		return r;
	r = -BCDR_ERR_NOT_FOUND;
	for (size_t i = n; i-- > 0;)
		if (v[i]->job && strcmp(v[i]->job, job->name) == 0) {
			*ret_time = v[i]->time;
			r = 0;
			break;
		}
	snapshots_free(v, n);
	return r;
}

int backup_job_newest(const struct plan *plan, const char *job_name, usec_t *ret_time)
{
	return backup_job_newest_in(plan, job_name, NULL, ret_time);
}

int backup_job_newest_in(const struct plan *plan, const char *job_name, const char *repo,
			 usec_t *ret_time)
{
	const struct backup_job *job = find_job(plan, job_name);
	const struct repository_def *def = job ? job->repo : NULL;

	if (job && repo)
		def = backup_plan_repo(plan->backup, repo);
	if (!def)
		return -BCDR_ERR_NOT_FOUND;
	return newest_in(job, def, ret_time);
}

/* ---- copies: ---- */

struct copy_ctx {
	const struct backup_job *job;
	char host[256];
	void (*each)(const char *id, const char *copy_id, uint64_t bytes, void *userdata);
	void *userdata;
};

static bool copy_wanted(const struct snapshot *s, void *userdata)
{
	const struct copy_ctx *c = userdata;

	return s->job && strcmp(s->job, c->job->name) == 0 && strcmp(s->host, c->host) == 0;
}

static void copy_each(const struct snapshot *s, const struct copy_result *r, void *userdata)
{
	const struct copy_ctx *c = userdata;
	char id[65], nid[65];

	if (!c->each)
		return;
	hex_encode(s->id, 32, id);
	hex_encode(r->new_id, 32, nid);
	c->each(id, nid, r->bytes_copied, c->userdata);
}

int backup_job_copy(const struct plan *plan, const char *job_name, const char *copy, bool keep,
		    void (*each)(const char *id, const char *copy_id, uint64_t bytes,
				 void *userdata),
		    void *userdata, struct backup_copy_result *ret)
{
	const struct backup_job *job = find_job(plan, job_name);
	const struct repository_def *def = NULL;
	_cleanup_(repo_freep) struct repo *src = NULL, *dst = NULL;
	struct copy_ctx c = { .job = job, .each = each, .userdata = userdata };
	struct copy_missing_result cm = {};
	usec_t start = now_monotonic();
	char size[32], why[450] = "";
	int r;

	memset(ret, 0, sizeof(*ret));
	for (size_t i = 0; job && i < job->ncopies; i++)
		if (strcmp(job->copies[i], copy) == 0)
			def = job->copy_repos[i];
	if (!def) {
		snprintf(ret->message, sizeof(ret->message), "backup job '%s' has no copy '%s'",
			 job_name, copy);
		return -BCDR_ERR_NOT_FOUND;
	}
	gethostname(c.host, sizeof(c.host) - 1);
	if ((r = backup_open_plan_repo(job->repo, &src)) < 0) {
		open_failure(why, sizeof(why), job->repo, r);
	} else if ((r = backup_open_plan_repo(def, &dst)) < 0) {
		open_failure(why, sizeof(why), def, r);
	} else if ((r = repo_lock(src, false)) < 0) {
		snprintf(why, sizeof(why), "cannot lock '%s': %s", job->repository, err_str(r));
	} else {
		if ((r = repo_lock(dst, false)) >= 0) {
			r = copy_missing(src, dst, copy_wanted, copy_each, &c, &cm);
			repo_unlock(dst);
		} else {
			snprintf(why, sizeof(why), "cannot lock '%s': %s", copy, err_str(r));
		}
		repo_unlock(src);
	}
	if (r < 0 && !why[0])
		snprintf(why, sizeof(why), "%s", *remote_error(r) ? remote_error(r) : err_str(r));
	ret->duration_s = (double)(now_monotonic() - start) / USEC_PER_SEC;
	ret->copied = cm.copied;
	ret->bytes_copied = cm.bytes_copied;
	ret->newest = cm.newest;
	if (r < 0) {
		if (cm.copied)
			snprintf(ret->message, sizeof(ret->message),
				 "copy to '%s' failed after %u "
				 "snapshots: %.400s",
				 copy, cm.copied, why);
		else
			snprintf(ret->message, sizeof(ret->message), "copy to '%s' failed: %.400s",
				 copy, why);
		return r;
	}
	ret->ok = true;
	/* The job's keep: holds in its copies too; data goes with a later
	 * prune there. A copy locked by someone else keeps its snapshots until
	 * the next copy, which is no reason to call the copy failed. */
	if (keep && cm.copied && keep_policy_set(&job->keep)) {
		struct forget_result fr = {};
		int rf = forget_run(dst, &job->keep, job->name, false, NULL, NULL, &fr);

		if (rf < 0)
			snprintf(why, sizeof(why), "; forget there failed (tried again after the next "
				 "copy): %.300s", err_str(rf));
		else if (fr.removed)
			snprintf(why, sizeof(why), ", %zu older forgotten there", fr.removed);
		ret->forgotten = rf < 0 ? 0 : (unsigned)fr.removed;
	}
	if (cm.copied)
		snprintf(ret->message, sizeof(ret->message),
			 "%u snapshot%s copied to '%s' (%s new data) in %.1fs%s", cm.copied,
			 cm.copied == 1 ? "" : "s", copy,
			 size_format(cm.bytes_copied, size, sizeof(size)), ret->duration_s, why);
	else
		snprintf(ret->message, sizeof(ret->message), "'%s' is up to date", copy);
	return 0;
}

/* After the restore: load the dump into a scratch database and ask it.
 * The RTO measured is from the drill's start to verified. */
static int db_drill(const struct backup_job *job, const char *target, usec_t start,
		    struct backup_drill_result *ret)
{
	_cleanup_free_ char *file = NULL;
	char msg[400];
	double verified = 0;
	bool ok = false;
	usec_t restored;
	int r;

	if (asprintf(&file, "%s/%s", target, job->filename) < 0) {
		fs_rm_rf(target);
		return -ENOMEM;
	}
	if (access(file, R_OK) < 0) {
		snprintf(ret->message, sizeof(ret->message),
			 "the newest snapshot has no '%s' to load", job->filename);
		ret->ok = false;
		fs_rm_rf(target);
		return 0;
	}
	restored = now_monotonic();
	r = db_drill_run(job, file, &ok, &verified, msg, sizeof(msg));
	fs_rm_rf(target);
	ret->ok = r >= 0 && ok;
	/* restore, setup, load and verify: not the teardown */
	ret->duration_s = (double)(restored - start) / USEC_PER_SEC + verified;
	snprintf(ret->message, sizeof(ret->message), "%.400s", msg);
	return r;
}

int backup_job_drill(const struct plan *plan, const char *job_name, const char *scratch_dir,
		     struct backup_drill_result *ret)
{
	const struct backup_job *job = find_job(plan, job_name);
	const struct repository_def *def;
	_cleanup_(repo_freep) struct repo *repo = NULL;
	struct snapshot **v = NULL, *s = NULL;
	struct restore_options o = { .verify = true };
	struct restore_result res = {};
	_cleanup_free_ char *target = NULL;
	usec_t start = now_monotonic();
	size_t n = 0;
	int r;

	memset(ret, 0, sizeof(*ret));
	if (!job) {
		snprintf(ret->message, sizeof(ret->message), "no backup job '%s' in the plan", job_name);
		return -BCDR_ERR_NOT_FOUND;
	}
	def = job->drill_repo ? job->drill_repo : job->repo;
	snprintf(ret->repository, sizeof(ret->repository), "%s", def->name);
	r = backup_open_plan_repo(def, &repo);
	if (r >= 0)
		r = repo_list_snapshots(repo, &v, &n);
	if (r < 0) {
		open_failure(ret->message, sizeof(ret->message), def, r);
		return r;
	}
	for (size_t i = n; i-- > 0 && !s;)
		if (v[i]->job && strcmp(v[i]->job, job->name) == 0)
			s = v[i];
	if (!s) {
		snapshots_free(v, n);
		snprintf(ret->message, sizeof(ret->message), "job '%s' has no snapshot in '%s' yet",
			 job_name, def->name);
		return -BCDR_ERR_NOT_FOUND;
	}
	memcpy(ret->snapshot, s->id, 32);
	if (asprintf(&target, "%s/bcdr-drill-%d-%llu", scratch_dir, (int)getpid(),
		     (unsigned long long)now_realtime()) < 0) {
		snapshots_free(v, n);
		return -ENOMEM;
	}
	r = repo_lock(repo, false);
	if (r >= 0) {
		o.target = target;
		r = restore_run(repo, s, &o, &res);
		repo_unlock(repo);
	}
	snapshots_free(v, n);
	ret->duration_s = (double)(now_monotonic() - start) / USEC_PER_SEC;
	ret->files = res.files;
	ret->bytes = res.bytes;
	ret->errors = res.errors;
	ret->ok = r >= 0 && res.verified == res.files;
	if (ret->ok && job->db.load)
		return db_drill(job, target, start, ret);
	fs_rm_rf(target);
	if (r < 0 && r != -BCDR_ERR_PARTIAL)
		snprintf(ret->message, sizeof(ret->message), "drill failed: %s",
			 *remote_error(r) ? remote_error(r) : err_str(r));
	else
		snprintf(ret->message, sizeof(ret->message),
			 "restored and verified %llu files (%llu bytes) in %.1fs, %llu errors",
			 (unsigned long long)res.verified, (unsigned long long)res.bytes,
			 ret->duration_s, (unsigned long long)res.errors);
	return r;
}

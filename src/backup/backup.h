/* The backup engine: what the CLI commands and the agent call.
 *
 * The agent's seam (CONTRACTS.md): backup_job_run() runs a plan's backup
 * job with its retention, backup_job_newest() gives the time of the newest
 * snapshot (for RPO) and backup_job_drill() restores the newest snapshot
 * into a scratch directory, verifies every byte against the repository's
 * hashes and reports the duration (for RTO); backup_job_copy() brings one
 * of the job's copies up to date and backup_job_newest_in() gives the
 * newest snapshot there (for the copy's RPO). All block; run them on a
 * worker thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backup/plan.h"
#include "lib/cleanup.h"
#include "lib/timeutil.h"
#include "repo/repo.h"

struct plan;

struct backup_progress {
	uint64_t files_done, files_seen, bytes_done, bytes_seen;
	bool walk_done;
	usec_t elapsed;
};

/* A stream stored as one file of the snapshot (a database dump): read
 * from fd to its end, chunked and deduplicated like any file. finish() is
 * called once the stream is stored and before the snapshot is saved (the
 * commit point) with the result so far; what it returns becomes the
 * result, so a dump command that failed leaves no snapshot. */
struct backup_stream {
	int fd;
	const char *filename; /* its name at the snapshot's root: "shop.sql" */
	int (*finish)(int r, void *userdata);
	void *userdata;
};

struct backup_options {
	char **paths;   /* what to back up, NULL-terminated (may be NULL with a stream) */
	const struct backup_stream *stream; /* or NULL */
	char **exclude; /* globs: with a '/' against the full path, else the name */
	char **tags;
	const char *host; /* NULL: this host's name */
	const char *job;  /* plan job name recorded in the snapshot, or NULL */
	bool one_file_system;
	bool force; /* read every file even when the parent has it unchanged */
	int threads; /* 0: one per CPU */
	/* From backup_walk_start() with these same options, or NULL (then
	 * backup_run() walks itself). */
	struct backup_walk *walk;
	/* Called about every second from another thread, may be NULL. */
	void (*progress)(const struct backup_progress *p, void *userdata);
	/* Called for each file or directory skipped (error < 0), may be NULL. */
	void (*skipped)(const char *path, int error, void *userdata);
	void *userdata;
};

/* The walk of opts->paths (lstat of every entry) on a thread of its own,
 * started before the repository is opened: the password's key derivation
 * and the loading of the parent snapshot then overlap with it. opts must
 * outlive the walk. backup_walk_free() stops it if still going. */
struct backup_walk;
int backup_walk_start(const struct backup_options *opts, struct backup_walk **ret);
void backup_walk_free(struct backup_walk *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct backup_walk *, backup_walk_free)

/* Backs up opts->paths into repo (a shared lock is taken). On success the
 * new snapshot goes to *ret (snapshot_free() it) and 0 is returned, or
 * -BCDR_ERR_PARTIAL when files were skipped (the snapshot is saved and
 * records them). */
int backup_run(struct repo *repo, const struct backup_options *opts, struct snapshot **ret);

struct restore_options {
	const char *target;
	char **include; /* paths in the snapshot to restore (with what is under them); NULL: all */
	int threads;
	bool verify; /* after writing, read every file back and check its chunks */
	bool progress_tty;
	void (*progress)(const struct backup_progress *p, void *userdata);
	/* A file that could not be restored fully (damaged chunk, I/O error). */
	void (*problem)(const char *path, const char *what, void *userdata);
	void *userdata;
};

struct restore_result {
	uint64_t files, dirs, links, bytes, errors, verified;
};

/* Restores snapshot s into opts->target. Damaged chunks are reported per
 * file through opts->problem, the rest completes: -BCDR_ERR_PARTIAL. */
int restore_run(struct repo *repo, const struct snapshot *s, const struct restore_options *opts,
		struct restore_result *ret);

/* ---- the agent's seam ---- */

struct backup_job_result {
	bool ok;           /* snapshot saved (maybe with skipped files) */
	bool partial;      /* some files were skipped */
	char message[512]; /* what happened, one line */
	uint8_t snapshot[32];
	usec_t time;
	struct snapshot_summary summary;
	unsigned forgotten; /* snapshots removed by the job's keep: policy */
};

/* Runs the job named job_name: backup, then forget by its keep: policy
 * (data is freed by a later prune). Returns 0, -BCDR_ERR_PARTIAL, or an
 * error (ret->message says what, in every case). */
int backup_job_run(const struct plan *plan, const char *job_name, struct backup_job_result *ret);

/* Time of the newest snapshot of the job in its repository;
 * -BCDR_ERR_NOT_FOUND when there is none. */
int backup_job_newest(const struct plan *plan, const char *job_name, usec_t *ret_time);

struct backup_drill_result {
	bool ok;
	char repository[128]; /* the name of the repositories: entry restored from */
	double duration_s; /* restore and verification, wall time */
	uint64_t files, bytes, errors;
	uint8_t snapshot[32];
	char message[512];
};

/* Restores the job's newest snapshot (in its drill's from: repository)
 * into a new directory under
 * scratch_dir, verifies every file byte for byte against the chunk IDs in
 * the repository, removes it again and reports. */
int backup_job_drill(const struct plan *plan, const char *job_name, const char *scratch_dir,
		     struct backup_drill_result *ret);

struct backup_copy_result {
	bool ok;
	unsigned copied;       /* snapshots copied now (0: the copy was up to date) */
	uint64_t bytes_copied; /* new data stored there */
	usec_t newest;         /* the job's newest snapshot in the copy; 0: none */
	unsigned forgotten;    /* snapshots the job's keep: removed there */
	double duration_s;
	char message[512]; /* what happened, one line */
};

/* Brings copy (a name in the job's copies:) up to date with the job's
 * repository: every snapshot of the job from this host newer than the
 * newest the copy holds, oldest first (so a run after a failed copy
 * catches up). each(), if not NULL, hears of every snapshot copied (hex
 * IDs in the job's repository and in the copy). Takes both repositories'
 * shared locks. With keep, the job's keep: then holds in the copy too, as
 * backup_job_run() applies it in the job's repository (the agent's way;
 * `bcdr backup --job` leaves retention to `bcdr forget`). */
int backup_job_copy(const struct plan *plan, const char *job_name, const char *copy, bool keep,
		    void (*each)(const char *id, const char *copy_id, uint64_t bytes,
				 void *userdata),
		    void *userdata, struct backup_copy_result *ret);

/* Time of the job's newest snapshot in the repository named repo (the
 * job's own when NULL); -BCDR_ERR_NOT_FOUND when there is none. */
int backup_job_newest_in(const struct plan *plan, const char *job_name, const char *repo,
			 usec_t *ret_time);

/* Opens the repository of a plan's repositories: entry (password from its
 * password_file, else BCDR_PASSWORD_FILE, else BCDR_PASSWORD). */
int backup_open_plan_repo(const struct repository_def *def, struct repo **ret);
/* The backend options a plan's repositories: entry gives. */
void backup_repo_options(const struct repository_def *def, struct backend_options *o);

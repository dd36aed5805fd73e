/* The plan's repositories: and backups: sections.
 *
 *   repositories:
 *     - name: local
 *       path: /srv/backup/repo      # or sftp:, rest:, s3: (repo/location.h)
 *       password_file: /etc/bcdr/repo.pass
 *       connections: 8              # remote: parallel requests
 *       ca_file: /etc/ssl/my-ca.pem # remote over https: trust this CA
 *       region: eu-west-1           # s3 (also storage_class, virtual_host,
 *                                   # access_key_id_file, secret_access_key_file,
 *                                   # profile)
 *   backups:
 *     - name: home
 *       repository: local
 *       paths: [/home]
 *       exclude: ["*.tmp", "/home/x/.cache"]
 *       one_file_system: true
 *       tags: [nightly]
 *       schedule: every 1h        # or a 5-field cron line "15 2 * * *"
 *       rpo: 2h
 *       rto: 30m
 *       keep: {last: 3, hourly: 24, daily: 7, weekly: 4, monthly: 12, yearly: 2}
 *       drill: weekly             # daily, weekly, monthly or "every 3d"
 *       copies: [offsite]         # after each snapshot, copied there too
 *       # drill: {from: offsite, every: weekly}   # restore from a copy
 *
 * bcdr parses and checks all of it; the agent runs schedule and drill. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/conf.h"
#include "lib/timeutil.h"

struct plan;

struct repository_def {
	char *name;
	char *path; /* a location: a directory or a URL */
	char *password_file;
	/* how to reach a remote location (repo/backend.h, backend_options) */
	int64_t connections; /* 0: the default */
	usec_t timeout;      /* 0: the default */
	int64_t retries;     /* -1: the default */
	char *ca_file;
	char *region, *storage_class, *profile;
	char *access_key_id_file, *secret_access_key_file;
	/* s3: 0 auto, 1 false, 2 true (the order of enum s3_addressing) */
	int virtual_host;
	bool list_objects_v1;
	char *ssh_command; /* sftp */
};

/* Retention: how many snapshots to keep per bucket, -1 when unset. */
struct keep_policy {
	int64_t last, hourly, daily, weekly, monthly, yearly;
};

/* A schedule: every `every` microseconds, or a cron line (fields as bit
 * sets: minute 0-59, hour 0-23, day of month 1-31, month 1-12, weekday 0-6
 * with 7 accepted for Sunday). */
struct schedule {
	usec_t every; /* 0 for a cron schedule */
	uint64_t minutes;
	uint32_t hours, days, months;
	uint8_t weekdays;
	bool dom_star, dow_star; /* cron's "either day field" rule */
	char *text;
};

/* Programs run around a job: each an argument vector, never a shell. */
struct argv_list {
	char ***v; /* n argvs, each NULL-terminated */
	size_t n;
};

/* env: NAME: FILE, the value read from FILE when the job runs (first line,
 * without its newline): secrets stay out of the plan. */
struct env_file {
	char *name, *path;
};

/* A database drill: the newest snapshot restored, then setup, load (the
 * stream's file on stdin), verify (its output judged by expect), and
 * teardown whatever happened. */
struct db_drill {
	char **setup, **load, **verify, **teardown;
	char *expect; /* ">= 200000", "> 0", "= 3", "200000" (>=), else text in the output */
	usec_t timeout; /* of each step; 0: 1h */
};

struct backup_job {
	char *name;
	char *repository; /* name of a repositories: entry */
	char **paths, **exclude, **tags;
	bool one_file_system;
	struct schedule schedule; /* schedule.text NULL when unset */
	usec_t rpo, rto;
	struct keep_policy keep;
	char *drill; /* as written */
	usec_t drill_every; /* 0 when unset */
	char *drill_from;   /* the repository drills restore from; NULL: repository */
	char **copies;      /* names of repositories: entries the snapshots go to too */
	/* resolved by the validator */
	const struct repository_def *repo, *drill_repo;
	const struct repository_def **copy_repos; /* ncopies of them */
	size_t ncopies;
	/* A command whose standard output is stored as filename (beside or
	 * instead of paths), hooks around the run, its environment. */
	char **command;
	char *filename;
	struct argv_list before, after;
	struct env_file *env;
	size_t nenv;
	struct db_drill db; /* db.load NULL: a file drill */
};

struct backup_plan {
	struct repository_def *repos;
	size_t nrepos;
	struct backup_job *jobs;
	size_t njobs;
};

/* plan.c's hooks: each parses its section into plan->backup. */
int backup_plan_parse_repositories(struct conf_ctx *ctx, const struct conf_node *node,
				   struct plan *plan);
int backup_plan_parse_backups(struct conf_ctx *ctx, const struct conf_node *node,
			      struct plan *plan);
/* Each job names a repository of the plan, and copies and a drill's from:
 * other ones. */
int backup_plan_validate(struct conf_ctx *ctx, const struct conf_node *root, struct plan *plan);
void backup_plan_free(struct backup_plan *bp);

const struct backup_job *backup_plan_job(const struct backup_plan *bp, const char *name);
const struct repository_def *backup_plan_repo(const struct backup_plan *bp, const char *name);

/* "every 1h" or a 5-field cron line; -EINVAL with a message in *ret_why. */
int schedule_parse(const char *text, struct schedule *ret, const char **ret_why);
/* The first time after `after` (exclusive) the schedule fires. */
usec_t schedule_next(const struct schedule *s, usec_t after);

/* The time of the newest snapshot of the job (backup_job_newest()) and its
 * rpo, for the monitor's backup checks (probe_backup_newest_fn: plan is
 * the const struct plan). */
int backup_job_newest_rpo(void *plan, const char *job_name, usec_t *ret_newest, usec_t *ret_rpo);

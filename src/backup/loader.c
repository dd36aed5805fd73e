/* The binary's side of bcdr-backup.so (backup/module.h): the agent's seam
 * of backup/backup.h, each a call through the module's table, loaded on
 * first use by whichever thread comes first. */
#include "backup/module.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>

#include "lib/log.h"

static const struct backup_ops *loaded;
static char load_error[PATH_MAX + 256];
static pthread_once_t load_once = PTHREAD_ONCE_INIT;

static void load(void)
{
	const void *table;

	if (module_load(BACKUP_MODULE_NAME, BACKUP_OPS_SYMBOL, sizeof(struct backup_ops),
			"the backup engine", &table, load_error, sizeof(load_error)) < 0)
		log_error("%s", load_error);
	else
		loaded = table;
}

const struct backup_ops *backup_module(const char **ret_why)
{
	pthread_once(&load_once, load);
	if (!loaded && ret_why)
		*ret_why = load_error;
	return loaded;
}

const char *backup_module_error(void)
{
	return load_error;
}

/* A missing or broken module fails each call with -ELIBACC and says why
 * in the result's message, where the agent shows it. */

int backup_job_run(const struct plan *plan, const char *job_name, struct backup_job_result *ret)
{
	const char *why = NULL;
	const struct backup_ops *o = backup_module(&why);

	if (o)
		return o->job_run(plan, job_name, ret);
	snprintf(ret->message, sizeof(ret->message), "%.500s", why);
	return -ELIBACC;
}

int backup_job_newest(const struct plan *plan, const char *job_name, usec_t *ret_time)
{
	const struct backup_ops *o = backup_module(NULL);

	return o ? o->job_newest(plan, job_name, ret_time) : -ELIBACC;
}

int backup_job_drill(const struct plan *plan, const char *job_name, const char *scratch_dir,
		     struct backup_drill_result *ret)
{
	const char *why = NULL;
	const struct backup_ops *o = backup_module(&why);

	if (o)
		return o->job_drill(plan, job_name, scratch_dir, ret);
	snprintf(ret->message, sizeof(ret->message), "%.500s", why);
	return -ELIBACC;
}

int backup_job_copy(const struct plan *plan, const char *job_name, const char *copy, bool keep,
		    void (*each)(const char *id, const char *copy_id, uint64_t bytes,
				 void *userdata),
		    void *userdata, struct backup_copy_result *ret)
{
	const char *why = NULL;
	const struct backup_ops *o = backup_module(&why);

	if (o)
		return o->job_copy(plan, job_name, copy, keep, each, userdata, ret);
	snprintf(ret->message, sizeof(ret->message), "%.500s", why);
	return -ELIBACC;
}

int backup_job_newest_in(const struct plan *plan, const char *job_name, const char *repo,
			 usec_t *ret_time)
{
	const struct backup_ops *o = backup_module(NULL);

	return o ? o->job_newest_in(plan, job_name, repo, ret_time) : -ELIBACC;
}

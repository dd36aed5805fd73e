#include "backup/plan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backup/backup.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "plan/plan.h"
#include "repo/location.h"

/* virtual_host: the order of enum s3_addressing (repo/backend.h) */
static const char *const addressing_names[] = { "auto", "false", "true", NULL };

static const struct conf_field repo_fields[] = {
	CONF_FIELD("name", CONF_STRING, struct repository_def, name, CONF_REQUIRED),
	CONF_FIELD("path", CONF_STRING, struct repository_def, path, CONF_REQUIRED),
	CONF_FIELD("password_file", CONF_STRING, struct repository_def, password_file, 0),
	CONF_RANGE("connections", CONF_INT, struct repository_def, connections, 0, 1, 64),
	CONF_FIELD("ca_file", CONF_STRING, struct repository_def, ca_file, 0),
	CONF_FIELD("timeout", CONF_DURATION, struct repository_def, timeout, 0),
	CONF_RANGE("retries", CONF_INT, struct repository_def, retries, 0, 0, 100),
	CONF_FIELD("region", CONF_STRING, struct repository_def, region, 0),
	CONF_FIELD("storage_class", CONF_STRING, struct repository_def, storage_class, 0),
	CONF_FIELD("profile", CONF_STRING, struct repository_def, profile, 0),
	CONF_FIELD("access_key_id_file", CONF_STRING, struct repository_def, access_key_id_file,
		   0),
	CONF_FIELD("secret_access_key_file", CONF_STRING, struct repository_def,
		   secret_access_key_file, 0),
	CONF_ENUM_FIELD("virtual_host", struct repository_def, virtual_host, 0, addressing_names),
	CONF_FIELD("list_objects_v1", CONF_BOOL, struct repository_def, list_objects_v1, 0),
	CONF_FIELD("ssh_command", CONF_STRING, struct repository_def, ssh_command, 0),
	{}
};

static const struct conf_field keep_fields[] = {
	CONF_RANGE("last", CONF_INT, struct keep_policy, last, 0, 0, 100000),
	CONF_RANGE("hourly", CONF_INT, struct keep_policy, hourly, 0, 0, 100000),
	CONF_RANGE("daily", CONF_INT, struct keep_policy, daily, 0, 0, 100000),
	CONF_RANGE("weekly", CONF_INT, struct keep_policy, weekly, 0, 0, 100000),
	CONF_RANGE("monthly", CONF_INT, struct keep_policy, monthly, 0, 0, 100000),
	CONF_RANGE("yearly", CONF_INT, struct keep_policy, yearly, 0, 0, 100000),
	{}
};

static int parse_keep(struct conf_ctx *ctx, const struct conf_node *node, void *field)
{
	int r = conf_expect(ctx, node, CONF_NODE_MAP, "keep");

	if (r < 0)
		return r;
	return conf_parse_fields(ctx, node, keep_fields, field);
}

static int parse_schedule_field(struct conf_ctx *ctx, const struct conf_node *node, void *field)
{
	struct schedule *s = field;
	const char *why = NULL;

	if (node->type != CONF_NODE_SCALAR)
		return conf_errorf(ctx, node, "a schedule is 'every 1h' or a cron line '15 2 * * *'");
	if (schedule_parse(node->value, s, &why) < 0)
		return conf_errorf(ctx, node, "bad schedule '%s': %s", node->value, why);
	return 0;
}

/* An argument vector: a list of strings, the program first. */
static int parse_argv(struct conf_ctx *ctx, const struct conf_node *node, char ***ret,
		      const char *what)
{
	char **v;

	if (node->type != CONF_NODE_SEQ || node->n == 0)
		return conf_errorf(ctx, node, "%s is a list: the program and its arguments, "
				   "e.g. [pg_dump, shop] (never a shell line)", what);
	if (node->n > 4096)
		return conf_errorf(ctx, node, "%s: at most 4096 arguments", what);
	for (size_t i = 0; i < node->n; i++)
		if (node->items[i]->type != CONF_NODE_SCALAR)
			return conf_errorf(ctx, node->items[i], "%s: each argument is a string", what);
	if (!node->items[0]->value[0])
		return conf_errorf(ctx, node->items[0], "%s: the program's name is empty", what);
	v = calloc(node->n + 1, sizeof(char *));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < node->n; i++)
		if (!(v[i] = strdup(node->items[i]->value))) {
			strv_free(v);
			return -ENOMEM;
		}
	strv_free(*ret);
	*ret = v;
	return 0;
}

static int parse_command(struct conf_ctx *ctx, const struct conf_node *node, void *field)
{
	return parse_argv(ctx, node, field, "command");
}

static void argv_list_release(struct argv_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		strv_free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* One argv ([fsfreeze, -f, /srv]) or a list of them. */
static int parse_hooks(struct conf_ctx *ctx, const struct conf_node *node, void *field)
{
	struct argv_list *l = field;
	bool many = node->type == CONF_NODE_SEQ && node->n && node->items[0]->type == CONF_NODE_SEQ;
	size_t n = many ? node->n : 1;
	int r;

	if (n > 64)
		return conf_errorf(ctx, node, "at most 64 hooks");
	argv_list_release(l);
	if (!(l->v = calloc(n, sizeof(char **))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		r = parse_argv(ctx, many ? node->items[i] : node, &l->v[i], "a hook");
		if (r < 0)
			return r;
		l->n++;
	}
	return 0;
}

static bool env_name_ok(const char *s)
{
	if (!*s || strlen(s) > 128 || (*s >= '0' && *s <= '9'))
		return false;
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

static int parse_env(struct conf_ctx *ctx, const struct conf_node *node, void *field)
{
	struct backup_job *job =
		(struct backup_job *)((char *)field - offsetof(struct backup_job, env));
	int r = conf_expect(ctx, node, CONF_NODE_MAP, "env");

	if (r < 0)
		return r;
	if (node->n > 256)
		return conf_errorf(ctx, node, "env: at most 256 variables");
	if (!(job->env = calloc(node->n ? node->n : 1, sizeof(*job->env))))
		return -ENOMEM;
	for (size_t i = 0; i < node->n; i++) {
		const struct conf_node *k = node->pairs[i].key, *v = node->pairs[i].value;

		if (!env_name_ok(k->value))
			return conf_errorf(ctx, k, "env: '%s' is not a variable name", k->value);
		if (v->type != CONF_NODE_SCALAR || v->value[0] != '/')
			return conf_errorf(ctx, v, "env: the value of '%s' is the absolute path of a "
					   "file that holds it (values are never written in the "
					   "plan)", k->value);
		job->env[i].name = strdup(k->value);
		job->env[i].path = strdup(v->value);
		job->nenv++;
		if (!job->env[i].name || !job->env[i].path)
			return -ENOMEM;
	}
	return 0;
}

static int parse_step(struct conf_ctx *ctx, const struct conf_node *node, void *field)
{
	return parse_argv(ctx, node, field, "a drill step");
}

static int parse_drill_every(struct conf_ctx *ctx, const struct conf_node *node, void *field);

static const struct conf_field db_drill_fields[] = {
	CONF_CUSTOM_FIELD("every", struct backup_job, drill, 0, parse_drill_every),
	CONF_FIELD("from", CONF_STRING, struct backup_job, drill_from, 0),
	CONF_CUSTOM_FIELD("setup", struct backup_job, db.setup, 0, parse_step),
	CONF_CUSTOM_FIELD("load", struct backup_job, db.load, 0, parse_step),
	CONF_CUSTOM_FIELD("verify", struct backup_job, db.verify, 0, parse_step),
	CONF_FIELD("expect", CONF_STRING, struct backup_job, db.expect, 0),
	CONF_CUSTOM_FIELD("teardown", struct backup_job, db.teardown, 0, parse_step),
	CONF_FIELD("timeout", CONF_DURATION, struct backup_job, db.timeout, 0),
	{}
};

/* drill: weekly, or a map: its schedule in every:, the repository in
 * from:, and a database drill's steps. */
static int parse_drill(struct conf_ctx *ctx, const struct conf_node *node, void *field)
{
	static const char *const db_keys[] = { "setup", "verify", "expect", "teardown", "timeout" };
	struct backup_job *job =
		(struct backup_job *)((char *)field - offsetof(struct backup_job, drill));
	int r;

	if (node->type != CONF_NODE_MAP)
		return parse_drill_every(ctx, node, field);
	r = conf_parse_fields(ctx, node, db_drill_fields, job);
	if (r < 0)
		return r;
	if (!job->drill)
		return conf_errorf(ctx, node, "drill: say how often in every: (daily, weekly, "
				   "monthly or 'every DURATION')");
	for (size_t i = 0; !job->db.load && i < sizeof(db_keys) / sizeof(*db_keys); i++)
		if (conf_map_get(node, db_keys[i]))
			return conf_errorf(ctx, conf_map_get(node, db_keys[i]),
					   "drill: %s: is a step of a database drill, which needs "
					   "load: (the program that reads the dump)",
					   db_keys[i]);
	if (job->db.expect && !job->db.verify)
		return conf_errorf(ctx, conf_map_get(node, "expect"),
				   "expect: judges the output of verify:, which is missing");
	return 0;
}

static int parse_drill_every(struct conf_ctx *ctx, const struct conf_node *node, void *field)
{
	struct backup_job *job =
		(struct backup_job *)((char *)field - offsetof(struct backup_job, drill));
	const char *v = node->value;
	usec_t every = 0;

	if (node->type != CONF_NODE_SCALAR)
		return conf_errorf(ctx, node, "drill is daily, weekly, monthly or 'every DURATION'");
	if (strcmp(v, "daily") == 0)
		every = USEC_PER_DAY;
	else if (strcmp(v, "weekly") == 0)
		every = USEC_PER_WEEK;
	else if (strcmp(v, "monthly") == 0)
		every = 30 * USEC_PER_DAY;
	else if (strncmp(v, "every ", 6) != 0 || duration_parse(v + 6, &every) < 0 || every == 0)
		return conf_errorf(ctx, node,
				   "bad drill '%s': use daily, weekly, monthly or 'every DURATION'", v);
	free(job->drill);
	job->drill = strdup(v);
	job->drill_every = every;
	return job->drill ? 0 : -ENOMEM;
}

static const struct conf_field job_fields[] = {
	CONF_FIELD("name", CONF_STRING, struct backup_job, name, CONF_REQUIRED),
	CONF_FIELD("repository", CONF_STRING, struct backup_job, repository, CONF_REQUIRED),
	CONF_FIELD("paths", CONF_STRV, struct backup_job, paths, 0),
	CONF_FIELD("exclude", CONF_STRV, struct backup_job, exclude, 0),
	CONF_FIELD("tags", CONF_STRV, struct backup_job, tags, 0),
	CONF_FIELD("one_file_system", CONF_BOOL, struct backup_job, one_file_system, 0),
	CONF_CUSTOM_FIELD("schedule", struct backup_job, schedule, 0, parse_schedule_field),
	CONF_FIELD("rpo", CONF_DURATION, struct backup_job, rpo, 0),
	CONF_FIELD("rto", CONF_DURATION, struct backup_job, rto, 0),
	CONF_CUSTOM_FIELD("keep", struct backup_job, keep, 0, parse_keep),
	CONF_CUSTOM_FIELD("drill", struct backup_job, drill, 0, parse_drill),
	CONF_CUSTOM_FIELD("command", struct backup_job, command, 0, parse_command),
	CONF_FIELD("filename", CONF_STRING, struct backup_job, filename, 0),
	CONF_CUSTOM_FIELD("before", struct backup_job, before, 0, parse_hooks),
	CONF_CUSTOM_FIELD("after", struct backup_job, after, 0, parse_hooks),
	CONF_CUSTOM_FIELD("env", struct backup_job, env, 0, parse_env),
	CONF_FIELD("copies", CONF_STRV, struct backup_job, copies, 0),
	{}
};

static void repo_def_init(void *elem)
{
	((struct repository_def *)elem)->retries = -1; /* unset */
}

static void repo_release(void *elem)
{
	conf_free_fields(repo_fields, elem);
}

static void job_init(void *elem)
{
	struct backup_job *job = elem;

	job->keep = (struct keep_policy){ -1, -1, -1, -1, -1, -1 };
}

static void job_release(void *elem)
{
	struct backup_job *job = elem;

	conf_free_fields(job_fields, elem);
	free(job->schedule.text);
	free(job->drill);
	free(job->drill_from);
	free(job->copy_repos);
	job->schedule.text = NULL;
	job->drill = NULL;
	job->drill_from = NULL;
	job->copy_repos = NULL;
	job->ncopies = 0;
	strv_free(job->command);
	job->command = NULL;
	argv_list_release(&job->before);
	argv_list_release(&job->after);
	for (size_t i = 0; i < job->nenv; i++) {
		free(job->env[i].name);
		free(job->env[i].path);
	}
	free(job->env);
	job->env = NULL;
	job->nenv = 0;
	strv_free(job->db.setup);
	strv_free(job->db.load);
	strv_free(job->db.verify);
	strv_free(job->db.teardown);
	free(job->db.expect);
	job->db = (struct db_drill){};
}

/* One map of a list: the element's own checks come after its fields. */
static int parse_map(struct conf_ctx *ctx, const struct conf_node *item, const char *what,
		     const struct conf_field *fields, void *elem)
{
	int r = conf_expect(ctx, item, CONF_NODE_MAP, what);

	if (r < 0)
		return r;
	return conf_parse_fields(ctx, item, fields, elem);
}

static int parse_repo(struct conf_ctx *ctx, const struct conf_node *item, void *elem)
{
	struct repository_def *def = elem;
	struct location *loc = NULL;
	const char *why = NULL;
	int r = parse_map(ctx, item, "a repository", repo_fields, elem);

	if (r < 0)
		return r;
	r = location_parse(def->path, &loc, &why);
	location_free(loc);
	if (r == -EINVAL)
		return conf_errorf(ctx, conf_map_get(item, "path"), "path: %s", why);
	return r;
}

static int parse_job(struct conf_ctx *ctx, const struct conf_node *item, void *elem)
{
	struct backup_job *job = elem;
	int r = parse_map(ctx, item, "a backup job", job_fields, elem);

	if (r < 0)
		return r;
	if (job->filename && !job->command)
		return conf_errorf(ctx, conf_map_get(item, "filename"),
				   "filename: names the output of command:, which is missing");
	if (job->command && !job->filename)
		return conf_errorf(ctx, conf_map_get(item, "command"),
				   "command: needs filename: the name its output gets in the "
				   "snapshot, e.g. shop.sql");
	if (job->filename && (!job->filename[0] || strchr(job->filename, '/') ||
			      !strcmp(job->filename, ".") || !strcmp(job->filename, "..") ||
			      strlen(job->filename) > 255))
		return conf_errorf(ctx, conf_map_get(item, "filename"),
				   "filename: a file name without '/', at most 255 bytes");
	if (!job->command && (!job->paths || !job->paths[0]))
		return conf_errorf(ctx, conf_map_get(item, "paths") ? conf_map_get(item, "paths")
				   : item, "paths: name at least one path (or give command: "
				   "and filename:)");
	if (job->db.load && !job->command)
		return conf_errorf(ctx, conf_map_get(item, "drill"),
				   "drill: load: feeds the output of command: back, which is "
				   "missing");
	for (char **p = job->paths; p && *p; p++)
		if ((*p)[0] != '/' && strncmp(*p, "./", 2) != 0 && (*p)[0] == 0)
			return conf_errorf(ctx, conf_map_get(item, "paths"), "empty path");
	return 0;
}

/* How a section lists named elements (repositories:, backups:). */
struct named_list {
	size_t size; /* of an element, whose first field is its name */
	void (*init)(void *elem);
	int (*parse)(struct conf_ctx *ctx, const struct conf_node *item, void *elem);
	void (*release)(void *elem);
	const char *what;
};

static const struct named_list repo_list = {
	sizeof(struct repository_def), repo_def_init, parse_repo, repo_release, "repository",
};
static const struct named_list job_list = {
	sizeof(struct backup_job), job_init, parse_job, job_release, "backup job",
};

/* The list's elements, their names unique; nothing is returned on error. */
static int parse_named_list(struct conf_ctx *ctx, const struct conf_node *seq,
			    const struct named_list *l, void **ret, size_t *ret_n)
{
	void *array;
	size_t n;
	int r = conf_parse_list(ctx, seq, l->size, l->init, l->parse, l->release, &array, &n);

	if (r < 0)
		return r;
	for (size_t i = 0; r >= 0 && i < n; i++)
		for (size_t k = 0; r >= 0 && k < i; k++) {
			const char *a = *(char *const *)((const char *)array + i * l->size);
			const char *b = *(char *const *)((const char *)array + k * l->size);

			if (strcmp(a, b) == 0)
				r = conf_errorf(ctx, seq->items[i], "duplicate %s name '%s'", l->what, a);
		}
	if (r < 0) {
		for (size_t i = 0; i < n; i++)
			l->release((char *)array + i * l->size);
		free(array);
		return r;
	}
	*ret = array;
	*ret_n = n;
	return 0;
}

static int ensure_plan(struct plan *plan)
{
	if (!plan->backup && !(plan->backup = calloc(1, sizeof(*plan->backup))))
		return -ENOMEM;
	return 0;
}

int backup_plan_parse_repositories(struct conf_ctx *ctx, const struct conf_node *node,
				   struct plan *plan)
{
	void *array;
	int r = ensure_plan(plan);

	if (r >= 0)
		r = parse_named_list(ctx, node, &repo_list, &array, &plan->backup->nrepos);
	if (r >= 0)
		plan->backup->repos = array;
	return r;
}

int backup_plan_parse_backups(struct conf_ctx *ctx, const struct conf_node *node,
			      struct plan *plan)
{
	void *array;
	int r = ensure_plan(plan);

	if (r >= 0)
		r = parse_named_list(ctx, node, &job_list, &array, &plan->backup->njobs);
	if (r >= 0)
		plan->backup->jobs = array;
	return r;
}

/* copies: name other repositories: entries, each once. */
static int validate_copies(struct conf_ctx *ctx, const struct conf_node *item,
			   const struct backup_plan *bp, struct backup_job *job)
{
	const struct conf_node *node = conf_map_get(item, "copies");
	size_t n = 0;

	for (char **c = job->copies; c && *c; c++)
		n++;
	if (!n)
		return 0;
	if (n > 16)
		return conf_errorf(ctx, node, "copies: at most 16");
	if (!(job->copy_repos = calloc(n, sizeof(*job->copy_repos))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct conf_node *at = node->type == CONF_NODE_SEQ ? node->items[i] : node;
		const char *name = job->copies[i];

		if (!(job->copy_repos[i] = backup_plan_repo(bp, name)))
			return conf_errorf(ctx, at,
					   "backup job '%s' copies to '%s', which is not in "
					   "repositories:",
					   job->name, name);
		if (job->copy_repos[i] == job->repo)
			return conf_errorf(ctx, at,
					   "backup job '%s': '%s' is its own repository, not "
					   "a copy: name another repositories: entry",
					   job->name, name);
		for (size_t k = 0; k < i; k++)
			if (job->copy_repos[k] == job->copy_repos[i])
				return conf_errorf(ctx, at, "backup job '%s' names copy '%s' twice",
						   job->name, name);
		job->ncopies++;
	}
	return 0;
}

/* A drill restores from the job's repository or from one of its copies. */
static int validate_drill_from(struct conf_ctx *ctx, const struct conf_node *item,
			       struct backup_job *job)
{
	const struct conf_node *drill = conf_map_get(item, "drill");

	job->drill_repo = job->repo;
	if (!job->drill_from || strcmp(job->drill_from, job->repository) == 0)
		return 0;
	job->drill_repo = NULL;
	for (size_t i = 0; i < job->ncopies; i++)
		if (strcmp(job->copies[i], job->drill_from) == 0)
			job->drill_repo = job->copy_repos[i];
	if (!job->drill_repo)
		return conf_errorf(ctx, conf_map_get(drill, "from"),
				   "drill from '%s': not the repository of backup job '%s' nor one "
				   "of its copies: (%s)",
				   job->drill_from, job->name,
				   job->ncopies ? "add it there" : "it has none");
	return 0;
}

int backup_plan_validate(struct conf_ctx *ctx, const struct conf_node *root, struct plan *plan)
{
	const struct conf_node *seq = conf_map_get(root, "backups");
	struct backup_plan *bp = plan->backup;
	int r;

	if (!bp)
		return 0;
	for (size_t i = 0; i < bp->njobs; i++) {
		struct backup_job *job = &bp->jobs[i];

		job->repo = backup_plan_repo(bp, job->repository);
		if (!job->repo)
			return conf_errorf(ctx, conf_map_get(seq->items[i], "repository"),
					   "backup job '%s' names repository '%s', which is not in "
					   "repositories:", job->name, job->repository);
		if ((r = validate_copies(ctx, seq->items[i], bp, job)) < 0 ||
		    (r = validate_drill_from(ctx, seq->items[i], job)) < 0)
			return r;
	}
	return 0;
}

void backup_plan_free(struct backup_plan *bp)
{
	if (!bp)
		return;
	for (size_t i = 0; i < bp->nrepos; i++)
		repo_release(&bp->repos[i]);
	for (size_t i = 0; i < bp->njobs; i++)
		job_release(&bp->jobs[i]);
	free(bp->repos);
	free(bp->jobs);
	free(bp);
}

const struct backup_job *backup_plan_job(const struct backup_plan *bp, const char *name)
{
	for (size_t i = 0; bp && i < bp->njobs; i++)
		if (strcmp(bp->jobs[i].name, name) == 0)
			return &bp->jobs[i];
	return NULL;
}

const struct repository_def *backup_plan_repo(const struct backup_plan *bp, const char *name)
{
	for (size_t i = 0; bp && i < bp->nrepos; i++)
		if (strcmp(bp->repos[i].name, name) == 0)
			return &bp->repos[i];
	return NULL;
}

/* ---- schedules ---- */

/* One cron field: "*", "*\/N", "A", "A-B", "A-B/N", comma lists. */
static int cron_field(const char *text, unsigned lo, unsigned hi, uint64_t *ret, bool *star)
{
	_cleanup_free_ char *copy = strdup(text);
	char *rest = copy, *part;
	uint64_t bits = 0;

	if (!copy)
		return -ENOMEM;
	*star = strcmp(text, "*") == 0;
	while ((part = strsep(&rest, ","))) {
		unsigned a = lo, b = hi, step = 1;
		char *slash = strchr(part, '/'), *end;

		if (slash) {
			*slash = 0;
			step = (unsigned)strtoul(slash + 1, &end, 10);
			if (*end || step == 0 || slash[1] == 0)
				return -EINVAL;
		}
		if (strcmp(part, "*") != 0) {
			char *dash = strchr(part, '-');

			if (dash)
				*dash = 0;
			a = (unsigned)strtoul(part, &end, 10);
			if (*end || part[0] == 0)
				return -EINVAL;
			b = a;
			if (dash) {
				b = (unsigned)strtoul(dash + 1, &end, 10);
				if (*end || dash[1] == 0)
					return -EINVAL;
			} else if (slash) {
				b = hi;
			}
		}
		if (a < lo || b > hi || a > b)
			return -ERANGE;
		for (unsigned v = a; v <= b; v += step)
			bits |= (uint64_t)1 << v;
	}
	*ret = bits;
	return 0;
}

int schedule_parse(const char *text, struct schedule *ret, const char **ret_why)
{
	struct schedule s = {};
	_cleanup_free_ char *copy = NULL;
	char *fields[6], *rest, *f;
	unsigned n = 0;
	uint64_t bits;
	bool star;

	if (strncmp(text, "every ", 6) == 0) {
		if (duration_parse(text + 6, &s.every) < 0 || s.every < USEC_PER_SEC) {
			*ret_why = "'every' takes a duration of at least 1s, e.g. 'every 1h'";
			return -EINVAL;
		}
	} else {
		copy = strdup(text);
		if (!copy)
			return -ENOMEM;
		rest = copy;
		while ((f = strsep(&rest, " \t"))) {
			if (!*f)
				continue;
			if (n == 6)
				break;
			fields[n++] = f;
		}
		if (n != 5) {
			*ret_why = "use 'every DURATION' or 5 cron fields: minute hour day month weekday";
			return -EINVAL;
		}
		*ret_why = "a cron field is out of range or malformed";
		if (cron_field(fields[0], 0, 59, &s.minutes, &star) < 0)
			return -EINVAL;
		if (cron_field(fields[1], 0, 23, &bits, &star) < 0)
			return -EINVAL;
		s.hours = (uint32_t)bits;
		if (cron_field(fields[2], 1, 31, &bits, &s.dom_star) < 0)
			return -EINVAL;
		s.days = (uint32_t)bits;
		if (cron_field(fields[3], 1, 12, &bits, &star) < 0)
			return -EINVAL;
		s.months = (uint32_t)bits;
		if (cron_field(fields[4], 0, 7, &bits, &s.dow_star) < 0)
			return -EINVAL;
		if (bits & (1u << 7))
			bits |= 1;
		s.weekdays = (uint8_t)(bits & 0x7f);
	}
	s.text = strdup(text);
	if (!s.text)
		return -ENOMEM;
	free(ret->text);
	*ret = s;
	return 0;
}

usec_t schedule_next(const struct schedule *s, usec_t after)
{
	time_t t;
	struct tm tm;

	if (s->every)
		return (after / s->every + 1) * s->every;
	/* Minute by minute in local time, at most five years ahead. */
	t = (time_t)(after / USEC_PER_SEC) / 60 * 60 + 60;
	for (unsigned i = 0; i < 5u * 366 * 24 * 60; i++, t += 60) {
		bool dom, dow;

		localtime_r(&t, &tm);
		if (!(s->minutes >> tm.tm_min & 1) || !(s->hours >> tm.tm_hour & 1) ||
		    !(s->months >> (tm.tm_mon + 1) & 1))
			continue;
		dom = s->days >> tm.tm_mday & 1;
		dow = s->weekdays >> tm.tm_wday & 1;
		if (s->dom_star || s->dow_star ? (dom && dow) : (dom || dow))
			return (usec_t)t * USEC_PER_SEC;
	}
	return 0;
}

int backup_job_newest_rpo(void *plan, const char *job_name, usec_t *ret_newest, usec_t *ret_rpo)
{
	const struct plan *p = plan;
	const struct backup_job *j = p->backup ? backup_plan_job(p->backup, job_name) : NULL;
	usec_t t;
	int r;

	if (!j)
		return -BCDR_ERR_NOT_FOUND;
	r = backup_job_newest(p, job_name, &t);
	if (r < 0)
		return r;
	*ret_newest = t;
	*ret_rpo = j->rpo;
	return 0;
}

#include "backup/hooks.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "lib/spawn.h"

extern char **environ;

#define HOOK_TIMEOUT (3600 * USEC_PER_SEC)
#define HOOK_OUTPUT (16u << 10)
#define ENV_FILE_MAX (64u << 10)

/* Appends (or replaces) "name=value" in *v of *n entries. */
static int env_set(char ***v, size_t *n, const char *name, const char *value)
{
	size_t l = strlen(name);
	char *e, **nv;

	if (asprintf(&e, "%s=%s", name, value) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < *n; i++)
		if (strncmp((*v)[i], name, l) == 0 && (*v)[i][l] == '=') {
			free((*v)[i]);
			(*v)[i] = e;
			return 0;
		}
	nv = realloc(*v, (*n + 2) * sizeof(char *));
	if (!nv) {
		free(e);
		return -ENOMEM;
	}
	*v = nv;
	nv[(*n)++] = e;
	nv[*n] = NULL;
	return 0;
}

static int env_copy(char *const *from, char ***ret, size_t *ret_n)
{
	size_t n = 0;
	char **v;

	while (from && from[n])
		n++;
	v = calloc(n + 1, sizeof(char *));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (!(v[i] = strdup(from[i]))) {
			strv_free(v);
			return -ENOMEM;
		}
	*ret = v;
	*ret_n = n;
	return 0;
}

int job_env(const struct backup_job *job, char ***ret, char *why, size_t why_size)
{
	_cleanup_strv_free_ char **v = NULL;
	size_t n;
	int r = env_copy(environ, &v, &n);

	why[0] = 0;
	if (r < 0)
		return r;
	for (size_t i = 0; i < job->nenv; i++) {
		_cleanup_free_ char *data = NULL;
		size_t len;

		r = fs_read_file(job->env[i].path, ENV_FILE_MAX, &data, &len);
		if (r < 0) {
			snprintf(why, why_size, "cannot read '%s' for env %s: %s", job->env[i].path,
				 job->env[i].name, err_str(r));
			return r;
		}
		data[strcspn(data, "\r\n")] = 0; /* the first line */
		if ((r = env_set(&v, &n, job->env[i].name, data)) < 0)
			return r;
	}
	if ((r = env_set(&v, &n, "BCDR_JOB", job->name)) < 0)
		return r;
	*ret = TAKE_PTR(v);
	return 0;
}

const char *hooks_program_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash && slash[1] ? slash + 1 : path;
}

void hooks_output_tail(const char *output, size_t len, char *out, size_t size)
{
	size_t end = len, start, n = 0, lines = 0;

	while (end > 0 && (output[end - 1] == '\n' || output[end - 1] == ' ' ||
			   output[end - 1] == '\r'))
		end--;
	start = end;
	while (start > 0 && end - start < size - 1) {
		if (output[start - 1] == '\n' && ++lines == 3)
			break;
		start--;
	}
	for (size_t i = start; i < end && n + 4 < size; i++) {
		char c = output[i];

		if (c == '\n') {
			memcpy(out + n, " / ", 3);
			n += 3;
		} else if (c != '\r') {
			out[n++] = (unsigned char)c < 0x20 ? ' ' : c;
		}
	}
	out[n] = 0;
}

int hooks_run(const struct argv_list *l, char *const *envp, const char *what, char *msg,
	      size_t size)
{
	msg[0] = 0;
	for (size_t i = 0; i < l->n; i++) {
		struct spawn_options o = { .argv = l->v[i], .envp = envp, .timeout = HOOK_TIMEOUT,
					   .output_max = HOOK_OUTPUT, .keep_tail = true };
		struct spawn_result res = {};
		char how[64], tail[400];
		int r = spawn_run(&o, &res);

		if (r < 0) {
			snprintf(msg, size, "%s hook '%s' cannot run: %s", what, l->v[i][0],
				 err_str(r));
			return -ECHILD;
		}
		if (res.exit_status != 0 || res.timed_out) {
			hooks_output_tail(res.output, res.output_len, tail, sizeof(tail));
			snprintf(msg, size, "%s hook '%s' failed (%s)%s%s", what,
				 hooks_program_name(l->v[i][0]),
				 spawn_describe(&res, HOOK_TIMEOUT, how, sizeof(how)),
				 tail[0] ? ": " : "", tail);
			spawn_result_release(&res);
			return -ECHILD;
		}
		spawn_result_release(&res);
	}
	return 0;
}

int hooks_run_after(const struct backup_job *job, char *const *envp, bool ok,
		    const char *message, const char *snapshot, char *msg, size_t size)
{
	_cleanup_strv_free_ char **v = NULL;
	size_t n;
	int r;

	msg[0] = 0;
	if (!job->after.n)
		return 0;
	r = env_copy(envp, &v, &n);
	if (r >= 0)
		r = env_set(&v, &n, "BCDR_OUTCOME", ok ? "ok" : "failed");
	if (r >= 0)
		r = env_set(&v, &n, "BCDR_MESSAGE", message ? message : "");
	if (r >= 0)
		r = env_set(&v, &n, "BCDR_SNAPSHOT", snapshot ? snapshot : "");
	if (r < 0)
		return r;
	for (size_t i = 0; i < job->after.n; i++) {
		struct argv_list one = { &job->after.v[i], 1 };
		char m[512];

		if (hooks_run(&one, v, "after", m, sizeof(m)) < 0 && !msg[0]) {
			snprintf(msg, size, "%s", m);
			r = -ECHILD;
		}
	}
	return r;
}

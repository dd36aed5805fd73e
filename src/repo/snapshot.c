#include "repo/snapshot.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/json.h"
#include "repo/crypto.h"

void snapshot_free(struct snapshot *s)
{
	if (!s)
		return;
	free(s->host);
	free(s->job);
	strv_free(s->paths);
	strv_free(s->tags);
	free(s->tree);
	free(s);
}

bool snapshot_has_tag(const struct snapshot *s, const char *tag)
{
	for (char **t = s->tags; t && *t; t++)
		if (strcmp(*t, tag) == 0)
			return true;
	return false;
}

json_t *snapshot_summary_json(const struct snapshot_summary *sum)
{
	json_t *j = json_object();

	json_set_int(j, "files_new", (long long)sum->files_new);
	json_set_int(j, "files_changed", (long long)sum->files_changed);
	json_set_int(j, "files_unchanged", (long long)sum->files_unchanged);
	json_set_int(j, "dirs", (long long)sum->dirs);
	json_set_int(j, "errors", (long long)sum->errors);
	json_set_int(j, "bytes_processed", (long long)sum->bytes_processed);
	json_set_int(j, "bytes_added", (long long)sum->bytes_added);
	json_set_int(j, "bytes_stored", (long long)sum->bytes_stored);
	json_set_real(j, "duration_s", sum->duration_s);
	return j;
}

/* What the snapshot is of: its job, paths, tags and parent. */
static void set_origin(json_t *j, const struct snapshot *s)
{
	char hex[65];

	if (s->job)
		json_set_str(j, "job", s->job);
	json_object_set_new(j, "paths", json_from_strv(s->paths));
	json_object_set_new(j, "tags", json_from_strv(s->tags));
	if (s->has_parent) {
		hex_encode(s->parent, 32, hex);
		json_set_str(j, "parent", hex);
	}
}

json_t *snapshot_list_json(const struct snapshot *s)
{
	json_t *j = json_object();
	char hex[65], when[64];

	hex_encode(s->id, 32, hex);
	json_set_str(j, "id", hex);
	json_set_str(j, "time", time_format_iso(s->time, when, sizeof(when)));
	json_set_str(j, "host", s->host);
	set_origin(j, s);
	json_object_set_new(j, "summary", snapshot_summary_json(&s->summary));
	return j;
}

int snapshot_encode(const struct snapshot *s, char **ret, size_t *ret_len)
{
	_cleanup_json_ json_t *j = json_object();
	json_t *tree = json_array();
	char hex[65], when[64];
	char *text;

	if (!j || !tree) {
		json_decref(tree);
		return -ENOMEM;
	}
	json_set_int(j, "version", 1);
	json_set_str(j, "time", time_format_iso(s->time, when, sizeof(when)));
	json_set_int(j, "time_us", (long long)s->time);
	json_set_str(j, "host", s->host ? s->host : "");
	set_origin(j, s);
	for (size_t i = 0; i < s->ntree; i++) {
		hex_encode(s->tree[i], 32, hex);
		json_array_append_new(tree, json_string(hex));
	}
	json_object_set_new(j, "tree", tree);
	json_object_set_new(j, "summary", snapshot_summary_json(&s->summary));
	text = json_dumps(j, JSON_COMPACT);
	if (!text)
		return -ENOMEM;
	*ret = text;
	*ret_len = strlen(text);
	return 0;
}

static int strv_from(json_t *a, char ***ret)
{
	size_t n, i;
	char **v;

	if (!json_is_array(a) || json_array_size(a) > 10000)
		return -BCDR_ERR_CORRUPT;
	n = json_array_size(a);
	v = calloc(n + 1, sizeof(char *));
	if (!v)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		json_t *e = json_array_get(a, i);

		if (!json_is_string(e) || !(v[i] = strdup(json_string_value(e)))) {
			strv_free(v);
			return json_is_string(e) ? -ENOMEM : -BCDR_ERR_CORRUPT;
		}
	}
	*ret = v;
	return 0;
}

static uint64_t get_u(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

int snapshot_decode(const uint8_t *data, size_t len, struct snapshot **ret)
{
	_cleanup_json_ json_t *j = NULL;
	struct snapshot *s;
	json_t *v, *tree, *sum;
	int r;

	if (len > SNAPSHOT_MAX_JSON)
		return -BCDR_ERR_TOO_BIG;
	j = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(j))
		return -BCDR_ERR_CORRUPT;
	v = json_object_get(j, "version");
	if (!json_is_integer(v) || json_integer_value(v) < 1)
		return -BCDR_ERR_CORRUPT;
	if (json_integer_value(v) > 1)
		return -BCDR_ERR_VERSION;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	r = -BCDR_ERR_CORRUPT;
	v = json_object_get(j, "time_us");
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		goto fail;
	s->time = (usec_t)json_integer_value(v);
	v = json_object_get(j, "host");
	if (!json_is_string(v) || !(s->host = strdup(json_string_value(v))))
		goto fail;
	v = json_object_get(j, "job");
	if (v && (!json_is_string(v) || !(s->job = strdup(json_string_value(v)))))
		goto fail;
	if ((r = strv_from(json_object_get(j, "paths"), &s->paths)) < 0)
		goto fail;
	if ((r = strv_from(json_object_get(j, "tags"), &s->tags)) < 0)
		goto fail;
	r = -BCDR_ERR_CORRUPT;
	v = json_object_get(j, "parent");
	if (v) {
		if (!json_is_string(v) || hex_decode(json_string_value(v), s->parent, 32) < 0)
			goto fail;
		s->has_parent = true;
	}
	tree = json_object_get(j, "tree");
	if (!json_is_array(tree) || json_array_size(tree) > SNAPSHOT_MAX_TREE_BLOBS)
		goto fail;
	s->ntree = json_array_size(tree);
	s->tree = calloc(s->ntree ? s->ntree : 1, 32);
	if (!s->tree) {
		r = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < s->ntree; i++) {
		v = json_array_get(tree, i);
		if (!json_is_string(v) || hex_decode(json_string_value(v), s->tree[i], 32) < 0)
			goto fail;
	}
	sum = json_object_get(j, "summary");
	if (json_is_object(sum)) {
		s->summary.files_new = get_u(sum, "files_new");
		s->summary.files_changed = get_u(sum, "files_changed");
		s->summary.files_unchanged = get_u(sum, "files_unchanged");
		s->summary.dirs = get_u(sum, "dirs");
		s->summary.errors = get_u(sum, "errors");
		s->summary.bytes_processed = get_u(sum, "bytes_processed");
		s->summary.bytes_added = get_u(sum, "bytes_added");
		s->summary.bytes_stored = get_u(sum, "bytes_stored");
		v = json_object_get(sum, "duration_s");
		s->summary.duration_s = json_is_number(v) ? json_number_value(v) : 0;
	}
	*ret = s;
	return 0;
fail:
	snapshot_free(s);
	return r;
}

#include "lib/json.h"

#include <errno.h>
#include <math.h>

int json_print(FILE *f, const json_t *j)
{
	if (json_dumpf(j, f, JSON_COMPACT | JSON_ENSURE_ASCII) < 0)
		return -EIO;
	fputc('\n', f);
	return 0;
}

static int set(json_t *obj, const char *key, json_t *value)
{
	if (!value || json_object_set_new(obj, key, value) < 0)
		return -ENOMEM;
	return 0;
}

int json_set_str(json_t *obj, const char *key, const char *value)
{
	return set(obj, key, value ? json_string(value) : json_null());
}

int json_set_int(json_t *obj, const char *key, long long value)
{
	return set(obj, key, json_integer(value));
}

int json_set_real(json_t *obj, const char *key, double value)
{
	/* JSON has no NaN or infinity: they become null. */
	return set(obj, key, isfinite(value) ? json_real(value) : json_null());
}

int json_set_bool(json_t *obj, const char *key, int value)
{
	return set(obj, key, json_boolean(value));
}

json_t *json_from_strv(char *const *v)
{
	json_t *a = json_array();

	for (; a && v && *v; v++)
		json_array_append_new(a, json_string(*v));
	return a;
}

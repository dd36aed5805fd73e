#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "agent/dashboard.h"

static const char *find(const char *path, size_t *ret_len, const char **ret_type)
{
	const void *data = NULL;
	size_t len = 0;
	const char *type = NULL;

	assert_int_equal(dashboard_asset(path, &data, &len, &type), 0);
	assert_non_null(data);
	assert_non_null(type);
	assert_true(len > 0);
	if (ret_len)
		*ret_len = len;
	if (ret_type)
		*ret_type = type;
	return data;
}

static void test_root_is_the_page(void **state)
{
	const char *root, *index, *type;
	size_t root_len, index_len;

	(void)state;
	root = find("/", &root_len, &type);
	index = find("/index.html", &index_len, NULL);
	assert_ptr_equal(root, index);
	assert_int_equal(root_len, index_len);
	assert_string_equal(type, "text/html; charset=utf-8");
	assert_non_null(memmem(root, root_len, "<!doctype html>", 15));
	/* A query string or a fragment does not change the file. */
	assert_ptr_equal(find("/?since=1h", NULL, NULL), index);
	assert_ptr_equal(find("/#/events", NULL, NULL), index);
}

static void test_every_file_the_page_loads_is_there(void **state)
{
	static const char *const loaded[] = {
		"app.js", "style.css", "favicon.svg", "vendor/chart.min.js",
	};
	const char *index, *type, *js;
	size_t index_len, js_len;
	char path[64];

	(void)state;
	index = find("/index.html", &index_len, NULL);
	for (size_t i = 0; i < sizeof(loaded) / sizeof(loaded[0]); i++) {
		/* Referenced by the page, relative so it works under any prefix. */
		assert_non_null(memmem(index, index_len, loaded[i], strlen(loaded[i])));
		path[0] = '/';
		memcpy(path + 1, loaded[i], strlen(loaded[i]) + 1);
		find(path, NULL, NULL);
	}
	js = find("/vendor/chart.min.js?v=1", &js_len, &type);
	assert_string_equal(type, "text/javascript; charset=utf-8");
	assert_non_null(memmem(js, js_len, "Chart.js v", 10));
	find("/style.css", NULL, &type);
	assert_string_equal(type, "text/css; charset=utf-8");
	find("/favicon.svg", NULL, &type);
	assert_string_equal(type, "image/svg+xml");
}

static void test_unknown_and_bad_paths(void **state)
{
	const void *data = (const void *)1;
	size_t len = 7;
	const char *type = "unchanged";
	char long_path[300];

	(void)state;
	assert_int_equal(dashboard_asset("/nope.html", &data, &len, &type), -ENOENT);
	assert_int_equal(dashboard_asset("/../index.html", &data, &len, &type), -ENOENT);
	assert_int_equal(dashboard_asset("/index.html/", &data, &len, &type), -ENOENT);
	assert_int_equal(dashboard_asset("/INDEX.HTML", &data, &len, &type), -ENOENT);
	assert_int_equal(dashboard_asset("/api/v1/status", &data, &len, &type), -ENOENT);
	assert_int_equal(dashboard_asset("index.html", &data, &len, &type), -EINVAL);
	assert_int_equal(dashboard_asset("", &data, &len, &type), -EINVAL);
	assert_int_equal(dashboard_asset(NULL, &data, &len, &type), -EINVAL);
	memset(long_path, 'a', sizeof(long_path) - 1);
	long_path[0] = '/';
	long_path[sizeof(long_path) - 1] = '\0';
	assert_int_equal(dashboard_asset(long_path, &data, &len, &type), -EINVAL);
	/* A long query string is not part of the path. */
	memcpy(long_path, "/app.js?", 8);
	assert_int_equal(dashboard_asset(long_path, &data, &len, &type), 0);
	/* Outputs are written only on success. */
	assert_int_equal(dashboard_asset("/missing", (const void **)&long_path, NULL, NULL),
			 -ENOENT);
	assert_int_equal(dashboard_asset("/app.js", NULL, NULL, NULL), 0);
}

static void test_table_is_sorted_and_typed(void **state)
{
	(void)state;
	assert_true(dashboard_files_count >= 5);
	for (size_t i = 0; i < dashboard_files_count; i++) {
		const struct dashboard_file *f = &dashboard_files[i];

		assert_int_equal(f->path[0], '/');
		assert_non_null(f->content_type);
		/* Every file ends in a NUL past len, so text can be used as a string. */
		assert_int_equal(f->data[f->len], '\0');
		if (i > 0)
			assert_true(strcmp(dashboard_files[i - 1].path, f->path) < 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_root_is_the_page),
		cmocka_unit_test(test_every_file_the_page_loads_is_there),
		cmocka_unit_test(test_unknown_and_bad_paths),
		cmocka_unit_test(test_table_is_sorted_and_typed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

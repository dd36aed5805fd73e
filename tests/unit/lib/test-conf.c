#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/conf.h"
#include "lib/err.h"

struct job {
	char *name;
	char **paths;
	usec_t every;
	uint64_t max_size;
	int64_t retries;
	double availability;
	bool enabled;
	int mode;
};

static const char *const modes[] = { "active", "cold", NULL };

static const struct conf_field job_fields[] = {
	CONF_FIELD("name", CONF_STRING, struct job, name, CONF_REQUIRED),
	CONF_FIELD("paths", CONF_STRV, struct job, paths, 0),
	CONF_FIELD("every", CONF_DURATION, struct job, every, 0),
	CONF_FIELD("max_size", CONF_SIZE, struct job, max_size, 0),
	CONF_RANGE("retries", CONF_INT, struct job, retries, 0, 0, 10),
	CONF_FIELD("availability", CONF_PERCENT, struct job, availability, 0),
	CONF_FIELD("enabled", CONF_BOOL, struct job, enabled, 0),
	CONF_ENUM_FIELD("mode", struct job, mode, 0, modes),
	{}
};

/* Parses text as one job; returns the error (or NULL) and fills job. */
static char *parse_job(const char *text, struct job *job)
{
	struct conf_ctx ctx = { 0 };
	struct conf_doc *doc = NULL;
	int r;

	memset(job, 0, sizeof(*job));
	job->retries = 3;
	r = conf_doc_parse(&ctx, "plan.yaml", text, strlen(text), &doc);
	if (r >= 0)
		r = conf_parse_fields(&ctx, doc->root, job_fields, job);
	conf_doc_free(doc);
	if (r < 0) {
		assert_int_equal(r, -BCDR_ERR_CONFIG);
		assert_non_null(ctx.error);
		conf_free_fields(job_fields, job);
		return ctx.error;
	}
	assert_null(ctx.error);
	return NULL;
}

static void test_fields_parse(void **state)
{
	struct job job;

	(void)state;
	assert_null(parse_job("name: web\npaths: [/etc, /srv]\nevery: 1h30m\nmax_size: 2GiB\n"
			      "availability: 99.9%\nenabled: yes\nmode: cold\n",
			      &job));
	assert_string_equal(job.name, "web");
	assert_string_equal(job.paths[0], "/etc");
	assert_string_equal(job.paths[1], "/srv");
	assert_null(job.paths[2]);
	assert_int_equal(job.every, 90 * USEC_PER_MINUTE);
	assert_int_equal(job.max_size, 2ull << 30);
	assert_int_equal(job.retries, 3); /* default kept */
	assert_true(job.availability > 0.99899 && job.availability < 0.99901);
	assert_true(job.enabled);
	assert_int_equal(job.mode, 1);
	conf_free_fields(job_fields, &job);
}

static void test_scalar_is_list_of_one(void **state)
{
	struct job job;

	(void)state;
	assert_null(parse_job("name: a\npaths: /etc\n", &job));
	assert_string_equal(job.paths[0], "/etc");
	assert_null(job.paths[1]);
	conf_free_fields(job_fields, &job);
}

static void expect_error(const char *text, const char *message)
{
	struct job job;
	char *error = parse_job(text, &job);

	assert_non_null(error);
	if (!strstr(error, message))
		fail_msg("error '%s' does not contain '%s'", error, message);
	free(error);
}

static void test_errors_have_positions(void **state)
{
	(void)state;
	expect_error("name: a\nevry: 1h\n", "plan.yaml:2:1: unknown key 'evry' (known here: name, paths");
	expect_error("name: a\nevery: 10\n", "plan.yaml:2:8: expected a duration");
	expect_error("name: a\nretries: 11\n", "plan.yaml:2:10: 'retries' must be from 0 to 10");
	expect_error("name: a\nretries: many\n", "expected a whole number, not 'many'");
	expect_error("name: a\nmode: warm\n", "plan.yaml:2:7: 'mode' must be one of: active, cold");
	expect_error("paths: [/a]\n", "plan.yaml:1:1: missing required key 'name'");
	expect_error("name: a\nname: b\n", "plan.yaml:2:1: duplicate key 'name' (first at line 1)");
	expect_error("name: [a, b]\n", "plan.yaml:1:7: expected a single value, not a list");
	expect_error("name: a\nenabled: \"yes\"\n", "expected true or false");
	expect_error("name: a\navailability: 101%\n", "percentage from 0% to 100%");
	expect_error("name: a\nmax_size: lots\n", "expected a size");
	expect_error("name: a\n  bad indent: [\n", "plan.yaml:");
	expect_error("- a\n- b\n", "expected a map (key: value), not a list");
}

static void test_yaml_limits(void **state)
{
	struct conf_ctx ctx = { 0 };
	struct conf_doc *doc = NULL;
	char *deep;
	size_t n = 2 * CONF_MAX_DEPTH + 10;

	(void)state;
	/* Aliases are refused, so a billion-laughs document cannot expand. */
	const char *laughs = "a: &a [x, x]\nb: [*a, *a]\n";
	assert_int_equal(conf_doc_parse(&ctx, "p", laughs, strlen(laughs), &doc), -BCDR_ERR_CONFIG);
	assert_non_null(strstr(ctx.error, "anchors are not supported"));
	conf_ctx_release(&ctx);

	deep = malloc(n + 1);
	memset(deep, '[', n);
	deep[n] = '\0';
	assert_int_equal(conf_doc_parse(&ctx, "p", deep, n, &doc), -BCDR_ERR_CONFIG);
	assert_non_null(strstr(ctx.error, "nested deeper"));
	conf_ctx_release(&ctx);
	free(deep);

	assert_int_equal(conf_doc_parse(&ctx, "p", "a: 1\n---\nb: 2\n", 14, &doc), -BCDR_ERR_CONFIG);
	assert_non_null(strstr(ctx.error, "one YAML document"));
	conf_ctx_release(&ctx);

	assert_int_equal(conf_doc_parse(&ctx, "p", "", 0, &doc), 0);
	assert_null(doc->root);
	conf_doc_free(doc);
}

struct item {
	char *name;
	int64_t weight;
};

static const struct conf_field item_fields[] = {
	CONF_FIELD("name", CONF_STRING, struct item, name, CONF_REQUIRED),
	CONF_FIELD("weight", CONF_INT, struct item, weight, 0),
	{}
};

static void item_init(void *elem)
{
	((struct item *)elem)->weight = 1;
}

static int item_parse(struct conf_ctx *ctx, const struct conf_node *node, void *elem)
{
	return conf_parse_fields(ctx, node, item_fields, elem);
}

static void item_release(void *elem)
{
	conf_free_fields(item_fields, elem);
}

static void test_list(void **state)
{
	const char *text = "- { name: a, weight: 5 }\n- name: b\n";
	struct conf_ctx ctx = { 0 };
	struct conf_doc *doc = NULL;
	struct item *items = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(conf_doc_parse(&ctx, "p", text, strlen(text), &doc), 0);
	assert_int_equal(conf_parse_list(&ctx, doc->root, sizeof(struct item), item_init, item_parse,
					 item_release, (void **)&items, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(items[0].name, "a");
	assert_int_equal(items[0].weight, 5);
	assert_int_equal(items[1].weight, 1);
	for (size_t i = 0; i < n; i++)
		item_release(&items[i]);
	free(items);
	conf_doc_free(doc);

	text = "- { name: a }\n- { weight: 2 }\n";
	assert_int_equal(conf_doc_parse(&ctx, "p", text, strlen(text), &doc), 0);
	assert_int_equal(conf_parse_list(&ctx, doc->root, sizeof(struct item), item_init, item_parse,
					 item_release, (void **)&items, &n), -BCDR_ERR_CONFIG);
	assert_non_null(strstr(ctx.error, "p:2:3: missing required key 'name'"));
	conf_ctx_release(&ctx);
	conf_doc_free(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fields_parse),
		cmocka_unit_test(test_scalar_is_list_of_one),
		cmocka_unit_test(test_errors_have_positions),
		cmocka_unit_test(test_yaml_limits),
		cmocka_unit_test(test_list),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

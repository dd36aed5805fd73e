#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cluster/plan.h"
#include "plan-helpers.h"

static const char base[] =
	"checks:\n  - { name: up, file: { path: /tmp } }\n"
	"cluster: { name: shop, etcd: [http://127.0.0.1:2379], ttl: 5s }\n"
	"services:\n  - { name: db, healthy: [up], promote: [/bin/true], priority: 100 }\n";

static struct plan *parse(const char *text)
{
	struct plan *p = NULL;
	char *err = NULL;

	if (plan_parse("t.yaml", text, strlen(text), &p, &err) < 0)
		fail_msg("%s", err);
	return p;
}

/* base with one substitution */
static struct plan *variant(const char *from, const char *to)
{
	char text[1024];
	const char *at = strstr(base, from);

	assert_non_null(at);
	snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - base), base, to, at + strlen(from));
	return parse(text);
}

/* What a reload compares: every field counts, nothing else; a change
 * of the services alone keeps the same cluster (the engine carries on). */
static void test_equal(void **state)
{
	static const struct {
		const char *from, *to;
		bool same_cluster;
	} changes[] = {
		{ "name: shop", "name: shop2", false },
		{ "2379]", "2379, http://127.0.0.1:2380]", false },
		{ "ttl: 5s", "ttl: 6s", false },
		{ "ttl: 5s", "ttl: 5s, member: m", false },
		{ "ttl: 5s", "ttl: 5s, address: 10.0.0.1", false },
		{ "healthy: [up]", "healthy: []", true },
		{ "[/bin/true]", "[/bin/true, x]", true },
		{ "priority: 100", "priority: 101", true },
		{ "priority: 100 }", "priority: 100, timeout: 3s }", true },
		{ "priority: 100 }", "priority: 100, demote: [/bin/true] }", true },
		{ "priority: 100 }", "priority: 100 }\n  - { name: web }", true },
	};
	struct plan *a = parse(base), *b = parse(base);

	(void)state;
	assert_true(cluster_plan_equal(a->cluster, b->cluster));
	assert_true(cluster_plan_same_cluster(a->cluster, b->cluster));
	assert_true(cluster_service_equal(&a->cluster->services[0], &b->cluster->services[0]));
	assert_true(cluster_plan_equal(NULL, NULL));
	assert_false(cluster_plan_equal(a->cluster, NULL));
	assert_false(cluster_plan_equal(NULL, a->cluster));
	assert_false(cluster_plan_same_cluster(a->cluster, NULL));
	assert_false(cluster_plan_same_cluster(NULL, NULL));
	plan_free(b);
	/* the checks are no part of it */
	b = variant("path: /tmp", "path: /var");
	assert_true(cluster_plan_equal(a->cluster, b->cluster));
	plan_free(b);
	for (size_t i = 0; i < sizeof(changes) / sizeof(changes[0]); i++) {
		b = variant(changes[i].from, changes[i].to);
		if (cluster_plan_equal(a->cluster, b->cluster))
			fail_msg("'%s' -> '%s' is a change", changes[i].from, changes[i].to);
		if (cluster_plan_same_cluster(a->cluster, b->cluster) != changes[i].same_cluster)
			fail_msg("'%s' -> '%s': same cluster should be %d", changes[i].from,
				 changes[i].to, changes[i].same_cluster);
		plan_free(b);
	}
	plan_free(a);
}

/* An alert setting: parsed, by default ten minutes, and no change a
 * reload would restart the engine for. */
static void test_leader_changed_hold(void **state)
{
	struct plan *a = parse(base), *b = variant("ttl: 5s", "ttl: 5s, leader_changed_hold: 2s");
	char *err = NULL;
	struct plan *bad = NULL;
	static const char text[] =
		"cluster: { name: s, etcd: [http://h:1], leader_changed_hold: 0s }\n";

	(void)state;
	assert_int_equal(a->cluster->leader_changed_hold, CLUSTER_CHANGE_HOLD);
	assert_int_equal(CLUSTER_CHANGE_HOLD, 600 * USEC_PER_SEC);
	assert_int_equal(b->cluster->leader_changed_hold, 2 * USEC_PER_SEC);
	assert_true(cluster_plan_equal(a->cluster, b->cluster));
	assert_true(plan_parse("t.yaml", text, strlen(text), &bad, &err) < 0);
	assert_non_null(strstr(err, "leader_changed_hold"));
	free(err);
	plan_free(a);
	plan_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_equal),
		cmocka_unit_test(test_leader_changed_hold),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

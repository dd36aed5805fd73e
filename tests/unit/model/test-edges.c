/* The edge-list parser: the forms it accepts, and garbage refused with
 * file:line:col. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/err.h"
#include "model/edges.h"

static struct edge_list *ok(const char *text)
{
	struct edge_list *e = NULL;
	char *error = NULL;

	if (edges_parse("e.csv", text, strlen(text), &e, &error) < 0) {
		print_error("unexpected error: %s\n", error);
		free(error);
		fail();
	}
	return e;
}

static void bad(const char *text, size_t len, const char *want)
{
	struct edge_list *e = NULL;
	char *error = NULL;

	assert_true(edges_parse("e.csv", text, len, &e, &error) < 0);
	assert_null(e);
	if (!error || !strstr(error, want)) {
		print_error("error: %s\nwanted: %s\n", error ? error : "(none)", want);
		free(error);
		fail();
	}
	free(error);
}

static void test_forms(void **state)
{
	(void)state;
	struct edge_list *e = ok("from,to\n# a comment\n\nweb,db\r\n  db , \"disk \"\"a\"\"\"  \n"
				 "web,cache\nweb,db");

	assert_int_equal(e->n_names, 4);
	assert_int_equal(e->n_edges, 4);
	assert_string_equal(e->names[0], "web");
	assert_string_equal(e->names[1], "db");
	assert_string_equal(e->names[2], "disk \"a\"");
	assert_string_equal(e->names[3], "cache");
	assert_int_equal(e->edges[2], 1);
	assert_int_equal(e->edges[3], 2);
	assert_int_equal(edge_list_find(e, "cache"), 3);
	assert_int_equal(edge_list_find(e, "nope"), -1);
	edge_list_free(e);
	/* No header: the first line is an edge; source,target is a header too. */
	e = ok("a,b\n");
	assert_int_equal(e->n_edges, 1);
	edge_list_free(e);
	e = ok("Source,Target\na,b\n");
	assert_int_equal(e->n_edges, 1);
	edge_list_free(e);
}

static void test_many_names(void **state)
{
	(void)state;
	size_t n = 50000, len = 0;
	char *text = malloc(n * 24);
	struct edge_list *e;

	for (size_t i = 1; i < n; i++)
		len += (size_t)snprintf(text + len, 24, "n%zu,n%zu\n", i / 2, i);
	text[len] = '\0';
	e = ok(text);
	assert_int_equal(e->n_names, n);
	assert_int_equal(e->n_edges, n - 1);
	assert_int_equal(edge_list_find(e, "n49999"), 49999);
	edge_list_free(e);
	free(text);
}

static void test_garbage(void **state)
{
	(void)state;
	char longname[2100];

	bad("a\n", 2, "e.csv:1:2: expected a comma");
	bad("a,b\nc,d,e\n", 10, "e.csv:2:4: expected two fields");
	bad("a,b\n\"c,d\n", 9, "e.csv:2:1: unterminated quoted field");
	bad("a,\n", 3, "e.csv:1:3: empty name");
	bad(",b\n", 3, "e.csv:1:1: empty name");
	bad("a,b\x01\n", 5, "e.csv:1:4: control character");
	bad("a,b\0c\n", 6, "e.csv:1:4: control character");
	bad("a,b\"c\n", 6, "e.csv:1:4: a quote inside an unquoted name");
	bad("\"a\"x,b\n", 7, "e.csv:1:4: expected a comma");
	bad("", 0, "no edges");
	bad("from,to\n# nothing\n", 18, "no edges");
	memset(longname, 'x', sizeof(longname));
	memcpy(longname + sizeof(longname) - 4, ",b\n", 4);
	bad(longname, strlen(longname), "e.csv:1:1: name longer than 1024 bytes");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forms),
		cmocka_unit_test(test_many_names),
		cmocka_unit_test(test_garbage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* What the unit tests of plan sections share (include after cmocka.h). */
#pragma once

#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "plan/plan.h"

/* The plan text is refused with a message that holds needle. */
static inline void plan_expect_error(const char *text, const char *needle)
{
	struct plan *p = NULL;
	char *err = NULL;

	assert_int_equal(plan_parse("t.yaml", text, strlen(text), &p, &err), -BCDR_ERR_CONFIG);
	assert_null(p);
	assert_non_null(err);
	if (!strstr(err, needle))
		fail_msg("error '%s' lacks '%s'", err, needle);
	free(err);
}

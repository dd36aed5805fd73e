/* The plan parser against arbitrary bytes: it must return an error or a
 * plan, never crash, leak or read out of bounds. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "plan/plan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct plan *plan = NULL;
	char *error = NULL;

	if (plan_parse("fuzz.yaml", (const char *)data, size, &plan, &error) >= 0)
		plan_free(plan);
	free(error);
	return 0;
}

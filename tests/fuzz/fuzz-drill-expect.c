/* A database drill's verdict: expect: against what verify printed, both
 * arbitrary (the output is the database's; expect is the plan's). Split
 * at the first NUL: never a crash or a read past either. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backup/db-drill.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size + 2), why[256];
	size_t cut;

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	copy[size] = copy[size + 1] = 0;
	cut = strlen(copy);
	db_drill_expect(copy, copy + cut + (cut < size), why, sizeof(why));
	free(copy);
	return 0;
}

/* The snapshot tree stream decoder against arbitrary bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "repo/tree.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tree *t = NULL;

	if (tree_decode(data, size, &t) >= 0) {
		uint8_t *again = NULL;
		size_t len;

		/* What decodes, encodes. */
		if (tree_encode(t, &again, &len) >= 0)
			free(again);
		tree_free(t);
	}
	return 0;
}

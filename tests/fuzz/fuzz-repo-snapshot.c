/* The snapshot object decoder (JSON behind the AEAD) against arbitrary
 * bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "repo/snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snapshot *s = NULL;

	if (snapshot_decode(data, size, &s) >= 0) {
		char *text = NULL;
		size_t len;

		if (snapshot_encode(s, &text, &len) >= 0)
			free(text);
		snapshot_free(s);
	}
	return 0;
}

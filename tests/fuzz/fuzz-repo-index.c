/* The index file decoder (the plaintext behind the AEAD) against arbitrary
 * bytes: an error or an index, never a crash, leak or overread. */
#include <stddef.h>
#include <stdint.h>

#include "repo/index.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct index *ix = index_new();

	if (ix) {
		index_decode(ix, data, size);
		for (size_t i = 0; i < ix->n; i++)
			index_find(ix, ix->blobs[i].id);
		index_free(ix);
	}
	return 0;
}

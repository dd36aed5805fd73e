/* The index file decoder (the plaintext behind the AEAD) against arbitrary
 * bytes: an error or an index, never a crash, leak or overread. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "repo/index.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct index *ix = index_new();

	if (ix) {
		index_decode(ix, data, size);
		for (size_t i = 0; i < ix->n; i++) {
			struct index_blob b;
			uint8_t id[32] = { 0 };

			index_get(ix, i, &b);
			memcpy(id, b.id, INDEX_ID_LEN);
			if (index_lookup(ix, id, NULL) != (ssize_t)i)
				__builtin_trap();
		}
		index_free(ix);
	}
	return 0;
}

/* The snapshot tree stream decoder against arbitrary bytes, whole and fed
 * in pieces (as tree blobs arrive): both must agree. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "repo/tree.h"

/* The stream in pieces of a size taken from its first byte. */
static int decode_in_pieces(const uint8_t *data, size_t size, struct tree **ret)
{
	struct tree_decoder d;
	size_t piece = size ? 1 + data[0] % 64 : 1;
	int r = tree_decoder_init(&d);

	for (size_t off = 0; r >= 0 && off < size; off += piece)
		r = tree_decoder_feed(&d, data + off, size - off < piece ? size - off : piece);
	if (r >= 0)
		r = tree_decoder_finish(&d, ret);
	tree_decoder_release(&d);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tree *t = NULL, *t2 = NULL;
	int r = tree_decode(data, size, &t), r2 = decode_in_pieces(data, size, &t2);

	if ((r >= 0) != (r2 >= 0) || (r >= 0 && t->n != t2->n))
		abort();
	if (r >= 0) {
		uint8_t *again = NULL;
		size_t len;

		/* What decodes, encodes. */
		if (tree_encode(t, &again, &len) >= 0)
			free(again);
		tree_free(t);
		tree_free(t2);
	}
	return 0;
}

/* The API's silence body (POST /api/v1/silences) against arbitrary bytes:
 * an error or a silence, never a crash, leak or out-of-bounds read. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "alert/silence.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct silence *s = NULL;
	char *error = NULL;

	if (silence_parse_json((const char *)data, size, (usec_t)1800000000 * USEC_PER_SEC, &s,
			       &error) >= 0) {
		json_t *j = silence_json(s, (usec_t)1800000000 * USEC_PER_SEC);

		json_decref(j);
		silence_free(s);
	}
	free(error);
	return 0;
}

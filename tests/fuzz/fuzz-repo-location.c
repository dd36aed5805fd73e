/* Repository locations (--repo, BCDR_REPOSITORY, the plan). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "repo/location.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), shown[256];
	struct location *l = NULL;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	if (location_parse(text, &l, NULL) == 0)
		location_free(l);
	location_redact(text, shown, sizeof(shown));
	free(text);
	return 0;
}

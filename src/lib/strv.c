#include "lib/strv.h"

#include <stdlib.h>
#include <string.h>

#include "lib/cleanup.h"

char **strv_copy(char *const *v)
{
	size_t n = 0;
	char **out;

	if (!v)
		return NULL;
	while (v[n])
		n++;
	out = calloc(n + 1, sizeof(char *));
	for (size_t i = 0; out && i < n; i++)
		if (!(out[i] = strdup(v[i]))) {
			strv_free(out);
			return NULL;
		}
	return out;
}

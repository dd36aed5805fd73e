/* dashboard_asset() takes the request path straight from the network. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/dashboard.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *path = malloc(size + 1);
	const void *bytes = NULL;
	const char *type = NULL;
	size_t len = 0;
	int r;

	if (!path)
		return 0;
	memcpy(path, data, size);
	path[size] = '\0';
	r = dashboard_asset(path, &bytes, &len, &type);
	if (r == 0) {
		/* A hit is one of the embedded files, whole. */
		if (!bytes || !type || len == 0 || ((const unsigned char *)bytes)[len] != '\0')
			abort();
	} else if (r != -ENOENT && r != -EINVAL) {
		abort();
	}
	free(path);
	return 0;
}

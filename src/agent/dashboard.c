/* Lookup of the embedded dashboard files (see dashboard.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/dashboard.h"

#define DASHBOARD_PATH_MAX 256

static int compare_path(const void *key, const void *elem)
{
	const struct dashboard_file *file = elem;

	return strcmp(key, file->path);
}

int dashboard_asset(const char *path, const void **data, size_t *len,
		    const char **content_type)
{
	char key[DASHBOARD_PATH_MAX + 1];
	const struct dashboard_file *file;
	size_t n;

	if (!path || path[0] != '/')
		return -EINVAL;
	n = strcspn(path, "?#");
	if (n > DASHBOARD_PATH_MAX)
		return -EINVAL;
	if (n == 1) {
		/* The page itself; everything else is addressed by name. */
		memcpy(key, "/index.html", sizeof("/index.html"));
	} else {
		memcpy(key, path, n);
		key[n] = '\0';
	}
	file = bsearch(key, dashboard_files, dashboard_files_count, sizeof(*file),
		       compare_path);
	if (!file)
		return -ENOENT;
	if (data)
		*data = file->data;
	if (len)
		*len = file->len;
	if (content_type)
		*content_type = file->content_type;
	return 0;
}

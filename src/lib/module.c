/* Loading of the engines' modules (lib/module.h). Linked into the
 * executable only: it is where BCDR_MODULE_DIR is defined. */
#include "lib/module.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Writes the path of file beside the executable into buf; false if the
 * executable's path is unknown or too long. */
static bool path_beside_exe(const char *file, char *buf, size_t size)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	if (n <= 0)
		return false;
	exe[n] = 0;
	slash = strrchr(exe, '/');
	if (!slash)
		return false;
	*slash = 0;
	return snprintf(buf, size, "%s/%s", exe, file) < (int)size;
}

int module_load(const char *file, const char *symbol, size_t size, const char *what,
		const void **ret, char *why, size_t why_size)
{
	char beside[PATH_MAX], installed[PATH_MAX];
	const char *paths[2], *path = NULL;
	const struct module_head *head;
	size_t n = 0;
	void *h;

	if (path_beside_exe(file, beside, sizeof(beside)))
		paths[n++] = beside;
	if (snprintf(installed, sizeof(installed), "%s/%s", BCDR_MODULE_DIR, file) <
	    (int)sizeof(installed))
		paths[n++] = installed;
	for (size_t i = 0; i < n && !path; i++)
		if (access(paths[i], F_OK) == 0)
			path = paths[i];
	if (!path) {
		snprintf(why, why_size, "cannot find %s '%s' beside the binary or in '%s': "
			 "reinstall bcdr", what, file, BCDR_MODULE_DIR);
		return -ELIBACC;
	}
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(why, why_size, "cannot load %s '%s': %s: reinstall bcdr", what, path,
			 dlerror());
		return -ELIBBAD;
	}
	head = dlsym(h, symbol);
	if (!head || head->size != size || strcmp(head->version, BCDR_VERSION) != 0) {
		snprintf(why, why_size, "'%s' is not %s of bcdr %s: reinstall bcdr", path, what,
			 BCDR_VERSION);
		dlclose(h);
		return -ELIBBAD;
	}
	*ret = head;
	return 0;
}

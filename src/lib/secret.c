#include "lib/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/err.h"

int secret_read_file(const char *path, size_t max, char **ret)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	struct stat st;
	size_t len = 0;
	char *data;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	/* The mode of what was opened (a symlink's target), before a byte is
	 * read: a secret others can read is not one. */
	if (st.st_mode & (S_IRWXG | S_IRWXO))
		return -BCDR_ERR_INSECURE;
	data = malloc(max + 2);
	if (!data)
		return -ENOMEM;
	for (;;) {
		ssize_t n = read(fd, data + len, max + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int r = -errno;

			explicit_bzero(data, len);
			free(data);
			return r;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max) {
			explicit_bzero(data, len);
			free(data);
			return -BCDR_ERR_TOO_BIG;
		}
	}
	data[len] = 0;
	if (memchr(data, 0, len)) {
		explicit_bzero(data, len);
		free(data);
		return -EILSEQ;
	}
	if (len && data[len - 1] == '\n') {
		data[--len] = 0;
		if (len && data[len - 1] == '\r')
			data[--len] = 0;
	}
	*ret = data;
	return 0;
}

void secret_message(int r, const char *what, const char *path, char *out, size_t size)
{
	if (r == -BCDR_ERR_INSECURE)
		snprintf(out, size, "the %s file '%s' may be read by group or others: chmod 600 %s",
			 what, path, path);
	else if (r == -BCDR_ERR_TOO_BIG)
		snprintf(out, size, "the %s file '%s' is too large for a secret", what, path);
	else if (r == -EILSEQ)
		snprintf(out, size, "the %s file '%s' holds a NUL byte", what, path);
	else
		snprintf(out, size, "cannot read the %s file '%s': %s", what, path, err_str(r));
}

void secret_free(char *s)
{
	if (!s)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

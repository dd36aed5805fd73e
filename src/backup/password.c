#include "backup/password.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/fs.h"

int password_read_file(const char *path, char **ret)
{
	char *data;
	size_t len;
	int r = fs_read_file(path, PASSWORD_MAX, &data, &len);

	if (r < 0)
		return r;
	data[strcspn(data, "\r\n")] = 0;
	*ret = data;
	return 0;
}

static int prompt(const char *text, char **ret)
{
	_cleanup_close_ int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
	struct termios old, quiet;
	char buf[PASSWORD_MAX + 2];
	size_t len = 0;

	if (fd < 0)
		return -ENOKEY;
	if (write(fd, text, strlen(text)) < 0)
		return -errno;
	if (tcgetattr(fd, &old) < 0)
		return -errno;
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	tcsetattr(fd, TCSAFLUSH, &quiet);
	while (len < sizeof(buf) - 1) {
		ssize_t n = read(fd, buf + len, 1);

		if (n <= 0 || buf[len] == '\n')
			break;
		len++;
	}
	buf[len] = 0;
	tcsetattr(fd, TCSAFLUSH, &old);
	if (write(fd, "\n", 1) < 0)
		return -errno;
	*ret = strdup(buf);
	return *ret ? 0 : -ENOMEM;
}

int password_get(const char *file, const char *what, bool confirm, char **ret)
{
	const char *env;
	char text[128];
	int r;

	if (file)
		return password_read_file(file, ret);
	env = getenv("BCDR_PASSWORD_FILE");
	if (env && *env)
		return password_read_file(env, ret);
	env = getenv("BCDR_PASSWORD");
	if (env) {
		*ret = strdup(env);
		return *ret ? 0 : -ENOMEM;
	}
	if (!isatty(STDIN_FILENO))
		return -ENOKEY;
	snprintf(text, sizeof(text), "%s: ", what);
	r = prompt(text, ret);
	if (r >= 0 && confirm) {
		_cleanup_free_ char *again = NULL;

		snprintf(text, sizeof(text), "%s again: ", what);
		r = prompt(text, &again);
		if (r >= 0 && strcmp(again, *ret) != 0) {
			free(*ret);
			*ret = NULL;
			return -EINVAL;
		}
	}
	return r;
}

#include "backup/password.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/secret.h"

int password_read_file(const char *path, char **ret)
{
	return secret_read_file(path, PASSWORD_MAX, ret);
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
	*ret = strdup(buf);
	explicit_bzero(buf, sizeof(buf));
	if (!*ret)
		return -ENOMEM;
	if (write(fd, "\n", 1) < 0) {
		secret_free(TAKE_PTR(*ret));
		return -errno;
	}
	return 0;
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
		_cleanup_secret_ char *again = NULL;

		snprintf(text, sizeof(text), "%s again: ", what);
		r = prompt(text, &again);
		if (r >= 0 && strcmp(again, *ret) != 0) {
			secret_free(TAKE_PTR(*ret));
			return -EINVAL;
		}
		if (r < 0)
			secret_free(TAKE_PTR(*ret));
	}
	return r;
}

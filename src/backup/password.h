/* Where a repository's password comes from: a file named by the caller
 * (--password-file, or the plan's password_file), then BCDR_PASSWORD_FILE,
 * then BCDR_PASSWORD, then a prompt when stdin is a terminal. */
#pragma once

#include <stdbool.h>

#define PASSWORD_MAX 4096

/* *ret is a heap string (secret_free() it: lib/secret.h). confirm: ask
 * twice (for a new password; -EINVAL when they differ). what names the
 * password in the prompt. -ENOKEY when there is no source. A file is read
 * with secret_read_file(): refused when group or others may read it. */
int password_get(const char *file, const char *what, bool confirm, char **ret);
/* Reads a password file (secret_read_file(): bounded, mode 600, one
 * trailing newline stripped). */
int password_read_file(const char *path, char **ret);

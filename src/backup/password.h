/* Where a repository's password comes from: a file named by the caller
 * (--password-file, or the plan's password_file), then BCDR_PASSWORD_FILE,
 * then BCDR_PASSWORD, then a prompt when stdin is a terminal. */
#pragma once

#include <stdbool.h>

#define PASSWORD_MAX 4096

/* *ret is a heap string (free() it). confirm: ask twice (for a new
 * password). what names the password in the prompt. -ENOKEY when there is
 * no source. */
int password_get(const char *file, const char *what, bool confirm, char **ret);
/* Reads the first line of a file (bounded), without its newline. */
int password_read_file(const char *path, char **ret);

/* Secrets kept in files: passwords, API tokens, access keys. One reader for
 * all of them, so each is bounded, refused when others may read it, and
 * wiped when freed. */
#pragma once

#include <stddef.h>

#include "lib/cleanup.h"

/* Reads the secret in path: at most max bytes, one trailing newline ("\n"
 * or "\r\n") stripped, into a NUL-terminated heap string (free it with
 * secret_free()). A file that group or others may read or write is
 * -BCDR_ERR_INSECURE (nothing is read); a larger one -BCDR_ERR_TOO_BIG; a
 * NUL byte in it -EILSEQ. */
int secret_read_file(const char *path, size_t max, char **ret);

/* What went wrong, for an error of secret_read_file(): names the file and,
 * for a file others may read, says to run chmod 600 on it. */
void secret_message(int r, const char *what, const char *path, char *out, size_t size);

/* Wipes the string's bytes, then frees it; NULL is a no-op. */
void secret_free(char *s);

static inline void secret_freep(char **s)
{
	secret_free(*s);
}
#define _cleanup_secret_ _cleanup_(secret_freep)

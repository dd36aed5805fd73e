/* NULL-terminated string vectors (argv, lists of addresses): copying.
 * strv_free() is in lib/cleanup.h. */
#pragma once

#include <stddef.h>

/* A deep copy of v (NULL-terminated), or NULL for v NULL or out of memory. */
char **strv_copy(char *const *v);
/* How many strings v holds (0 for NULL). */
size_t strv_length(char *const *v);
/* Appends a copy of s to *v, which holds *n strings (NULL-terminated, or
 * NULL when *n is 0); 0 or -ENOMEM (*v unchanged but maybe moved). */
int strv_push(char ***v, size_t *n, const char *s);

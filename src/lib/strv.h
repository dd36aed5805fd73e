/* NULL-terminated string vectors (argv, lists of addresses): copying.
 * strv_free() is in lib/cleanup.h. */
#pragma once

/* A deep copy of v (NULL-terminated), or NULL for v NULL or out of memory. */
char **strv_copy(char *const *v);

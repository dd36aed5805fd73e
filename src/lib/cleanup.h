/* Scope-bound cleanup (systemd's idiom): a variable declared with
 * _cleanup_(fn) has fn(&var) called when it leaves scope, so error paths
 * need no goto ladder. TAKE_PTR() hands ownership out of such a variable. */
#pragma once

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))

#define TAKE_PTR(p)                         \
	({                                  \
		__typeof__(p) _taken_ = (p); \
		(p) = NULL;                 \
		_taken_;                    \
	})

#define TAKE_FD(fd)                  \
	({                           \
		int _taken_fd_ = (fd); \
		(fd) = -1;           \
		_taken_fd_;          \
	})

/* Defines fnp(T **p) calling fn(*p) when *p is not NULL. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, fn)        \
	static inline void fn##p(type *p)            \
	{                                            \
		if (*p)                              \
			fn(*p);                      \
	}

static inline void freep(void *p)
{
	free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline void closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Frees a NULL-terminated array of strings and the array. */
static inline void strv_free(char **v)
{
	if (!v)
		return;
	for (char **s = v; *s; s++)
		free(*s);
	free(v);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, strv_free)
#define _cleanup_strv_free_ _cleanup_(strv_freep)

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

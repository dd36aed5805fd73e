/* libcurl, loaded the first time bcdr calls it. Linked into the executable
 * only (unit tests and fuzzers link libcurl itself): it defines, under
 * libcurl's own names, the few functions bcdr calls, each a call through a
 * pointer found with dlsym() in "libcurl.so.4", opened on the first call.
 *
 * Why: libcurl brings libssl, GnuTLS, krb5, LDAP, ssh2, nghttp2 and more
 * into the process, about 5 MiB of resident pages in an idle agent, while an
 * agent whose http checks are plain http:// (src/lib/http-client.c), with
 * file, process and system checks, never needs it. See docs/internals.md,
 * "What the binary links".
 *
 * When the library cannot be loaded every call fails as libcurl's own
 * would on a broken setup (CURLE_FAILED_INIT, NULL), the cause is logged
 * once, and curl_easy_strerror() returns it, so callers that print libcurl's
 * message say what to do. */
#define CURL_DISABLE_TYPECHECK /* the type-checking macros would rename our definitions */
#include <curl/curl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

#include "lib/log.h"

#ifndef CURL_LOADER_SONAME /* a unit test points it at a missing library */
#define CURL_LOADER_SONAME "libcurl.so.4"
#endif

/* The end of the BLOB option range: libcurl's option types come in blocks of
 * 10000 (curl.h: CURLOPTTYPE_*). */
#define CURLOPTTYPE_BLOB_END (CURLOPTTYPE_BLOB + 10000)

typedef void (*generic_fn)(void);

static struct {
	CURLcode (*global_init)(long flags);
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *c, CURLoption option, ...);
	CURLcode (*easy_perform)(CURL *c);
	CURLcode (*easy_getinfo)(CURL *c, CURLINFO info, ...);
	void (*easy_cleanup)(CURL *c);
	void (*easy_reset)(CURL *c);
	const char *(*easy_strerror)(CURLcode code);
	struct curl_slist *(*slist_append)(struct curl_slist *list, const char *s);
	void (*slist_free_all)(struct curl_slist *list);
} fn;

static const struct {
	const char *name;
	void **slot;
} symbols[] = {
	{ "curl_global_init", (void **)&fn.global_init },
	{ "curl_easy_init", (void **)&fn.easy_init },
	{ "curl_easy_setopt", (void **)&fn.easy_setopt },
	{ "curl_easy_perform", (void **)&fn.easy_perform },
	{ "curl_easy_getinfo", (void **)&fn.easy_getinfo },
	{ "curl_easy_cleanup", (void **)&fn.easy_cleanup },
	{ "curl_easy_reset", (void **)&fn.easy_reset },
	{ "curl_easy_strerror", (void **)&fn.easy_strerror },
	{ "curl_slist_append", (void **)&fn.slist_append },
	{ "curl_slist_free_all", (void **)&fn.slist_free_all },
};

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static bool loaded;
static char load_error[320] = "libcurl is not loaded";

static void load(void)
{
	void *h = dlopen(CURL_LOADER_SONAME, RTLD_NOW | RTLD_LOCAL);

	if (!h) {
		snprintf(load_error, sizeof(load_error), "cannot load %s (%s): install libcurl4",
			 CURL_LOADER_SONAME, dlerror());
		log_error("%s", load_error);
		return;
	}
	for (size_t i = 0; i < sizeof(symbols) / sizeof(symbols[0]); i++) {
		*symbols[i].slot = dlsym(h, symbols[i].name);
		if (!*symbols[i].slot) {
			snprintf(load_error, sizeof(load_error), "cannot load %s (it has no %s): "
				 "install libcurl4", CURL_LOADER_SONAME, symbols[i].name);
			log_error("%s", load_error);
			return; /* not closed: harmless, and dlclose() of libcurl is not */
		}
	}
	/* Once, here, under pthread_once: curl_global_init() is not safe to
	 * race in every libcurl version. */
	if (fn.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(load_error, sizeof(load_error),
			 "%s failed to initialise (out of memory?)", CURL_LOADER_SONAME);
		log_error("%s", load_error);
		return;
	}
	loaded = true; /* never closed: handles and its threads may outlive any caller */
}

static bool ready(void)
{
	pthread_once(&load_once, load);
	return loaded;
}

/* The library is initialised when loaded (with CURL_GLOBAL_DEFAULT, the only
 * flags bcdr uses); this loads it. */
CURLcode curl_global_init(long flags)
{
	(void)flags;
	return ready() ? CURLE_OK : CURLE_FAILED_INIT;
}

CURL *curl_easy_init(void)
{
	return ready() ? fn.easy_init() : NULL;
}

/* The one argument is read by the option's type (curl.h: options are
 * numbered in blocks by the type of their argument) and passed on as that
 * type, as a variadic call needs. */
CURLcode curl_easy_setopt(CURL *c, CURLoption option, ...)
{
	CURLcode r = CURLE_UNKNOWN_OPTION;
	va_list ap;

	if (!ready())
		return CURLE_FAILED_INIT;
	va_start(ap, option);
	if (option < CURLOPTTYPE_OBJECTPOINT)
		r = fn.easy_setopt(c, option, va_arg(ap, long));
	else if (option < CURLOPTTYPE_FUNCTIONPOINT)
		r = fn.easy_setopt(c, option, va_arg(ap, void *));
	else if (option < CURLOPTTYPE_OFF_T)
		r = fn.easy_setopt(c, option, va_arg(ap, generic_fn));
	else if (option < CURLOPTTYPE_BLOB)
		r = fn.easy_setopt(c, option, va_arg(ap, curl_off_t));
	else if (option < CURLOPTTYPE_BLOB_END)
		r = fn.easy_setopt(c, option, va_arg(ap, struct curl_blob *));
	va_end(ap);
	return r;
}

/* Every CURLINFO_* writes through a pointer whose type its mask gives. */
CURLcode curl_easy_getinfo(CURL *c, CURLINFO info, ...)
{
	CURLcode r = CURLE_UNKNOWN_OPTION;
	va_list ap;

	if (!ready())
		return CURLE_FAILED_INIT;
	va_start(ap, info);
	switch (info & CURLINFO_TYPEMASK) {
	case CURLINFO_STRING:
		r = fn.easy_getinfo(c, info, va_arg(ap, char **));
		break;
	case CURLINFO_LONG:
		r = fn.easy_getinfo(c, info, va_arg(ap, long *));
		break;
	case CURLINFO_DOUBLE:
		r = fn.easy_getinfo(c, info, va_arg(ap, double *));
		break;
	case CURLINFO_SLIST: /* and CURLINFO_PTR, the same mask */
		r = fn.easy_getinfo(c, info, va_arg(ap, void *));
		break;
	case CURLINFO_SOCKET:
		r = fn.easy_getinfo(c, info, va_arg(ap, curl_socket_t *));
		break;
	case CURLINFO_OFF_T:
		r = fn.easy_getinfo(c, info, va_arg(ap, curl_off_t *));
		break;
	}
	va_end(ap);
	return r;
}

CURLcode curl_easy_perform(CURL *c)
{
	return ready() ? fn.easy_perform(c) : CURLE_FAILED_INIT;
}

/* Freeing nothing does not load the library. */
void curl_easy_cleanup(CURL *c)
{
	if (c && ready())
		fn.easy_cleanup(c);
}

void curl_easy_reset(CURL *c)
{
	if (ready())
		fn.easy_reset(c);
}

/* Without the library, every code's message is why it is missing. */
const char *curl_easy_strerror(CURLcode code)
{
	return ready() ? fn.easy_strerror(code) : load_error;
}

struct curl_slist *curl_slist_append(struct curl_slist *list, const char *s)
{
	return ready() ? fn.slist_append(list, s) : NULL;
}

void curl_slist_free_all(struct curl_slist *list)
{
	if (list && ready())
		fn.slist_free_all(list);
}

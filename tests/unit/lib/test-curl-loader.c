/* lib/curl-loader.c, linked as the executable links it (without libcurl):
 * the library is mapped only at the first call, and every argument type of
 * the variadic setopt and getinfo reaches libcurl intact (file:// URLs, so
 * no server is needed). Built a second time with CURL_LOADER_SONAME naming
 * a library that does not exist: every call fails and says why. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>

#include "lib/buf.h"
#include "lib/fs.h"

static bool libcurl_mapped(void)
{
	char *maps = NULL;
	size_t len;
	bool found;

	assert_int_equal(fs_read_file("/proc/self/maps", 16 << 20, &maps, &len), 0);
	found = strstr(maps, "libcurl") != NULL;
	free(maps);
	return found;
}

#ifndef EXPECT_MISSING

static size_t collect(char *p, size_t size, size_t n, void *userdata)
{
	return buf_append(userdata, p, size * n) < 0 ? 0 : size * n;
}

struct fixture {
	char path[64];
	char url[96];
};

static int setup(void **state)
{
	static struct fixture f;
	int fd;

	snprintf(f.path, sizeof(f.path), "/tmp/bcdr-test-curl-loader.XXXXXX");
	fd = mkstemp(f.path);
	if (fd < 0 || write(fd, "0123456789", 10) != 10)
		return -1;
	close(fd);
	snprintf(f.url, sizeof(f.url), "file://%s", f.path);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	unlink(f->path);
	return 0;
}

static void test_loaded_on_first_call(void **state)
{
	(void)state;
	/* Runs first: nothing has called libcurl in this process yet. */
	assert_false(libcurl_mapped());
	assert_int_equal(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
	assert_true(libcurl_mapped());
	assert_string_equal(curl_easy_strerror(CURLE_OK), "No error");
}

static void test_every_argument_type(void **state)
{
	struct fixture *f = *state;
	CURL *c = curl_easy_init();
	struct curl_slist *list = NULL;
	struct buf got;
	char *effective = NULL, *priv = NULL, marker[] = "mine";
	long code = -1;
	double total = -1;
	curl_off_t size = -1;
	curl_socket_t sock = 0;
	struct curl_blob blob = { .data = (void *)"x", .len = 1, .flags = CURL_BLOB_COPY };

	assert_non_null(c);
	buf_init(&got, 1024);
	/* Pointers (URL, PRIVATE, WRITEDATA), a function, longs, off_t. */
	assert_int_equal(curl_easy_setopt(c, CURLOPT_URL, f->url), CURLE_OK);
	assert_int_equal(curl_easy_setopt(c, CURLOPT_PRIVATE, marker), CURLE_OK);
	assert_int_equal(curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect), CURLE_OK);
	assert_int_equal(curl_easy_setopt(c, CURLOPT_WRITEDATA, &got), CURLE_OK);
	assert_int_equal(curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L), CURLE_OK);
	assert_int_equal(curl_easy_setopt(c, CURLOPT_RESUME_FROM, 6L), CURLE_OK);
	assert_int_equal(curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)100),
			 CURLE_OK);
	assert_int_equal(curl_easy_setopt(c, CURLOPT_SSLCERT_BLOB, &blob), CURLE_OK);
	assert_int_equal(curl_easy_setopt(c, (CURLoption)(CURLOPTTYPE_BLOB + 10000 + 1), 1L),
			 CURLE_UNKNOWN_OPTION);
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	/* The long arrived: the transfer resumed at byte 6. */
	assert_int_equal(got.len, 4);
	assert_memory_equal(got.data, "6789", 4);

	/* Every getinfo type. */
	assert_int_equal(curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &effective), CURLE_OK);
	assert_string_equal(effective, f->url);
	assert_int_equal(curl_easy_getinfo(c, CURLINFO_PRIVATE, &priv), CURLE_OK);
	assert_ptr_equal(priv, marker);
	assert_int_equal(curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code), CURLE_OK);
	assert_int_equal(code, 0); /* file:// has no status */
	assert_int_equal(curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &total), CURLE_OK);
	assert_true(total >= 0);
	assert_int_equal(curl_easy_getinfo(c, CURLINFO_SIZE_DOWNLOAD_T, &size), CURLE_OK);
	assert_int_equal(size, 4);
	assert_int_equal(curl_easy_getinfo(c, CURLINFO_ACTIVESOCKET, &sock), CURLE_OK);
	assert_int_equal(sock, CURL_SOCKET_BAD);

	/* The off_t arrived: this transfer resumes at byte 8. */
	curl_easy_reset(c);
	buf_reset(&got);
	assert_int_equal(curl_easy_setopt(c, CURLOPT_URL, f->url), CURLE_OK);
	assert_int_equal(curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect), CURLE_OK);
	assert_int_equal(curl_easy_setopt(c, CURLOPT_WRITEDATA, &got), CURLE_OK);
	assert_int_equal(curl_easy_setopt(c, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)8), CURLE_OK);
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	assert_int_equal(got.len, 2);
	assert_memory_equal(got.data, "89", 2);
	assert_string_equal(curl_easy_strerror(CURLE_FILESIZE_EXCEEDED),
			    "Maximum file size exceeded");

	list = curl_slist_append(list, "A: 1");
	assert_non_null(list);
	list = curl_slist_append(list, "B: 2");
	assert_string_equal(list->next->data, "B: 2");
	curl_slist_free_all(list);
	curl_easy_cleanup(c);
	buf_release(&got);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loaded_on_first_call),
		cmocka_unit_test(test_every_argument_type),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

#else /* EXPECT_MISSING: CURL_LOADER_SONAME names no library */

static void test_missing_library_fails_every_call(void **state)
{
	const char *why;

	(void)state;
	assert_null(curl_easy_init());
	assert_int_equal(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_FAILED_INIT);
	assert_int_equal(curl_easy_setopt(NULL, CURLOPT_NOSIGNAL, 1L), CURLE_FAILED_INIT);
	assert_int_equal(curl_easy_perform(NULL), CURLE_FAILED_INIT);
	assert_int_equal(curl_easy_getinfo(NULL, CURLINFO_RESPONSE_CODE, NULL), CURLE_FAILED_INIT);
	assert_null(curl_slist_append(NULL, "A: 1"));
	curl_easy_cleanup(NULL);
	curl_slist_free_all(NULL);
	why = curl_easy_strerror(CURLE_COULDNT_CONNECT);
	assert_non_null(strstr(why, "cannot load " CURL_LOADER_SONAME " ("));
	assert_non_null(strstr(why, "): install libcurl4"));
	assert_false(libcurl_mapped());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_missing_library_fails_every_call),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

#endif

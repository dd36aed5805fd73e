/* The few S3 replies bcdr reads (ListObjects v1 and v2, errors), and the
 * AWS shared credentials file: bounded decoders of outside bytes, exposed
 * for the tests and the fuzzer. Not a general XML parser: S3's replies are
 * flat elements with text content, and that is all this reads (entities
 * decoded, CDATA and comments refused, nesting bounded by the scan). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define S3_KEY_MAX 1024

struct s3_list_page {
	bool truncated;
	char next_token[S3_KEY_MAX + 1]; /* NextContinuationToken (v2) */
	char next_marker[S3_KEY_MAX + 1]; /* NextMarker (v1), else the last key */
	size_t nkeys;
};

/* Calls fn for each <Contents> (its Key, decoded, and Size) of a
 * ListBucketResult; -BCDR_ERR_PROTOCOL on anything malformed, fn's
 * nonzero return stops with that value. */
int s3_list_parse(const char *xml, size_t len, struct s3_list_page *page,
		  int (*fn)(const char *key, uint64_t size, void *userdata), void *userdata);
/* <Error><Code>...</Code><Message>...</Message></Error>: Code and Message
 * (decoded, truncated to their sizes); -BCDR_ERR_PROTOCOL when none. */
int s3_error_parse(const char *xml, size_t len, char *code, size_t code_size, char *message,
		   size_t message_size);

/* The [profile] section of a credentials file (INI: key = value). Values
 * go to the buffers (NUL when absent); -ENOENT when the profile is not in
 * it, -BCDR_ERR_TOO_BIG past 1 MiB. */
int s3_credentials_parse(const char *text, size_t len, const char *profile, char *key_id,
			 size_t key_id_size, char *secret, size_t secret_size, char *token,
			 size_t token_size);

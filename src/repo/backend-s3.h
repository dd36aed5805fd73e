/* The S3 backend (backend_s3_open/create in repo/backend.h); its helpers,
 * exposed for the tests. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "repo/backend.h"

/* AWS's URI encoding (unreserved characters kept, the rest %XX in upper
 * case; '/' kept when keep_slash), truncated to size. */
void s3_uri_encode(const char *s, bool keep_slash, char *out, size_t size);
/* The credentials for o: the plan's files, else AWS_ACCESS_KEY_ID and
 * AWS_SECRET_ACCESS_KEY (with AWS_SESSION_TOKEN), else the profile
 * (o->profile, $AWS_PROFILE, "default") of $AWS_SHARED_CREDENTIALS_FILE or
 * ~/.aws/credentials. -EACCES with remote_error() set when none. */
int s3_credentials(const struct backend_options *o, const char *display, char *key_id,
		   size_t key_id_size, char *secret, size_t secret_size, char *token,
		   size_t token_size);
/* Whether requests to loc name the bucket in the host (1: BUCKET.HOST,
 * 0: HOST/BUCKET), by a; -EINVAL with *ret_why (static) when a asks for
 * the host and loc cannot have it (an IP address, a bucket that is no
 * host name). */
int s3_virtual_host(const struct location *loc, enum s3_addressing a, const char **ret_why);

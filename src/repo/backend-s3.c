/* s3:http(s)://HOST[:PORT]/BUCKET[/PREFIX]: AWS S3 and the stores that
 * speak it (Ceph RGW, MinIO, B2, Wasabi, R2). Objects are
 * PREFIX/<dir>/<name> with data/ flat (an object store needs no fan-out).
 * Requests are signed with Signature V4 by libcurl (CURLOPT_AWS_SIGV4);
 * bcdr sends x-amz-content-sha256 itself (curl 7.88 signs the body's hash
 * but does not send it) and builds every query sorted and encoded (7.88
 * signs the query as given). Listing is ListObjectsV2 with continuation
 * tokens, falling back to ListObjects v1 with markers for stores whose v2
 * is missing or broken. Packs upload in the background (repo/remote.h). */
#include "repo/backend-s3.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "lib/secret.h"
#include "repo/remote.h"
#include "repo/s3-xml.h"

#define S3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define S3_MAX_PAGE (16u << 20)
#define S3_MAX_PAGES 1000000u

struct s3 {
	struct backend b;
	struct remote *rm;
	char *base;   /* scheme://host[:port][/bucket] : objects are base/key */
	char *prefix; /* "" or "some/prefix/" */
	char *bucket;
	char *display;
	char *token;  /* AWS_SESSION_TOKEN, or NULL */
	char *storage_class;
	bool list_v1; /* after v2 failed once, or asked for */
	/* Object Lock: every object but locks kept this many days (0: none) */
	unsigned lock_days;
	bool lock_governance;
	int page_keys;
};

void s3_uri_encode(const char *s, bool keep_slash, char *out, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *s && o + 4 < size; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/')) {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = 0;
}

/* ---- addressing ---- */

/* A bucket name that can be the first label(s) of a host name: 3-63 of
 * lowercase letters, digits, '-' and '.', a letter or digit at each end,
 * no empty label, not an IPv4 address. */
static bool dns_bucket(const char *b)
{
	size_t n = strlen(b);
	bool digits_and_dots = true;

	if (n < 3 || n > 63 || b[0] == '.' || b[0] == '-' || b[n - 1] == '.' || b[n - 1] == '-' ||
	    strstr(b, "..") || strstr(b, ".-") || strstr(b, "-."))
		return false;
	for (const char *p = b; *p; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		      *p == '.'))
			return false;
		if (!((*p >= '0' && *p <= '9') || *p == '.'))
			digits_and_dots = false;
	}
	return !digits_and_dots;
}

static bool ip_literal(const struct location *loc)
{
	if (loc->ipv6)
		return true;
	for (const char *p = loc->host; *p; p++)
		if (!((*p >= '0' && *p <= '9') || *p == '.'))
			return false;
	return true;
}

/* The stores that want virtual-host style (AWS has deprecated path style;
 * Alibaba OSS refuses it), as minio-go's "auto" lookup has them. */
static bool host_wants_virtual(const char *host)
{
	static const char *const domains[] = { "amazonaws.com", "amazonaws.com.cn",
					       "googleapis.com", "aliyuncs.com" };
	size_t hl = strlen(host);

	for (size_t i = 0; i < ELEMENTSOF(domains); i++) {
		size_t dl = strlen(domains[i]);

		if (hl == dl ? strcasecmp(host, domains[i]) == 0
			     : hl > dl && host[hl - dl - 1] == '.' &&
				       strcasecmp(host + hl - dl, domains[i]) == 0)
			return true;
	}
	return false;
}

int s3_virtual_host(const struct location *loc, enum s3_addressing a, const char **ret_why)
{
	bool fits = !ip_literal(loc) && dns_bucket(loc->bucket);

	switch (a) {
	case S3_ADDRESSING_PATH:
		return 0;
	case S3_ADDRESSING_VIRTUAL_HOST:
		if (ip_literal(loc)) {
			*ret_why = "virtual_host needs the store's host name, not an IP address "
				   "(BUCKET.HOST must resolve)";
			return -EINVAL;
		}
		if (!fits) {
			*ret_why = "with virtual_host the bucket is part of a host name: only "
				   "lowercase letters, digits, '-' and '.' (or set virtual_host: "
				   "false)";
			return -EINVAL;
		}
		return 1;
	case S3_ADDRESSING_AUTO:
	default:
		/* a dotted bucket over https does not match the store's
		 * wildcard certificate: path style for those */
		return fits && host_wants_virtual(loc->host) &&
		       !(loc->tls && strchr(loc->bucket, '.'));
	}
}

/* ---- credentials ---- */

static int read_secret_file(const char *path, char *out, size_t size, const char *what)
{
	_cleanup_secret_ char *text = NULL;
	char why[8400];
	int r = secret_read_file(path, size - 1, &text);

	if (r < 0) {
		secret_message(r, what, path, why, sizeof(why));
		remote_set_error(-EACCES, "%s", why);
		return -EACCES;
	}
	if (!*text) {
		remote_set_error(-EACCES, "the %s file '%s' is empty", what, path);
		return -EACCES;
	}
	snprintf(out, size, "%s", text);
	return 0;
}

int s3_credentials(const struct backend_options *o, const char *display, char *key_id,
		   size_t key_id_size, char *secret, size_t secret_size, char *token,
		   size_t token_size)
{
	const char *env_id = getenv("AWS_ACCESS_KEY_ID");
	const char *env_secret = getenv("AWS_SECRET_ACCESS_KEY");
	const char *file = getenv("AWS_SHARED_CREDENTIALS_FILE"), *home = getenv("HOME");
	const char *profile = o->profile ? o->profile : getenv("AWS_PROFILE");
	char path[4096];
	int r;

	key_id[0] = secret[0] = token[0] = 0;
	if (o->access_key_id_file || o->secret_access_key_file) {
		if (!o->access_key_id_file || !o->secret_access_key_file) {
			remote_set_error(-EACCES, "give both access_key_id_file and "
					 "secret_access_key_file for '%s'", display);
			return -EACCES;
		}
		if ((r = read_secret_file(o->access_key_id_file, key_id, key_id_size,
					  "access key id")) < 0 ||
		    (r = read_secret_file(o->secret_access_key_file, secret, secret_size,
					  "secret access key")) < 0)
			return r;
		return 0;
	}
	if (env_id && *env_id && env_secret && *env_secret) {
		const char *t = getenv("AWS_SESSION_TOKEN");

		if (strlen(env_id) >= key_id_size || strlen(env_secret) >= secret_size ||
		    (t && strlen(t) >= token_size))
			return -BCDR_ERR_TOO_BIG;
		snprintf(key_id, key_id_size, "%s", env_id);
		snprintf(secret, secret_size, "%s", env_secret);
		snprintf(token, token_size, "%s", t ? t : "");
		return 0;
	}
	if (!file || !*file) {
		if (!home)
			home = "/root";
		snprintf(path, sizeof(path), "%s/.aws/credentials", home);
		file = path;
	}
	{
		_cleanup_free_ char *text = NULL;
		size_t len = 0;

		r = fs_read_file(file, 1u << 20, &text, &len);
		if (r >= 0) {
			if (!profile || !*profile)
				profile = "default";
			r = s3_credentials_parse(text, len, profile, key_id, key_id_size, secret,
						 secret_size, token, token_size);
			explicit_bzero(text, len);
			if (r >= 0 && key_id[0] && secret[0])
				return 0;
		}
	}
	remote_set_error(-EACCES, "no S3 credentials for '%s': set AWS_ACCESS_KEY_ID and "
			 "AWS_SECRET_ACCESS_KEY, a profile in '%s' (AWS_PROFILE), or the plan's "
			 "access_key_id_file and secret_access_key_file", display, file);
	return -EACCES;
}

/* ---- requests ---- */

static void sha256_hex(const void *data, size_t len, char out[65])
{
	uint8_t md[32];

	SHA256(data, len, md);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* The SHA-256 in hex of the bytes of the object NAME, read from the name:
 * every object but the config and the locks is named by it (backend.h), so
 * an upload's hash costs no second pass over the pack. A name that lied
 * would be refused by the store (XAmzContentSHA256Mismatch), not stored.
 * NULL for the other names. */
static const char *hash_in_name(const char *name)
{
	const char *slash = strchr(name, '/');

	if (!slash || strncmp(name, "locks/", 6) == 0 || strlen(slash + 1) != 64 ||
	    strspn(slash + 1, "0123456789abcdef") != 64)
		return NULL;
	return slash + 1;
}

/* The headers every request carries, and extra (NULL-terminated, or NULL).
 * body_hash: the body's SHA-256 in hex when known, else it is computed. */
static struct curl_slist *s3_headers(struct s3 *s, const void *body, size_t len,
				     const char *body_hash, const char *const *extra)
{
	char line[256], hash[65];
	struct curl_slist *h;

	if (!body)
		body_hash = S3_EMPTY_SHA256;
	else if (!body_hash) {
		sha256_hex(body, len, hash);
		body_hash = hash;
	}
	snprintf(line, sizeof(line), "x-amz-content-sha256: %s", body_hash);
	h = curl_slist_append(NULL, line);
	if (h && s->token) {
		_cleanup_free_ char *t = NULL;

		if (asprintf(&t, "x-amz-security-token: %s", s->token) < 0)
			t = NULL;
		if (!t || !curl_slist_append(h, t)) {
			curl_slist_free_all(h);
			return NULL;
		}
	}
	for (size_t i = 0; h && extra && extra[i]; i++)
		if (!curl_slist_append(h, extra[i])) {
			curl_slist_free_all(h);
			return NULL;
		}
	return h;
}

/* S3's code in an error reply, and the message an operator can act on;
 * returns the -errno. */
static int s3_error(struct s3 *s, const struct remote_request *rq, const char *name)
{
	char code[64] = "", msg[256] = "";
	long st = rq->status;

	if (rq->reply)
		s3_error_parse((const char *)rq->reply, rq->reply_len, code, sizeof(code), msg,
			       sizeof(msg));
	if (strcmp(code, "InvalidAccessKeyId") == 0 || strcmp(code, "SignatureDoesNotMatch") == 0 ||
	    (st == 403 && !code[0] && strcmp(rq->method, "HEAD") == 0 && !strchr(name, '/') &&
	     strcmp(name, "config") != 0)) {
		remote_set_error(-EACCES, "'%s' refused the credentials (%s): check "
				 "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, the credentials file or "
				 "the plan's key files", s->display, code[0] ? code : "403");
		return -EACCES;
	}
	if (strcmp(code, "RequestTimeTooSkewed") == 0) {
		remote_set_error(-ETIME, "the clock of this host is too far from the time of '%s' "
				 "(RequestTimeTooSkewed): set the time (NTP) and try again",
				 s->display);
		return -ETIME;
	}
	if (strcmp(code, "NoSuchBucket") == 0) {
		remote_set_error(-ENXIO, "bucket '%s' does not exist at '%s': create it (bcdr init "
				 "does), or fix the location", s->bucket, s->display);
		return -ENXIO;
	}
	if (st == 404) {
		remote_set_error(-ENOENT, "'%s' is not in '%s'", name, s->display);
		return -ENOENT;
	}
	if (st == 403 && strcmp(rq->method, "DELETE") == 0) {
		remote_set_error(-EPERM, "'%s' refuses to delete '%s' (%s): these credentials may "
				 "only add, or the object is locked; forget and prune need "
				 "credentials that may delete", s->display, name,
				 code[0] ? code : "403");
		return -EPERM;
	}
	if (st == 403) {
		remote_set_error(-EACCES, "'%s' denied access to '%s' (%s%s%s): check the key's "
				 "permissions on the bucket", s->display, name,
				 code[0] ? code : "403", msg[0] ? ": " : "", msg);
		return -EACCES;
	}
	remote_set_error(-EIO, "'%s' answered %ld to %s of '%s' (%s%s%s)", s->display, st,
			 rq->method, name, code[0] ? code : "no error code", msg[0] ? ": " : "",
			 msg);
	return -EIO;
}

/* 400 RequestTimeout: the store gave up waiting for our body; retry. */
static bool s3_classify(long status, const uint8_t *reply, size_t len)
{
	char code[64], msg[8];

	if (status != 400 || !reply)
		return false;
	if (s3_error_parse((const char *)reply, len, code, sizeof(code), msg, sizeof(msg)) < 0)
		return false;
	return strcmp(code, "RequestTimeout") == 0 || strcmp(code, "SlowDown") == 0;
}

static int object_url(struct s3 *s, const char *name, char *out, size_t size)
{
	const char *slash = strchr(name, '/');
	int n;

	if (strstr(name, "..") || name[0] == '/' || (slash && strchr(slash + 1, '/')))
		return -EINVAL;
	for (const char *p = name; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || *p == '/' ||
		      *p == '-' || *p == '_' || *p == '.'))
			return -EINVAL;
	n = snprintf(out, size, "%s/%s%s", s->base, s->prefix, name);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* One request on an object: 0 with a 2xx reply in rq, else the error. */
static int s3_do(struct s3 *s, struct remote_request *rq, const char *name,
		 const char *const *extra)
{
	struct curl_slist *h = s3_headers(s, rq->body, rq->body_len, rq->body_sha256, extra);
	int r;

	if (!h)
		return -ENOMEM;
	rq->headers = h;
	r = remote_request(s->rm, rq);
	curl_slist_free_all(h);
	rq->headers = NULL;
	if (r < 0)
		return r;
	if (rq->status / 100 != 2) {
		r = s3_error(s, rq, name);
		remote_request_release(rq);
		return r;
	}
	return 0;
}

/* s3_do() on the object NAME (its URL built here). */
static int object_do(struct s3 *s, struct remote_request *rq, const char *name,
		     const char *const *extra)
{
	char url[2048];
	int r = object_url(s, name, url, sizeof(url));

	if (r < 0)
		return r;
	rq->url = url;
	r = s3_do(s, rq, name, extra);
	rq->url = NULL;
	return r;
}

static int s3_get(struct backend *b, const char *name, size_t max, uint8_t **ret, size_t *ret_len)
{
	struct s3 *s = (struct s3 *)b;
	struct remote_request rq = { .method = "GET", .max_reply = max };
	int r = object_do(s, &rq, name, NULL);

	if (r < 0)
		return r;
	*ret = TAKE_PTR(rq.reply);
	*ret_len = rq.reply_len;
	return 0;
}

static int s3_get_upto(struct backend *b, const char *name, uint64_t offset, size_t need,
		       size_t len, uint8_t *buf, size_t *ret_len)
{
	struct s3 *s = (struct s3 *)b;
	struct remote_request rq = {
		.method = "GET", .ranged = true, .offset = offset, .length = len, .need = need,
		.into = buf,
	};
	char url[2048];
	int r = object_url(s, name, url, sizeof(url));

	*ret_len = 0;
	if (r < 0)
		return r;
	if (len == 0)
		return 0;
	rq.url = url;
	r = s3_do(s, &rq, name, NULL);
	if (r == -EIO && rq.status == 416)
		return -BCDR_ERR_CORRUPT;
	if (r < 0)
		return r;
	if (rq.status != 206 && !(rq.status == 200 && offset == 0)) {
		remote_request_release(&rq);
		return -BCDR_ERR_PROTOCOL;
	}
	remote_request_release(&rq);
	*ret_len = rq.got;
	return 0;
}

static int s3_get_range(struct backend *b, const char *name, uint64_t offset, size_t len,
			uint8_t *buf)
{
	size_t got;

	return s3_get_upto(b, name, offset, len, len, buf, &got);
}

static int s3_get_stream(struct backend *b, const char *name, uint64_t offset, uint64_t len,
			 backend_stream_fn fn, void *ctx)
{
	struct s3 *s = (struct s3 *)b;
	struct remote_request rq = {
		.method = "GET", .ranged = true, .offset = offset, .length = (size_t)len,
		.stream = fn, .stream_ctx = ctx,
	};
	int r;

	if (len == 0)
		return 0;
	r = object_do(s, &rq, name, NULL);
	if (r == -EIO && rq.status == 416)
		return -BCDR_ERR_CORRUPT;
	if (r >= 0)
		remote_request_release(&rq);
	return r;
}

/* The headers that lock an object for s->lock_days: mode, date, and the
 * Content-MD5 that S3 demands with them. */
static void lock_headers(struct s3 *s, const void *data, size_t len, char mode[64],
			 char until[80], char md5[64])
{
	time_t t = time(NULL) + (time_t)s->lock_days * 86400;
	unsigned char md[16];
	unsigned int mdlen = 0;
	char b64[32];
	struct tm tm;

	snprintf(mode, 64, "x-amz-object-lock-mode: %s",
		 s->lock_governance ? "GOVERNANCE" : "COMPLIANCE");
	gmtime_r(&t, &tm);
	strftime(until, 80, "x-amz-object-lock-retain-until-date: %Y-%m-%dT%H:%M:%SZ", &tm);
	EVP_Digest(data, len, md, &mdlen, EVP_md5(), NULL);
	EVP_EncodeBlock((unsigned char *)b64, md, 16);
	snprintf(md5, 64, "Content-MD5: %s", b64);
}

static int put_now(void *b, const char *name, const void *data, size_t len)
{
	struct s3 *s = b;
	struct remote_request rq = {
		.method = "PUT", .body = data, .body_len = len, .body_sha256 = hash_in_name(name),
	};
	char sc[128], mode[64], until[80], md5[64];
	const char *extra[5] = {};
	size_t n = 0;
	int r;

	if (s->storage_class && strncmp(name, "data/", 5) == 0) {
		snprintf(sc, sizeof(sc), "x-amz-storage-class: %s", s->storage_class);
		extra[n++] = sc;
	}
	/* locks come and go: they are never locked */
	if (s->lock_days && strncmp(name, "locks/", 6) != 0) {
		lock_headers(s, data, len, mode, until, md5);
		extra[n++] = mode;
		extra[n++] = until;
		extra[n++] = md5;
	}
	r = object_do(s, &rq, name, extra);
	remote_request_release(&rq);
	return r;
}

static int extend_now(void *b, const char *name, const void *data, size_t len)
{
	struct s3 *s = b;
	char url[2100], body[256], mode[64], until[80], md5[64], date[40];
	struct remote_request rq = { .method = "PUT" };
	const char *extra[] = { md5, NULL };
	time_t t = time(NULL) + (time_t)s->lock_days * 86400;
	struct tm tm;
	int r = object_url(s, name, url, sizeof(url) - 12);

	(void)data;
	(void)len;
	if (r < 0)
		return r;
	strncat(url, "?retention=", sizeof(url) - strlen(url) - 1);
	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(body, sizeof(body), "<Retention><Mode>%s</Mode><RetainUntilDate>%s"
		 "</RetainUntilDate></Retention>", s->lock_governance ? "GOVERNANCE" : "COMPLIANCE",
		 date);
	lock_headers(s, body, strlen(body), mode, until, md5);
	rq.url = url;
	rq.body = body;
	rq.body_len = strlen(body);
	r = s3_do(s, &rq, name, extra);
	remote_request_release(&rq);
	return r;
}

static int s3_extend(struct backend *b, const char *name)
{
	struct s3 *s = (struct s3 *)b;

	if (!name)
		return s->lock_days ? 1 : 0;
	if (!s->lock_days || strncmp(name, "locks/", 6) == 0)
		return 0;
	return remote_put_async(s->rm, extend_now, s, name, "", 0);
}

static int s3_put(struct backend *b, const char *name, const void *data, size_t len)
{
	struct s3 *s = (struct s3 *)b;
	int r;

	if (strncmp(name, "data/", 5) == 0)
		return remote_put_async(s->rm, put_now, s, name, data, len);
	/* an index or a snapshot names packs that must be there first */
	if (strncmp(name, "locks/", 6) != 0 && (r = remote_flush(s->rm)) < 0)
		return r;
	return put_now(s, name, data, len);
}

struct list_ctx {
	size_t skip; /* length of prefix + dir + '/' */
	int (*fn)(const char *name, uint64_t size, void *userdata);
	void *userdata;
};

static int list_entry(const char *key, uint64_t size, void *userdata)
{
	struct list_ctx *l = userdata;
	const char *name = key + l->skip;

	if (strlen(key) <= l->skip || strchr(name, '/'))
		return 0; /* not directly in the directory */
	return l->fn(name, size, l->userdata);
}

static int list_page(struct s3 *s, bool v1, const char *prefix, const char *from,
		     struct list_ctx *l, struct s3_list_page *page)
{
	struct remote_request rq = { .method = "GET", .max_reply = S3_MAX_PAGE };
	char url[8192], enc_prefix[1024 * 3 + 1], enc_from[S3_KEY_MAX * 3 + 1];
	int r;

	s3_uri_encode(prefix, false, enc_prefix, sizeof(enc_prefix));
	s3_uri_encode(from, false, enc_from, sizeof(enc_from));
	/* parameters in the order SigV4 wants them: sorted by name */
	if (v1)
		snprintf(url, sizeof(url), "%s/?%s%s%smax-keys=%d&prefix=%s", s->base,
			 *from ? "marker=" : "", *from ? enc_from : "", *from ? "&" : "",
			 s->page_keys, enc_prefix);
	else
		snprintf(url, sizeof(url), "%s/?%s%s%slist-type=2&max-keys=%d&prefix=%s", s->base,
			 *from ? "continuation-token=" : "", *from ? enc_from : "",
			 *from ? "&" : "", s->page_keys, enc_prefix);
	rq.url = url;
	if ((r = s3_do(s, &rq, prefix, NULL)) < 0)
		return r;
	r = s3_list_parse((const char *)rq.reply, rq.reply_len, page, list_entry, l);
	remote_request_release(&rq);
	if (r == -BCDR_ERR_PROTOCOL)
		remote_set_error(r, "'%s' sent a listing that is not S3's ListBucketResult: is it "
				 "an S3 endpoint?", s->display);
	return r;
}

static int s3_list(struct backend *b, const char *dir,
		   int (*fn)(const char *name, uint64_t size, void *userdata), void *userdata)
{
	struct s3 *s = (struct s3 *)b;
	struct list_ctx l = { .fn = fn, .userdata = userdata };
	char prefix[1024], from[S3_KEY_MAX + 1] = "";
	struct s3_list_page page;
	int r;

	if (strchr(dir, '/') || strstr(dir, ".."))
		return -EINVAL;
	snprintf(prefix, sizeof(prefix), "%s%s/", s->prefix, dir);
	l.skip = strlen(prefix);
	for (unsigned n = 0; n < S3_MAX_PAGES; n++) {
		bool v1 = s->list_v1;

		r = list_page(s, v1, prefix, from, &l, &page);
		/* a store without a working v2: once, then v1 for good */
		if (!v1 && n == 0 && (r == -EIO || r == -BCDR_ERR_PROTOCOL)) {
			s->list_v1 = true;
			continue;
		}
		if (r < 0)
			return r;
		if (!page.truncated)
			return 0;
		if (!v1 && !page.next_token[0]) {
			/* a truncated v2 page without a token: v1 from the last key */
			s->list_v1 = true;
			v1 = true;
		}
		snprintf(from, sizeof(from), "%s", v1 || s->list_v1 ? page.next_marker
								     : page.next_token);
		if (!from[0] || page.nkeys == 0)
			return 0;
	}
	return -BCDR_ERR_TOO_BIG;
}

static int s3_remove(struct backend *b, const char *name)
{
	struct s3 *s = (struct s3 *)b;
	struct remote_request rq = { .method = "DELETE" };
	int r = object_do(s, &rq, name, NULL);

	remote_request_release(&rq);
	return r;
}

static int s3_stat(struct backend *b, const char *name, uint64_t *ret_size)
{
	struct s3 *s = (struct s3 *)b;
	struct remote_request rq = { .method = "HEAD" };
	int r = object_do(s, &rq, name, NULL);

	if (r < 0)
		return r;
	if (rq.content_length < 0)
		r = -BCDR_ERR_PROTOCOL;
	else
		*ret_size = (uint64_t)rq.content_length;
	remote_request_release(&rq);
	return r;
}

static int s3_flush(struct backend *b)
{
	return remote_flush(((struct s3 *)b)->rm);
}

static void s3_free(struct backend *b)
{
	struct s3 *s = (struct s3 *)b;

	remote_free(s->rm);
	free(s->base);
	free(s->prefix);
	free(s->bucket);
	free(s->display);
	if (s->token)
		explicit_bzero(s->token, strlen(s->token));
	free(s->token);
	free(s->storage_class);
	free(s);
}

static const struct backend_ops s3_ops = {
	.get = s3_get,
	.get_range = s3_get_range,
	.get_upto = s3_get_upto,
	.get_stream = s3_get_stream,
	.put = s3_put,
	.list = s3_list,
	.remove = s3_remove,
	.stat = s3_stat,
	.flush = s3_flush,
	.extend = s3_extend,
	.free = s3_free,
};

static int s3_new(const struct location *loc, const struct backend_options *o, struct s3 **ret)
{
	_cleanup_free_ struct s3 *s = calloc(1, sizeof(*s));
	char key_id[256], secret[256], token[4096], userpwd[520], sigv4[128], base[2048];
	char port[8] = "";
	const char *region = o->region, *why = "";
	struct remote_options ro = {
		.connections = o->connections,
		.ca_file = o->ca_file,
		.display = loc->display,
		.stall_timeout = o->timeout_usec,
		.max_attempts = o->retries < 0 ? 1 : o->retries == 0 ? 0 : (unsigned)o->retries + 1,
		.classify = s3_classify,
	};
	int r, vhost;

	if (!s)
		return -ENOMEM;
	vhost = s3_virtual_host(loc, o->addressing, &why);
	if (vhost < 0) {
		remote_set_error(vhost, "cannot address bucket '%s' of '%s': %s", loc->bucket,
				 loc->display, why);
		return vhost;
	}
	r = s3_credentials(o, loc->display, key_id, sizeof(key_id), secret, sizeof(secret), token,
			   sizeof(token));
	if (r < 0)
		return r;
	if (!region || !*region)
		region = getenv("AWS_REGION");
	if (!region || !*region)
		region = getenv("AWS_DEFAULT_REGION");
	if (!region || !*region)
		region = "us-east-1";
	if (strlen(region) > 64 || strchr(region, ':')) {
		remote_set_error(-EINVAL, "bad S3 region '%.64s'", region);
		return -EINVAL;
	}
	snprintf(sigv4, sizeof(sigv4), "aws:amz:%s:s3", region);
	snprintf(userpwd, sizeof(userpwd), "%s:%s", key_id, secret);
	explicit_bzero(secret, sizeof(secret));
	if (loc->port)
		snprintf(port, sizeof(port), ":%u", loc->port);
	if (vhost)
		snprintf(base, sizeof(base), "%s://%s.%s%s", loc->tls ? "https" : "http",
			 loc->bucket, loc->host, port);
	else
		snprintf(base, sizeof(base), "%s://%s%s%s%s/%s", loc->tls ? "https" : "http",
			 loc->ipv6 ? "[" : "", loc->host, loc->ipv6 ? "]" : "", port, loc->bucket);
	s->b.ops = &s3_ops;
	s->base = strdup(base);
	s->bucket = strdup(loc->bucket);
	s->display = strdup(loc->display);
	if (asprintf(&s->prefix, "%s%s", loc->path, *loc->path ? "/" : "") < 0)
		s->prefix = NULL;
	s->token = token[0] ? strdup(token) : NULL;
	s->storage_class = o->storage_class ? strdup(o->storage_class) : NULL;
	explicit_bzero(token, sizeof(token));
	s->b.location = s->display;
	s->list_v1 = o->list_v1;
	{
		/* for the tests: pages this small cross many continuations */
		const char *keys = getenv("BCDR_S3_PAGE_KEYS");

		s->page_keys = keys && atoi(keys) > 0 && atoi(keys) <= 1000 ? atoi(keys) : 1000;
	}
	ro.aws_sigv4 = sigv4;
	ro.aws_userpwd = userpwd;
	r = s->base && s->bucket && s->display && s->prefix ? remote_new(&ro, &s->rm) : -ENOMEM;
	explicit_bzero(userpwd, sizeof(userpwd));
	if (r < 0) {
		s3_free(&TAKE_PTR(s)->b);
		return r;
	}
	*ret = TAKE_PTR(s);
	return 0;
}

/* "object-lock": {"days": N, "mode": "COMPLIANCE"|"GOVERNANCE"}, written
 * by init --object-lock, so every later writer locks what it stores. */
static int read_lock_marker(struct s3 *s)
{
	uint8_t *data = NULL;
	size_t len;
	json_t *j, *days, *mode;
	int r = s3_get(&s->b, "object-lock", 4096, &data, &len);

	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	j = json_loadb((const char *)data, len, 0, NULL);
	free(data);
	days = json_object_get(j, "days");
	mode = json_object_get(j, "mode");
	r = 0;
	if (!json_is_integer(days) || json_integer_value(days) < 1 ||
	    json_integer_value(days) > 36500 || !json_is_string(mode)) {
		remote_set_error(-BCDR_ERR_CORRUPT, "the object-lock marker of '%s' is damaged",
				 s->display);
		r = -BCDR_ERR_CORRUPT;
	} else {
		s->lock_days = (unsigned)json_integer_value(days);
		s->lock_governance = strcmp(json_string_value(mode), "GOVERNANCE") == 0;
	}
	json_decref(j);
	return r;
}

int backend_s3_open(const struct location *loc, const struct backend_options *o,
		    struct backend **ret)
{
	struct s3 *s;
	int r = s3_new(loc, o, &s);

	if (r >= 0 && (r = read_lock_marker(s)) < 0)
		s3_free(&s->b);
	if (r < 0)
		return r;
	*ret = &s->b;
	return 0;
}

/* The bucket, made when missing (in the region, outside us-east-1). */
static int ensure_bucket(struct s3 *s, const struct backend_options *o)
{
	struct remote_request rq = { .method = "HEAD" };
	char url[2100], body[256];
	const char *region = o->region ? o->region : getenv("AWS_REGION");
	int r;

	snprintf(url, sizeof(url), "%s/", s->base);
	rq.url = url;
	r = s3_do(s, &rq, s->bucket, NULL);
	remote_request_release(&rq);
	if (r != -ENOENT && r != -ENXIO)
		return r;
	memset(&rq, 0, sizeof(rq));
	rq.method = "PUT";
	rq.url = url;
	if (region && *region && strcmp(region, "us-east-1") != 0) {
		snprintf(body, sizeof(body),
			 "<CreateBucketConfiguration><LocationConstraint>%s</LocationConstraint>"
			 "</CreateBucketConfiguration>", region);
		rq.body = body;
		rq.body_len = strlen(body);
	} else {
		rq.body = "";
		rq.body_len = 0;
	}
	{
		const char *lock[] = { "x-amz-bucket-object-lock-enabled: true", NULL };

		r = s3_do(s, &rq, s->bucket, o->object_lock_days ? lock : NULL);
	}
	remote_request_release(&rq);
	return r;
}

int backend_s3_create(const struct location *loc, const struct backend_options *o,
		      struct backend **ret)
{
	struct s3 *s;
	uint64_t size;
	int r = s3_new(loc, o, &s);

	if (r < 0)
		return r;
	r = ensure_bucket(s, o);
	if (r >= 0) {
		r = s3_stat(&s->b, "config", &size);
		r = r >= 0 ? -EEXIST : r == -ENOENT ? 0 : r;
	}
	if (r >= 0 && o->object_lock_days) {
		char marker[96];

		s->lock_days = (unsigned)o->object_lock_days;
		s->lock_governance = o->object_lock_governance;
		snprintf(marker, sizeof(marker), "{\"days\":%u,\"mode\":\"%s\"}", s->lock_days,
			 s->lock_governance ? "GOVERNANCE" : "COMPLIANCE");
		r = put_now(s, "object-lock", marker, strlen(marker));
	}
	if (r < 0) {
		s3_free(&s->b);
		return r;
	}
	*ret = &s->b;
	return 0;
}

#include "cluster/etcd-proto.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/json.h"

void etcd_kv_release(struct etcd_kv *kv)
{
	if (!kv)
		return;
	free(kv->key);
	free(kv->value);
	memset(kv, 0, sizeof(*kv));
}

void etcd_kvs_free(struct etcd_kv *kvs, size_t n)
{
	for (size_t i = 0; kvs && i < n; i++)
		etcd_kv_release(&kvs[i]);
	free(kvs);
}

/* ---- base64 ---- */

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int etcd_b64_encode(const void *data, size_t len, char **ret)
{
	const uint8_t *p = data;
	char *out, *o;

	if (len > (SIZE_MAX / 4) * 3 - 3)
		return -BCDR_ERR_TOO_BIG;
	out = malloc((len + 2) / 3 * 4 + 1);
	if (!out)
		return -ENOMEM;
	o = out;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		size_t left = len - i;

		if (left > 1)
			v |= (uint32_t)p[i + 1] << 8;
		if (left > 2)
			v |= p[i + 2];
		*o++ = b64_alphabet[(v >> 18) & 63];
		*o++ = b64_alphabet[(v >> 12) & 63];
		*o++ = left > 1 ? b64_alphabet[(v >> 6) & 63] : '=';
		*o++ = left > 2 ? b64_alphabet[v & 63] : '=';
	}
	*o = '\0';
	*ret = out;
	return 0;
}

static int b64_value(char c)
{
	const char *p = c ? strchr(b64_alphabet, c) : NULL;

	return p ? (int)(p - b64_alphabet) : -1;
}

int etcd_b64_decode(const char *s, size_t len, char **ret, size_t *ret_len)
{
	_cleanup_free_ char *out = NULL;
	size_t n = 0;

	if (len % 4)
		return -EINVAL;
	out = malloc(len / 4 * 3 + 1);
	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < len; i += 4) {
		int v[4];
		bool last = i + 4 == len;

		for (int k = 0; k < 4; k++) {
			v[k] = b64_value(s[i + k]);
			if (v[k] < 0 && !(last && k >= 2 && s[i + k] == '='))
				return -EINVAL;
		}
		if (v[2] < 0 && v[3] >= 0) /* "x=y": padding in the middle */
			return -EINVAL;
		/* bits past the last byte must be zero: one text per byte string */
		if ((v[2] < 0 && (v[1] & 15)) || (v[2] >= 0 && v[3] < 0 && (v[2] & 3)))
			return -EINVAL;
		out[n++] = (char)(v[0] << 2 | v[1] >> 4);
		if (v[2] >= 0)
			out[n++] = (char)((v[1] & 15) << 4 | v[2] >> 2);
		if (v[3] >= 0)
			out[n++] = (char)((v[2] & 3) << 6 | v[3]);
	}
	out[n] = '\0';
	*ret = TAKE_PTR(out);
	*ret_len = n;
	return 0;
}

int etcd_prefix_end(const char *prefix, char **ret)
{
	size_t len = strlen(prefix);
	char *end = strdup(prefix);

	if (!end)
		return -ENOMEM;
	while (len > 0 && (uint8_t)end[len - 1] == 0xff)
		len--;
	if (len == 0) {
		/* every byte 0xff: the range runs to the end of the key space,
		 * which etcd spells as a range end of one NUL byte */
		end[0] = '\0';
	} else {
		end[len - 1] = (char)((uint8_t)end[len - 1] + 1);
		end[len] = '\0';
	}
	*ret = end;
	return 0;
}

/* ---- requests ---- */

static json_t *b64_string(const char *s, size_t len)
{
	_cleanup_free_ char *e = NULL;

	if (etcd_b64_encode(s, len, &e) < 0)
		return NULL;
	return json_string(e);
}

static json_t *int64_string(int64_t v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%" PRId64, v);
	return json_string(buf);
}

/* The range end as etcd wants it: NULL none, "" (a NUL byte) to the end. */
static json_t *range_end_string(const char *range_end)
{
	return b64_string(range_end, range_end[0] ? strlen(range_end) : 1);
}

static char *dump(json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	return s;
}

static json_t *kv_put(const char *key, const char *value, int64_t lease)
{
	json_t *put = json_pack("{s:o*,s:o*}", "key", b64_string(key, strlen(key)), "value",
				b64_string(value, strlen(value)));

	if (put && lease)
		json_object_set_new(put, "lease", int64_string(lease));
	return put;
}

char *etcd_req_range(const char *key, const char *range_end)
{
	json_t *j = json_pack("{s:o*}", "key", b64_string(key, strlen(key)));

	if (j && range_end)
		json_object_set_new(j, "range_end", range_end_string(range_end));
	return dump(j);
}

char *etcd_req_range_at(const char *key, int64_t revision)
{
	return dump(json_pack("{s:o*,s:o*}", "key", b64_string(key, strlen(key)), "revision",
			      int64_string(revision)));
}

char *etcd_req_put(const char *key, const char *value, int64_t lease)
{
	return dump(kv_put(key, value, lease));
}

char *etcd_req_create(const char *key, const char *value, int64_t lease)
{
	return dump(json_pack("{s:[{s:o*,s:s,s:s,s:s}],s:[{s:o*}],s:[{s:{s:o*}}]}", "compare",
			      "key", b64_string(key, strlen(key)), "target", "CREATE", "result",
			      "EQUAL", "create_revision", "0", "success", "request_put",
			      kv_put(key, value, lease), "failure", "request_range", "key",
			      b64_string(key, strlen(key))));
}

char *etcd_req_delete_if(const char *key, int64_t create_revision)
{
	return dump(json_pack("{s:[{s:o*,s:s,s:s,s:o*}],s:[{s:{s:o*}}]}", "compare", "key",
			      b64_string(key, strlen(key)), "target", "CREATE", "result", "EQUAL",
			      "create_revision", int64_string(create_revision), "success",
			      "request_delete_range", "key", b64_string(key, strlen(key))));
}

char *etcd_req_delete(const char *key, const char *range_end)
{
	return etcd_req_range(key, range_end); /* the same two fields */
}

char *etcd_req_grant(int64_t ttl_s)
{
	return dump(json_pack("{s:o*}", "TTL", int64_string(ttl_s)));
}

char *etcd_req_lease(int64_t id)
{
	return dump(json_pack("{s:o*}", "ID", int64_string(id)));
}

char *etcd_req_auth(const char *user, const char *password)
{
	return dump(json_pack("{s:s,s:s}", "name", user, "password", password));
}

/* ---- responses ---- */

/* An int64 as the gateway writes it (a string of digits), or a JSON
 * integer; absent is 0 (proto3 omits zeros). */
static int get_int64(const json_t *obj, const char *key, int64_t *ret)
{
	const json_t *v = json_object_get(obj, key);
	const char *s;
	char *end;
	long long n;

	if (!v) {
		*ret = 0;
		return 0;
	}
	if (json_is_integer(v)) {
		*ret = json_integer_value(v);
		return 0;
	}
	if (!json_is_string(v))
		return -BCDR_ERR_PROTOCOL;
	s = json_string_value(v);
	if (!*s || json_string_length(v) > 20 || (*s != '-' && (*s < '0' || *s > '9')))
		return -BCDR_ERR_PROTOCOL;
	errno = 0;
	n = strtoll(s, &end, 10);
	if (errno || *end || end == s || (*s == '-' && end == s + 1))
		return -BCDR_ERR_PROTOCOL;
	*ret = n;
	return 0;
}

static int error_of(const json_t *root, char *message, size_t message_size)
{
	const json_t *e = json_object_get(root, "error");
	const char *text = NULL;
	int64_t code = -1;

	if (!e)
		return 0;
	if (json_is_string(e)) {
		text = json_string_value(e);
		if (get_int64(root, "code", &code) < 0)
			code = -1;
	} else if (json_is_object(e)) {
		text = json_string_value(json_object_get(e, "message"));
		if (get_int64(e, "grpc_code", &code) < 0)
			code = -1;
	} else {
		return -BCDR_ERR_PROTOCOL;
	}
	if (message && message_size)
		snprintf(message, message_size, "%s", text ? text : "unknown error");
	switch (code) {
	case 5:
		return -ENOENT;
	case 16:
		return -EKEYREJECTED;
	case 7:
		return -EACCES;
	case 4:
	case 14:
		return -EAGAIN;
	case 8:
		return -ENOSPC;
	case 3:
		return -EINVAL;
	default:
		return -BCDR_ERR_PROTOCOL;
	}
}

/* Loads a response body that must be a JSON object and not an error. */
static int load(const char *body, size_t len, json_t **ret)
{
	json_t *root;
	int r;

	if (len > ETCD_RESPONSE_MAX)
		return -BCDR_ERR_TOO_BIG;
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
	if (!root)
		return -BCDR_ERR_PROTOCOL;
	if (!json_is_object(root)) {
		json_decref(root);
		return -BCDR_ERR_PROTOCOL;
	}
	r = error_of(root, NULL, 0);
	if (r < 0) {
		json_decref(root);
		return r;
	}
	*ret = root;
	return 0;
}

int etcd_parse_error(const char *body, size_t len, char *message, size_t message_size)
{
	_cleanup_json_ json_t *root = NULL;

	if (message && message_size)
		message[0] = '\0';
	if (len > ETCD_RESPONSE_MAX)
		return -BCDR_ERR_TOO_BIG;
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
	if (!root || !json_is_object(root))
		return 0;
	return error_of(root, message, message_size);
}

int etcd_parse_version(const char *body, size_t len, const char **ret_prefix)
{
	_cleanup_json_ json_t *root = NULL;
	const char *v;
	unsigned major, minor;
	int r = load(body, len, &root);

	if (r < 0)
		return r;
	/* etcdcluster is what the whole cluster speaks; etcdserver this member */
	v = json_string_value(json_object_get(root, "etcdcluster"));
	if (!v || sscanf(v, "%u.%u", &major, &minor) != 2)
		v = json_string_value(json_object_get(root, "etcdserver"));
	if (!v || sscanf(v, "%u.%u", &major, &minor) != 2)
		return -BCDR_ERR_PROTOCOL;
	if (major < 3 || (major == 3 && minor < 2))
		return -BCDR_ERR_UNSUPPORTED;
	*ret_prefix = major > 3 || minor >= 4 ? "/v3" : minor == 3 ? "/v3beta" : "/v3alpha";
	return 0;
}

int etcd_parse_auth(const char *body, size_t len, char **ret_token)
{
	_cleanup_json_ json_t *root = NULL;
	const char *t;
	int r = load(body, len, &root);

	if (r < 0)
		return r;
	t = json_string_value(json_object_get(root, "token"));
	/* it goes into a header: no control bytes */
	if (!t || !*t || strcspn(t, "\r\n") != strlen(t))
		return -BCDR_ERR_PROTOCOL;
	*ret_token = strdup(t);
	return *ret_token ? 0 : -ENOMEM;
}

int etcd_parse_grant(const char *body, size_t len, int64_t *ret_id, int64_t *ret_ttl)
{
	_cleanup_json_ json_t *root = NULL;
	int64_t id, ttl;
	int r = load(body, len, &root);

	if (r < 0)
		return r;
	if (get_int64(root, "ID", &id) < 0 || get_int64(root, "TTL", &ttl) < 0 || id == 0 ||
	    ttl <= 0)
		return -BCDR_ERR_PROTOCOL;
	*ret_id = id;
	*ret_ttl = ttl;
	return 0;
}

static int header_revision(const json_t *root, int64_t *ret);

int etcd_parse_keepalive(const char *body, size_t len, int64_t *ret_ttl, int64_t *ret_revision)
{
	_cleanup_json_ json_t *root = NULL;
	const json_t *res;
	int64_t ttl, rev;
	int r = load(body, len, &root);

	if (r < 0)
		return r;
	/* a stream of one message: {"result": {...}} */
	res = json_object_get(root, "result");
	if (!json_is_object(res) || get_int64(res, "TTL", &ttl) < 0 ||
	    header_revision(res, &rev) < 0)
		return -BCDR_ERR_PROTOCOL;
	if (ttl <= 0)
		return -ENOENT;
	*ret_ttl = ttl;
	*ret_revision = rev;
	return 0;
}

static int header_revision(const json_t *root, int64_t *ret)
{
	const json_t *h = json_object_get(root, "header");

	if (!json_is_object(h))
		return -BCDR_ERR_PROTOCOL;
	return get_int64(h, "revision", ret);
}

static int b64_field(const json_t *obj, const char *key, char **ret, size_t *ret_len)
{
	const json_t *v = json_object_get(obj, key);
	int r;

	if (!v)
		return etcd_b64_decode("", 0, ret, ret_len);
	if (!json_is_string(v))
		return -BCDR_ERR_PROTOCOL;
	r = etcd_b64_decode(json_string_value(v), json_string_length(v), ret, ret_len);
	return r == -EINVAL ? -BCDR_ERR_PROTOCOL : r;
}

static int parse_kv(const json_t *j, struct etcd_kv *kv)
{
	int r;

	memset(kv, 0, sizeof(*kv));
	if (!json_is_object(j))
		return -BCDR_ERR_PROTOCOL;
	r = b64_field(j, "key", &kv->key, &kv->key_len);
	if (r >= 0)
		r = b64_field(j, "value", &kv->value, &kv->value_len);
	if (r >= 0 &&
	    (get_int64(j, "create_revision", &kv->create_revision) < 0 ||
	     get_int64(j, "mod_revision", &kv->mod_revision) < 0 ||
	     get_int64(j, "version", &kv->version) < 0 || get_int64(j, "lease", &kv->lease) < 0))
		r = -BCDR_ERR_PROTOCOL;
	if (r >= 0 && kv->key_len == 0)
		r = -BCDR_ERR_PROTOCOL; /* etcd has no empty key */
	if (r < 0)
		etcd_kv_release(kv);
	return r;
}

static int parse_kvs(const json_t *range, struct etcd_kv **ret_kvs, size_t *ret_n)
{
	const json_t *kvs = json_object_get(range, "kvs");
	struct etcd_kv *out;
	size_t n;
	int r;

	if (!kvs) {
		*ret_kvs = NULL;
		*ret_n = 0;
		return 0;
	}
	if (!json_is_array(kvs) || json_array_size(kvs) > ETCD_RANGE_MAX)
		return -BCDR_ERR_PROTOCOL;
	n = json_array_size(kvs);
	out = calloc(n ? n : 1, sizeof(*out));
	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		r = parse_kv(json_array_get(kvs, i), &out[i]);
		if (r < 0) {
			etcd_kvs_free(out, i);
			return r;
		}
	}
	*ret_kvs = out;
	*ret_n = n;
	return 0;
}

int etcd_parse_range(const char *body, size_t len, struct etcd_kv **ret_kvs, size_t *ret_n,
		     int64_t *ret_revision)
{
	_cleanup_json_ json_t *root = NULL;
	int64_t rev;
	int r = load(body, len, &root);

	if (r < 0)
		return r;
	r = header_revision(root, &rev);
	if (r < 0)
		return r;
	r = parse_kvs(root, ret_kvs, ret_n);
	if (r < 0)
		return r;
	if (ret_revision)
		*ret_revision = rev;
	return 0;
}

int etcd_parse_txn(const char *body, size_t len, bool *ret_succeeded, int64_t *ret_revision,
		   struct etcd_kv *ret_holder)
{
	_cleanup_json_ json_t *root = NULL;
	const json_t *ok, *resp, *range;
	struct etcd_kv *kvs = NULL;
	size_t n = 0;
	int64_t rev;
	int r = load(body, len, &root);

	if (r < 0)
		return r;
	r = header_revision(root, &rev);
	if (r < 0)
		return r;
	ok = json_object_get(root, "succeeded");
	if (ok && !json_is_boolean(ok))
		return -BCDR_ERR_PROTOCOL;
	if (ret_holder)
		memset(ret_holder, 0, sizeof(*ret_holder));
	if (!json_is_true(ok) && ret_holder) {
		/* the failure branch's range: responses[0].response_range */
		resp = json_object_get(root, "responses");
		if (resp && (!json_is_array(resp) || json_array_size(resp) > 1))
			return -BCDR_ERR_PROTOCOL;
		range = json_object_get(json_array_get(resp, 0), "response_range");
		if (range) {
			if (!json_is_object(range))
				return -BCDR_ERR_PROTOCOL;
			r = parse_kvs(range, &kvs, &n);
			if (r < 0)
				return r;
			if (n > 1) {
				etcd_kvs_free(kvs, n);
				return -BCDR_ERR_PROTOCOL;
			}
			if (n == 1)
				*ret_holder = kvs[0];
			free(kvs);
		}
	}
	*ret_succeeded = json_is_true(ok);
	*ret_revision = rev;
	return 0;
}

int etcd_parse_header(const char *body, size_t len, int64_t *ret_revision)
{
	_cleanup_json_ json_t *root = NULL;
	int r = load(body, len, &root);

	if (r < 0)
		return r;
	return header_revision(root, ret_revision);
}

/* The etcd v3 JSON gateway's wire format, with no I/O: request bodies built
 * and response bodies parsed as pure functions, so the parsers of what
 * comes from the network are unit-tested against garbage and fuzzed
 * (tests/fuzz/fuzz-etcd.c) apart from the client (etcd.c).
 *
 * The gateway's conventions (etcd 3.4, the same in 3.3's /v3beta): keys and
 * values are base64, int64s are JSON strings (numbers are accepted too),
 * zero-valued fields are omitted (a failed txn has no `succeeded`, an
 * expired lease's keepalive no `TTL`), and errors are
 * {"error": "...", "code": N} or, on the streaming keepalive,
 * {"error": {"grpc_code": N, "message": "..."}}. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A response body larger than this is refused (-BCDR_ERR_TOO_BIG): the
 * members of a cluster and its leader keys are small. */
#define ETCD_RESPONSE_MAX (4u << 20)
/* Key-values in one range response, at most. */
#define ETCD_RANGE_MAX 100000u

struct etcd_kv {
	char *key; /* decoded, NUL-terminated (keys may hold NULs: key_len) */
	size_t key_len;
	char *value; /* decoded, NUL-terminated */
	size_t value_len;
	int64_t create_revision, mod_revision, version, lease;
};
void etcd_kv_release(struct etcd_kv *kv);
void etcd_kvs_free(struct etcd_kv *kvs, size_t n);

/* Standard base64 with padding; *ret is NUL-terminated (free() it). A
 * decode refuses anything but the alphabet, '=' padding at the end, and a
 * length that is not a multiple of 4 (-EINVAL). */
int etcd_b64_encode(const void *data, size_t len, char **ret);
int etcd_b64_decode(const char *s, size_t len, char **ret, size_t *ret_len);

/* The range end that makes a range of every key starting with prefix
 * (the prefix with its last byte below 0xff incremented); "\0" when every
 * byte is 0xff (all keys from there). free() it. */
int etcd_prefix_end(const char *prefix, char **ret);

/* Request bodies: new JSON text (free() it), NULL when out of memory.
 * Strings are keys and values as given (encoded here). */
char *etcd_req_range(const char *key, const char *range_end);
/* One key as it was at store revision (> 0). */
char *etcd_req_range_at(const char *key, int64_t revision);
char *etcd_req_put(const char *key, const char *value, int64_t lease);
/* A txn: if key does not exist (create_revision == 0) put value on lease;
 * otherwise read the key, so the caller learns who holds it. */
char *etcd_req_create(const char *key, const char *value, int64_t lease);
/* A txn: delete key only while its create_revision is still revision (ours). */
char *etcd_req_delete_if(const char *key, int64_t create_revision);
char *etcd_req_delete(const char *key, const char *range_end);
char *etcd_req_grant(int64_t ttl_s);
/* {"ID": id}: keepalive and revoke. */
char *etcd_req_lease(int64_t id);
char *etcd_req_auth(const char *user, const char *password);

/* An error body, as a negative errno: -ENOENT (gRPC NOT_FOUND: no such
 * lease), -EKEYREJECTED (UNAUTHENTICATED: the token expired, authenticate
 * again), -EACCES (PERMISSION_DENIED), -EAGAIN (UNAVAILABLE,
 * DEADLINE_EXCEEDED: no leader, leader changed: another member may
 * answer), -ENOSPC (RESOURCE_EXHAUSTED), -EINVAL, else -BCDR_ERR_PROTOCOL;
 * message (may be NULL) gets the server's text. 0 when body is not an
 * error body. */
int etcd_parse_error(const char *body, size_t len, char *message, size_t message_size);

/* GET /version: the API prefix that server speaks ("/v3" from 3.4,
 * "/v3beta" in 3.3, "/v3alpha" in 3.2; a static string). */
int etcd_parse_version(const char *body, size_t len, const char **ret_prefix);
/* /v3/auth/authenticate: *ret_token (free() it). */
int etcd_parse_auth(const char *body, size_t len, char **ret_token);
/* /v3/lease/grant */
int etcd_parse_grant(const char *body, size_t len, int64_t *ret_id, int64_t *ret_ttl);
/* /v3/lease/keepalive: the remaining TTL and the store revision the member
 * answered at; -ENOENT when the lease is gone (no TTL, or TTL 0). */
int etcd_parse_keepalive(const char *body, size_t len, int64_t *ret_ttl, int64_t *ret_revision);
/* /v3/kv/range: a new array of key-values (etcd_kvs_free() it) and the
 * store's revision. */
int etcd_parse_range(const char *body, size_t len, struct etcd_kv **ret_kvs, size_t *ret_n,
		     int64_t *ret_revision);
/* /v3/kv/txn of etcd_req_create(): whether it succeeded, the revision it
 * ran at (the key's create revision when it succeeded) and, when it did
 * not, the current holder's key-value in *ret_holder (zeroed when the key
 * vanished meanwhile; etcd_kv_release() it). ret_holder may be NULL. */
int etcd_parse_txn(const char *body, size_t len, bool *ret_succeeded, int64_t *ret_revision,
		   struct etcd_kv *ret_holder);
/* Any other response (put, deleterange, revoke): its header's revision. */
int etcd_parse_header(const char *body, size_t len, int64_t *ret_revision);

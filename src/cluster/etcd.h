/* A blocking etcd v3 client over its JSON gateway, for a thread of its own
 * (the cluster engine's, `bcdr cluster status`). Every call ends by its
 * deadline (monotonic); a call tries the endpoints in turn, starting with
 * the one that answered last, and moves on when one cannot be reached,
 * does not answer within its share of the time left, or says it has no
 * leader. The API prefix (/v3, /v3beta, /v3alpha) is asked once (GET
 * /version); with a username, the client authenticates and sends the
 * token, again when the server says it expired.
 *
 * http:// goes through bcdr's own HTTP client (no libcurl in the agent for
 * a plain-http etcd), https:// through libcurl with ca_file, cert_file and
 * key_file. Responses are bounded (ETCD_RESPONSE_MAX) and parsed by
 * etcd-proto.c. Credentials are never written into errors. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/etcd-proto.h"
#include "lib/cleanup.h"
#include "lib/timeutil.h"

#define ETCD_ENDPOINTS_MAX 16

struct etcd_options {
	char *const *endpoints; /* NULL-terminated client URLs, 1..ETCD_ENDPOINTS_MAX */
	const char *ca_file;    /* https: the CA bundle (NULL: the system's) */
	const char *cert_file;  /* https: client certificate and key, or NULL */
	const char *key_file;
	const char *username;      /* etcd authentication, or NULL */
	const char *password_file; /* its password, first line */
	const bool *cancel;        /* NULL, or ends a call (-ECANCELED) when true */
};

struct etcd;

/* Copies what it needs from o (reads the password file now). */
int etcd_new(const struct etcd_options *o, struct etcd **ret);
void etcd_free(struct etcd *e);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct etcd *, etcd_free)

/* The last failure, for people: "http://127.0.0.1:2379: cannot connect
 * ...; http://...: etcdserver: no leader". Valid until the next call. */
const char *etcd_last_error(const struct etcd *e);
/* The endpoint that answered the last call. */
const char *etcd_endpoint(const struct etcd *e);

/* A lease of ttl_s seconds. */
int etcd_lease_grant(struct etcd *e, int64_t ttl_s, usec_t deadline, int64_t *ret_id);
/* Renews it: its TTL as granted; -ENOENT when it is gone (expired). An
 * answer at a store revision below min_revision comes from a member that
 * lags (frozen, cut off) and may renew in its own memory a lease the real
 * leader lets expire: it does not count, the next member is asked. */
int etcd_lease_keepalive(struct etcd *e, int64_t id, int64_t min_revision, usec_t deadline,
			 int64_t *ret_ttl, int64_t *ret_revision);
int etcd_lease_revoke(struct etcd *e, int64_t id, usec_t deadline);

int etcd_put(struct etcd *e, const char *key, const char *value, int64_t lease, usec_t deadline);
/* Creates key on lease if it does not exist (a txn on create_revision ==
 * 0). *ret_created says if it did, and then *ret_revision is the key's
 * create revision; otherwise *ret_holder is who holds it (etcd_kv_release()
 * it; zeroed when the key vanished between compare and read). */
int etcd_create(struct etcd *e, const char *key, const char *value, int64_t lease, usec_t deadline,
		bool *ret_created, int64_t *ret_revision, struct etcd_kv *ret_holder);
/* Deletes key if its create revision is still create_revision. */
int etcd_delete_if(struct etcd *e, const char *key, int64_t create_revision, usec_t deadline,
		   bool *ret_deleted);
/* Whether key existed at store revision (etcd keeps the history until it
 * is compacted: a compacted or future revision is an error). */
int etcd_exists_at(struct etcd *e, const char *key, int64_t revision, usec_t deadline,
		   bool *ret_exists);
/* Every key under prefix, in key order (etcd_kvs_free() them). */
int etcd_range_prefix(struct etcd *e, const char *prefix, usec_t deadline, struct etcd_kv **ret_kvs,
		      size_t *ret_n, int64_t *ret_revision);

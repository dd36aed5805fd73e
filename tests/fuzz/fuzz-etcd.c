/* The etcd gateway's answers (bytes from the network) against every parser
 * of src/cluster/etcd-proto.c: an error or a result, never a crash, a leak
 * or an out-of-bounds read; what parses is self-consistent. A range is
 * also read as the cluster's operations read it (src/cluster/ops.c): the
 * values are other members' JSON, and garbage must give a decision. */
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/etcd-proto.h"
#include "cluster/ops.h"

/* Every member's switchover role for every service, and the status. */
static void ops(const struct etcd_kv *kvs, size_t n, int64_t rev)
{
	static const char *const names[] = { "a", "b", "c", "db", "web" };
	struct cluster_service svcs[] = { { .name = (char *)"db" }, { .name = (char *)"web" } };
	struct cluster_plan p = { .has_cluster = true, .name = (char *)"shop", .services = svcs,
				  .n_services = 2 };
	json_t *st;

	for (size_t s = 0; s < 2; s++)
		for (size_t m = 0; m < sizeof(names) / sizeof(names[0]); m++)
			for (int leading = 0; leading < 2; leading++) {
				char target[CLUSTER_NAME_MAX + 1] = "";
				enum cluster_switchover_role r = cluster_switchover_role(
					kvs, n, "shop", svcs[s].name, names[m], leading, target);

				/* a decision names a usable target, one fit to take over */
				if (r != CLUSTER_SWITCHOVER_NONE && !cluster_name_valid(target))
					abort();
				if (r == CLUSTER_SWITCHOVER_HAND_OVER &&
				    !cluster_kvs_member_fit(kvs, n, "shop", target, svcs[s].name))
					abort();
			}
	st = cluster_status_build(&p, kvs, n, "http://e", rev);
	if (!st || json_array_size(json_object_get(st, "services")) != 2)
		abort();
	json_decref(st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body = (const char *)data;
	struct etcd_kv *kvs, holder;
	size_t n;
	bool ok;
	int64_t rev, id, ttl;
	const char *prefix;
	char *token, msg[128], *dec;

	if (etcd_parse_range(body, size, &kvs, &n, &rev) == 0) {
		for (size_t i = 0; i < n; i++)
			if (!kvs[i].key || !kvs[i].value || kvs[i].key_len == 0 ||
			    kvs[i].key[kvs[i].key_len] || kvs[i].value[kvs[i].value_len])
				abort();
		ops(kvs, n, rev);
		etcd_kvs_free(kvs, n);
	}
	if (etcd_parse_txn(body, size, &ok, &rev, &holder) == 0)
		etcd_kv_release(&holder);
	if (etcd_parse_grant(body, size, &id, &ttl) == 0 && (id == 0 || ttl <= 0))
		abort();
	if (etcd_parse_keepalive(body, size, &ttl, &rev) == 0 && ttl <= 0)
		abort();
	if (etcd_parse_auth(body, size, &token) == 0) {
		if (strpbrk(token, "\r\n"))
			abort();
		free(token);
	}
	(void)etcd_parse_version(body, size, &prefix);
	(void)etcd_parse_header(body, size, &rev);
	(void)etcd_parse_error(body, size, msg, sizeof(msg));
	if (etcd_b64_decode(body, size, &dec, &n) == 0) {
		char *enc;

		/* what decodes encodes back to the same text */
		if (etcd_b64_encode(dec, n, &enc) == 0) {
			if (strlen(enc) != size || memcmp(enc, body, size))
				abort();
			free(enc);
		}
		free(dec);
	}
	return 0;
}

#include "cluster/ops.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/cluster.h"
#include "cluster/etcd.h"
#include "lib/buf.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/json.h"

/* How often a switchover looks whether the target leads yet. */
#define SWITCHOVER_LOOK (50 * USEC_PER_MSEC)
/* Each etcd call of a command, at most. */
#define CALL_TIMEOUT (5 * USEC_PER_SEC)

char *cluster_paused_key(const char *cluster)
{
	char *s;

	return asprintf(&s, "/%s/paused", cluster) < 0 ? NULL : s;
}

char *cluster_switchover_key(const char *cluster, const char *service)
{
	char *s;

	return asprintf(&s, "/%s/services/%s/switchover", cluster, service) < 0 ? NULL : s;
}

const struct etcd_kv *cluster_kvs_find(const struct etcd_kv *kvs, size_t n, const char *key)
{
	for (size_t i = 0; key && i < n; i++)
		if (strcmp(kvs[i].key, key) == 0)
			return &kvs[i];
	return NULL;
}

/* A key's value as a JSON object (an empty one for garbage). */
static json_t *value_json(const struct etcd_kv *kv)
{
	json_t *j = json_loadb(kv->value, kv->value_len, 0, NULL);

	if (!json_is_object(j)) {
		json_decref(j);
		j = json_object();
	}
	return j;
}

static bool copy_name(const json_t *j, const char *field, char *out)
{
	const char *s = json_string_value(json_object_get(j, field));

	if (!s || !cluster_name_valid(s))
		return false;
	snprintf(out, CLUSTER_NAME_MAX + 1, "%s", s);
	return true;
}

int cluster_switchover_parse(const struct etcd_kv *kv, struct cluster_switchover *ret)
{
	_cleanup_json_ json_t *j = value_json(kv);
	struct cluster_switchover so;

	if (!j || !copy_name(j, "from", so.from) || !copy_name(j, "to", so.to))
		return -EINVAL;
	*ret = so;
	return 0;
}

/* The member key's value of member (a new reference), or NULL when it has none. */
static json_t *member_json(const struct etcd_kv *kvs, size_t n, const char *cluster,
			   const char *member)
{
	_cleanup_free_ char *key = cluster_member_key(cluster, member);
	const struct etcd_kv *kv = cluster_kvs_find(kvs, n, key);

	return kv ? value_json(kv) : NULL;
}

static bool member_value_fit(const json_t *m, const char *service)
{
	return json_is_true(json_object_get(json_object_get(m, "fit"), service));
}

bool cluster_kvs_member_fit(const struct etcd_kv *kvs, size_t n, const char *cluster,
			    const char *member, const char *service)
{
	_cleanup_json_ json_t *m = member_json(kvs, n, cluster, member);

	return m && member_value_fit(m, service);
}

enum cluster_switchover_role cluster_switchover_role(const struct etcd_kv *kvs, size_t n,
						     const char *cluster, const char *service,
						     const char *member, bool leading,
						     char *ret_target)
{
	_cleanup_free_ char *key = cluster_switchover_key(cluster, service);
	const struct etcd_kv *kv = cluster_kvs_find(kvs, n, key);
	struct cluster_switchover so;

	if (!kv || cluster_switchover_parse(kv, &so) < 0)
		return CLUSTER_SWITCHOVER_NONE;
	if (ret_target)
		snprintf(ret_target, CLUSTER_NAME_MAX + 1, "%s", so.to);
	if (leading)
		/* a request made while another led is stale for us; and we hand
		 * over only to a member that can take it now */
		return strcmp(so.from, member) == 0 && strcmp(so.to, member) != 0 &&
				       cluster_kvs_member_fit(kvs, n, cluster, so.to, service)
			       ? CLUSTER_SWITCHOVER_HAND_OVER
			       : CLUSTER_SWITCHOVER_NONE;
	return strcmp(so.to, member) == 0 ? CLUSTER_SWITCHOVER_TAKE : CLUSTER_SWITCHOVER_HOLD;
}

/* ---- status ---- */

int cluster_kvs_leader_address(const struct etcd_kv *kvs, size_t n, const char *cluster,
			       const char *service, const char *self, bool self_leads,
			       const char *self_address, char *addr, size_t addr_size, char *why,
			       size_t why_size)
{
	_cleanup_free_ char *key = cluster_leader_key(cluster, service), *mkey = NULL;
	_cleanup_json_ json_t *lv = NULL, *mv = NULL;
	const struct etcd_kv *kv, *mkv;
	const char *who, *a;

	if (!key)
		return -ENOMEM;
	if (self_leads) {
		snprintf(addr, addr_size, "%s", self_address);
		snprintf(why, why_size, "'%s' (this member) leads service '%s'", self, service);
		return 0;
	}
	kv = cluster_kvs_find(kvs, n, key);
	lv = kv ? value_json(kv) : NULL;
	who = json_string_value(json_object_get(lv, "member"));
	if (!kv || !who || !cluster_name_valid(who) || strcmp(who, self) == 0) {
		/* ourselves in an older look: we no longer lead */
		snprintf(why, why_size, "service '%s' has no leader", service);
		return -ENOENT;
	}
	mkey = cluster_member_key(cluster, who);
	if (!mkey)
		return -ENOMEM;
	mkv = cluster_kvs_find(kvs, n, mkey);
	mv = mkv ? value_json(mkv) : NULL;
	a = json_string_value(json_object_get(mv, "address"));
	if (!a || !*a)
		a = json_string_value(json_object_get(mv, "host"));
	if (!a || !*a || strlen(a) >= addr_size) {
		snprintf(why, why_size,
			 "service '%s': its leader '%s' gives no address (its member key is %s)",
			 service, who, mkv ? "without one" : "gone");
		return -ENXIO;
	}
	snprintf(addr, addr_size, "%s", a);
	snprintf(why, why_size, "'%s' leads service '%s'", who, service);
	return 0;
}

json_t *cluster_status_build(const struct cluster_plan *p, const struct etcd_kv *kvs, size_t n,
			     const char *endpoint, int64_t revision)
{
	_cleanup_free_ char *members_prefix = cluster_prefix(p->name, "members");
	_cleanup_free_ char *paused_key = cluster_paused_key(p->name);
	json_t *root = json_object(), *members = json_array(), *services = json_array();
	const struct etcd_kv *paused;
	size_t mlen = members_prefix ? strlen(members_prefix) : 0;

	if (!root || !members || !services || !members_prefix || !paused_key) {
		json_decref(root);
		json_decref(members);
		json_decref(services);
		return NULL;
	}
	json_set_str(root, "cluster", p->name);
	json_set_str(root, "etcd", endpoint);
	json_set_int(root, "revision", (long long)revision);
	paused = cluster_kvs_find(kvs, n, paused_key);
	json_set_bool(root, "paused", paused != NULL);
	if (paused)
		json_object_set_new(root, "pause", value_json(paused));
	for (size_t i = 0; i < n; i++) {
		json_t *m;

		if (strncmp(kvs[i].key, members_prefix, mlen) != 0)
			continue;
		m = value_json(&kvs[i]);
		json_set_str(m, "member", kvs[i].key + mlen);
		json_set_int(m, "lease", (long long)kvs[i].lease);
		json_array_append_new(members, m);
	}
	for (size_t i = 0; i < p->n_services; i++) {
		const char *name = p->services[i].name;
		_cleanup_free_ char *key = cluster_leader_key(p->name, name);
		_cleanup_free_ char *so_key = cluster_switchover_key(p->name, name);
		json_t *s = json_object(), *standbys = json_array();
		const struct etcd_kv *leader = cluster_kvs_find(kvs, n, key);
		const struct etcd_kv *so = cluster_kvs_find(kvs, n, so_key);
		_cleanup_json_ json_t *v = NULL; /* holds the leader's value: who points into it */
		const char *who = NULL;
		json_t *mv;
		size_t k;

		json_set_str(s, "name", name);
		if (leader) {
			v = value_json(leader);
			who = json_string_value(json_object_get(v, "member"));
			json_set_str(s, "leader", who);
			json_set_str(s, "since", json_string_value(json_object_get(v, "since")));
			json_set_int(s, "fencing_token", (long long)leader->create_revision);
		} else {
			json_object_set_new(s, "leader", json_null());
		}
		/* the others, and whether their checks let them take over */
		json_array_foreach (members, k, mv) {
			const char *m = json_string_value(json_object_get(mv, "member"));

			if (!m || (who && strcmp(m, who) == 0))
				continue;
			json_array_append_new(standbys, json_pack("{s:s,s:b}", "member", m, "ready",
								  member_value_fit(mv, name)));
		}
		json_object_set_new(s, "standbys", standbys);
		json_object_set_new(s, "switchover", so ? value_json(so) : json_null());
		json_array_append_new(services, s);
	}
	json_object_set_new(root, "members", members);
	json_object_set_new(root, "services", services);
	return root;
}

/* ---- the commands ---- */

static int read_all(const struct cluster_plan *p, struct etcd *e, usec_t deadline,
		    struct etcd_kv **ret_kvs, size_t *ret_n, int64_t *ret_rev, char **ret_error)
{
	_cleanup_free_ char *prefix = NULL;
	int r;

	if (asprintf(&prefix, "/%s/", p->name) < 0)
		return -ENOMEM;
	r = etcd_range_prefix(e, prefix, deadline, ret_kvs, ret_n, ret_rev);
	if (r < 0)
		return err_fail(ret_error, r, "cluster '%s': cannot read etcd: %s", p->name,
				etcd_last_error(e));
	return 0;
}

/* "a, b (not ready)" for messages: the live members. */
static void list_members(const struct cluster_plan *p, const struct etcd_kv *kvs, size_t n,
			 const char *service, struct buf *out)
{
	_cleanup_free_ char *prefix = cluster_prefix(p->name, "members");
	size_t plen = prefix ? strlen(prefix) : 0;
	bool any = false;

	for (size_t i = 0; prefix && i < n; i++) {
		const char *m = kvs[i].key + plen;

		if (strncmp(kvs[i].key, prefix, plen) != 0)
			continue;
		buf_printf(out, "%s%s%s", any ? ", " : "", m,
			   service && !cluster_kvs_member_fit(kvs, n, p->name, m, service)
				   ? " (not fit)"
				   : "");
		any = true;
	}
	if (!any)
		buf_printf(out, "none");
}

/* The fit member (other than leader) of the highest priority for service,
 * by name between equals; false when there is none. */
static bool best_standby(const struct cluster_plan *p, const struct etcd_kv *kvs, size_t n,
			 const char *service, const char *leader, char *out)
{
	_cleanup_free_ char *prefix = cluster_prefix(p->name, "members");
	size_t plen = prefix ? strlen(prefix) : 0;
	long long best = -1;

	for (size_t i = 0; prefix && i < n; i++) {
		const char *m = kvs[i].key + plen;
		_cleanup_json_ json_t *v = NULL;
		long long prio;

		if (strncmp(kvs[i].key, prefix, plen) != 0 || strcmp(m, leader) == 0 ||
		    !cluster_name_valid(m))
			continue;
		v = value_json(&kvs[i]);
		if (!member_value_fit(v, service))
			continue;
		prio = json_integer_value(json_object_get(json_object_get(v, "priority"), service));
		/* kvs come in key order: the first of equals is the smaller name */
		if (prio > best) {
			best = prio;
			snprintf(out, CLUSTER_NAME_MAX + 1, "%s", m);
		}
	}
	return best >= 0;
}

static bool member_leads(const struct etcd_kv *kvs, size_t n, const char *cluster,
			 const char *member, const char *service)
{
	_cleanup_json_ json_t *m = member_json(kvs, n, cluster, member);
	const json_t *s;
	size_t i;

	json_array_foreach (json_object_get(m, "leads"), i, s)
		if (json_is_string(s) && strcmp(json_string_value(s), service) == 0)
			return true;
	return false;
}

static void sleep_usec(usec_t t)
{
	struct timespec ts = { (time_t)(t / USEC_PER_SEC), (long)(t % USEC_PER_SEC) * 1000 };

	nanosleep(&ts, NULL);
}

/* Checks what a switchover needs and picks its target (into to_out). */
static int switchover_check(const struct cluster_plan *p, const struct etcd_kv *kvs, size_t n,
			    const char *service, const char *to, char *from_out, int64_t *ret_token,
			    char *to_out, char **ret_error)
{
	_cleanup_free_ char *leader_key = cluster_leader_key(p->name, service);
	_cleanup_free_ char *so_key = cluster_switchover_key(p->name, service);
	_cleanup_free_ char *paused_key = cluster_paused_key(p->name);
	_cleanup_(buf_release) struct buf members;
	const struct etcd_kv *leader, *so;
	_cleanup_json_ json_t *lv = NULL;
	struct cluster_switchover req;
	bool known = false;

	buf_init(&members, 16384);
	for (size_t i = 0; i < p->n_services; i++)
		known |= strcmp(p->services[i].name, service) == 0;
	if (!known)
		return err_fail(ret_error, -BCDR_ERR_NOT_FOUND,
				"service '%s' is not in the plan's services:", service);
	if (cluster_kvs_find(kvs, n, paused_key))
		return err_fail(ret_error, -EBUSY,
				"cluster '%s' is paused: nothing is handed over in maintenance "
				"(`bcdr cluster resume` first)",
				p->name);
	leader = cluster_kvs_find(kvs, n, leader_key);
	if (!leader)
		return err_fail(ret_error, -BCDR_ERR_NOT_FOUND,
				"service '%s' has no leader: nothing to switch over (a fit "
				"member takes it by itself; see `bcdr cluster status`)",
				service);
	lv = value_json(leader);
	if (!copy_name(lv, "member", from_out))
		return err_fail(ret_error, -BCDR_ERR_PROTOCOL,
				"service '%s': its leader key names no member", service);
	so = cluster_kvs_find(kvs, n, so_key);
	if (so && cluster_switchover_parse(so, &req) >= 0)
		return err_fail(ret_error, -EBUSY,
				"a switchover of service '%s' to '%s' is under way already",
				service, req.to);
	list_members(p, kvs, n, service, &members);
	if (to) {
		_cleanup_json_ json_t *m = member_json(kvs, n, p->name, to);

		if (!m)
			return err_fail(ret_error, -BCDR_ERR_NOT_FOUND,
					"'%s' is not a live member of cluster '%s' (members: %s)",
					to, p->name, members.data ? members.data : "none");
		if (strcmp(to, from_out) == 0)
			return err_fail(ret_error, -EALREADY, "'%s' leads service '%s' already", to,
					service);
		if (!member_value_fit(m, service))
			return err_fail(ret_error, -EAGAIN,
					"'%s' is not fit to lead service '%s' (its healthy: checks "
					"are not all ok; see `bcdr cluster status`)",
					to, service);
		snprintf(to_out, CLUSTER_NAME_MAX + 1, "%s", to);
	} else if (!best_standby(p, kvs, n, service, from_out, to_out)) {
		return err_fail(ret_error, -EAGAIN,
				"no standby is fit to take service '%s' from '%s' (members: %s)",
				service, from_out, members.data ? members.data : "none");
	}
	*ret_token = leader->create_revision;
	return 0;
}

usec_t cluster_switchover_default_timeout(const struct cluster_plan *p, const char *service)
{
	usec_t t = 0;

	for (size_t i = 0; i < p->n_services; i++)
		if (strcmp(p->services[i].name, service) == 0)
			t = 2 * p->services[i].timeout;
	t += 2 * p->ttl;
	return t < 30 * USEC_PER_SEC ? 30 * USEC_PER_SEC : t;
}

int cluster_switchover_request(const struct cluster_plan *p, struct etcd *e, const char *service,
			       const char *to, usec_t timeout, struct cluster_switchover_request *ret,
			       char **ret_error)
{
	_cleanup_free_ char *so_key = cluster_switchover_key(p->name, service);
	_cleanup_free_ char *value = NULL;
	_cleanup_json_ json_t *req = NULL;
	struct cluster_switchover_request rq = { .start = now_monotonic() };
	char since[64];
	struct etcd_kv *kvs = NULL, holder;
	size_t n = 0;
	int64_t rev;
	bool created;
	int r;

	if (!so_key)
		return -ENOMEM;
	if (strlen(service) > CLUSTER_NAME_MAX)
		return err_fail(ret_error, -BCDR_ERR_NOT_FOUND,
				"service '%.64s...' is not in the plan's services:", service);
	snprintf(rq.service, sizeof(rq.service), "%s", service);
	rq.deadline = rq.start + timeout;
	r = read_all(p, e, rq.start + CALL_TIMEOUT, &kvs, &n, &rev, ret_error);
	if (r < 0)
		return r;
	r = switchover_check(p, kvs, n, service, to, rq.from, &rq.previous_token, rq.to, ret_error);
	etcd_kvs_free(kvs, n);
	if (r < 0)
		return r;
	/* the request lives as long as the caller waits, and no longer */
	r = etcd_lease_grant(e, (int64_t)((timeout + USEC_PER_SEC - 1) / USEC_PER_SEC),
			     now_monotonic() + CALL_TIMEOUT, &rq.lease);
	if (r < 0)
		return err_fail(ret_error, r, "cluster '%s': cannot write the request: %s", p->name,
				etcd_last_error(e));
	req = json_pack("{s:s,s:s,s:s,s:I}", "from", rq.from, "to", rq.to, "requested",
			time_format_iso(now_realtime(), since, sizeof(since)), "timeout_s",
			(json_int_t)(timeout / USEC_PER_SEC));
	value = req ? json_dumps(req, JSON_COMPACT) : NULL;
	if (!value) {
		r = -ENOMEM;
		goto fail;
	}
	r = etcd_create(e, so_key, value, rq.lease, now_monotonic() + CALL_TIMEOUT, &created, &rev,
			&holder);
	if (r < 0) {
		r = err_fail(ret_error, r, "cluster '%s': cannot write the request: %s", p->name,
			     etcd_last_error(e));
		goto fail;
	}
	etcd_kv_release(&holder);
	if (!created) {
		r = err_fail(ret_error, -EBUSY, "a switchover of service '%s' is under way already",
			     service);
		goto fail;
	}
	*ret = rq;
	return 0;
fail:
	(void)etcd_lease_revoke(e, rq.lease, now_monotonic() + CALL_TIMEOUT);
	return r;
}

int cluster_switchover_wait(const struct cluster_plan *p, struct etcd *e,
			    const struct cluster_switchover_request *rq, json_t **ret,
			    char **ret_error)
{
	_cleanup_free_ char *leader_key = cluster_leader_key(p->name, rq->service);
	const char *service = rq->service, *target = rq->to;
	struct etcd_kv *kvs = NULL;
	size_t n = 0;
	int64_t rev, token = 0;
	int r;

	if (!leader_key) {
		r = -ENOMEM;
		goto out;
	}
	/* the leader steps down, then the target takes the key; done when its
	 * promote has ended (its member key says it leads) */
	for (;;) {
		const struct etcd_kv *kv;
		char who[CLUSTER_NAME_MAX + 1] = "";

		sleep_usec(SWITCHOVER_LOOK);
		if (now_monotonic() >= rq->deadline) {
			r = err_fail(ret_error, -BCDR_ERR_TIMEOUT,
				     "service '%s' did not move from '%s' to '%s' within %llds "
				     "(see the events of both: `bcdr events --kind cluster`)",
				     service, rq->from, target,
				     (long long)((rq->deadline - rq->start) / USEC_PER_SEC));
			goto out;
		}
		r = read_all(p, e, now_monotonic() + CALL_TIMEOUT, &kvs, &n, &rev, ret_error);
		if (r < 0)
			goto out;
		kv = cluster_kvs_find(kvs, n, leader_key);
		if (kv && kv->create_revision != rq->previous_token) {
			_cleanup_json_ json_t *v = value_json(kv);

			if (!copy_name(v, "member", who) || strcmp(who, target) != 0) {
				r = err_fail(ret_error, -BCDR_ERR_PROTOCOL,
					     "service '%s': '%s' took it instead of '%s'", service,
					     who[0] ? who : "?", target);
				goto out;
			}
			if (member_leads(kvs, n, p->name, target, service)) {
				token = kv->create_revision;
				break;
			}
		} else if (!cluster_kvs_member_fit(kvs, n, p->name, target, service)) {
			r = err_fail(ret_error, -EAGAIN,
				     "'%s' is no longer fit to lead service '%s' (or left the "
				     "cluster): the switchover is withdrawn%s",
				     target, service,
				     kv ? "" : "; another member takes the service");
			goto out;
		}
		etcd_kvs_free(kvs, n);
		kvs = NULL, n = 0;
	}
	*ret = json_pack("{s:s,s:s,s:s,s:I,s:I,s:f}", "service", service, "from", rq->from, "to",
			 target, "previous_token", (json_int_t)rq->previous_token, "fencing_token",
			 (json_int_t)token, "took_s", (double)(now_monotonic() - rq->start) / 1e6);
	r = *ret ? 0 : -ENOMEM;
out:
	etcd_kvs_free(kvs, n);
	/* the request goes with its lease, so the others need not wait for it */
	(void)etcd_lease_revoke(e, rq->lease, now_monotonic() + CALL_TIMEOUT);
	return r;
}

int cluster_switchover_run(const struct cluster_plan *p, struct etcd *e, const char *service,
			   const char *to, usec_t timeout, json_t **ret, char **ret_error)
{
	struct cluster_switchover_request rq;
	int r = cluster_switchover_request(p, e, service, to, timeout, &rq, ret_error);

	return r < 0 ? r : cluster_switchover_wait(p, e, &rq, ret, ret_error);
}

int cluster_pause_set(const struct cluster_plan *p, struct etcd *e, bool pause, const char *by,
		      usec_t deadline, json_t **ret, char **ret_error)
{
	_cleanup_free_ char *key = cluster_paused_key(p->name), *value = NULL;
	_cleanup_json_ json_t *v = NULL;
	struct etcd_kv *kvs = NULL;
	const struct etcd_kv *kv;
	char since[64];
	size_t n = 0;
	int64_t rev;
	bool changed = false, done;
	int r;

	if (!key)
		return -ENOMEM;
	r = read_all(p, e, deadline, &kvs, &n, &rev, ret_error);
	if (r < 0)
		return r;
	kv = cluster_kvs_find(kvs, n, key);
	if (kv)
		v = value_json(kv);
	if (pause && !kv) {
		v = json_pack("{s:s,s:s}", "by", by ? by : "?", "since",
			      time_format_iso(now_realtime(), since, sizeof(since)));
		value = v ? json_dumps(v, JSON_COMPACT) : NULL;
		if (!value) {
			etcd_kvs_free(kvs, n);
			return -ENOMEM;
		}
		/* no lease: maintenance lasts until someone resumes */
		r = etcd_put(e, key, value, 0, deadline);
		changed = true;
	} else if (!pause && kv) {
		r = etcd_delete_if(e, key, kv->create_revision, deadline, &done);
		changed = true;
	}
	etcd_kvs_free(kvs, n);
	if (r < 0)
		return err_fail(ret_error, r, "cluster '%s': cannot %s it: %s", p->name,
				pause ? "pause" : "resume", etcd_last_error(e));
	*ret = json_pack("{s:s,s:b,s:b}", "cluster", p->name, "paused", pause, "changed", changed);
	if (!*ret)
		return -ENOMEM;
	if (pause && v) {
		json_object_set(*ret, "by", json_object_get(v, "by"));
		json_object_set(*ret, "since", json_object_get(v, "since"));
	}
	return 0;
}

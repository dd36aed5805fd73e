/* The repository's locks (repo/repo.h): taking, refreshing (a thread per
 * held lock), verifying and releasing ours, and judging others' stale. */
#include "repo/repo.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/timeutil.h"

/* ---- locks ---- */

/* A held lock: refreshed by a thread of its own (a new lock object with the
 * current time, then the old one removed, as restic does), so a lock older
 * than the stale age is one whose process stopped refreshing it. Every
 * field after the mutex is under it. */
struct repo_lock {
	struct backend *backend; /* borrowed from the repo */
	bool exclusive;
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool stop;
	bool lost;        /* our lock object vanished: removed as stale */
	usec_t refreshed; /* monotonic time of the last successful refresh */
	char name[33];    /* the lock object we hold now */
	/* Others' locks the scan after ours saw: live, and stale (left). */
	unsigned others_live, others_stale;
};

static usec_t lock_refresh_usec = 5 * USEC_PER_MINUTE;
static usec_t lock_stale_usec = 30 * USEC_PER_MINUTE;
static pthread_once_t lock_timing_once = PTHREAD_ONCE_INIT;

/* BCDR_TEST_LOCK_REFRESH_MS shortens both intervals for the test suite
 * (stale stays six refreshes); never silently. */
static void lock_timing_init(void)
{
	const char *env = getenv("BCDR_TEST_LOCK_REFRESH_MS");
	char *end;
	unsigned long long ms;

	if (!env)
		return;
	ms = strtoull(env, &end, 10);
	if (*end || ms < 100 || ms > 5 * 60 * 1000) {
		log_warning("BCDR_TEST_LOCK_REFRESH_MS='%s' ignored: give 100 to 300000", env);
		return;
	}
	lock_refresh_usec = ms * USEC_PER_MSEC;
	lock_stale_usec = 6 * lock_refresh_usec;
	log_warning("BCDR_TEST_LOCK_REFRESH_MS=%llu: locks are refreshed every %.1f s and stale "
		    "after %.1f s (for the test suite only)",
		    ms, (double)lock_refresh_usec / USEC_PER_SEC,
		    (double)lock_stale_usec / USEC_PER_SEC);
}

static void lock_timing(usec_t *refresh, usec_t *stale)
{
	pthread_once(&lock_timing_once, lock_timing_init);
	if (refresh)
		*refresh = lock_refresh_usec;
	if (stale)
		*stale = lock_stale_usec;
}

bool repo_lock_is_ours(struct repo *repo, const char *name)
{
	bool ours = false;

	if (repo->lock) {
		pthread_mutex_lock(&repo->lock->mu);
		ours = strcmp(repo->lock->name, name) == 0;
		pthread_mutex_unlock(&repo->lock->mu);
	}
	return ours;
}

/* Writes a new lock object saying who we are and when; its name (32 hex)
 * goes to name. */
static int lock_write(struct backend *b, bool exclusive, char name[33])
{
	_cleanup_json_ json_t *j = json_object();
	_cleanup_free_ char *text = NULL;
	char host[256] = "", full[128];
	uint8_t rnd[16];
	int r;

	if (!j)
		return -ENOMEM;
	gethostname(host, sizeof(host) - 1);
	json_set_str(j, "host", host);
	json_set_int(j, "pid", getpid());
	json_set_int(j, "time_us", (long long)now_realtime());
	json_set_bool(j, "exclusive", exclusive);
	text = json_dumps(j, JSON_COMPACT);
	if (!text)
		return -ENOMEM;
	if ((r = crypto_random(rnd, sizeof(rnd))) < 0)
		return r;
	hex_encode(rnd, sizeof(rnd), name);
	snprintf(full, sizeof(full), "locks/%s", name);
	return b->ops->put(b, full, text, strlen(text));
}

/* Under l->mu. The new object first, then the old one removed: at every
 * moment one of ours is there. When the old one is gone, another process
 * took it for stale (we were stopped or cut off past the stale age) and
 * may have pruned: the lock is lost, and the new object stays until
 * unlock, so a prune still running sees a live lock and spares our packs. */
static int lock_refresh_locked(struct repo_lock *l)
{
	char name[33], full[128];
	uint64_t size;
	int r;

	if (l->lost)
		return -BCDR_ERR_LOCK_LOST;
	if ((r = lock_write(l->backend, l->exclusive, name)) < 0)
		return r;
	snprintf(full, sizeof(full), "locks/%s", l->name);
	r = l->backend->ops->stat(l->backend, full, &size);
	if (r == -ENOENT || r == -BCDR_ERR_NOT_FOUND) {
		l->lost = true;
		memcpy(l->name, name, sizeof(name));
		return -BCDR_ERR_LOCK_LOST;
	}
	if (r >= 0)
		r = l->backend->ops->remove(l->backend, full);
	if (r < 0 && r != -ENOENT) {
		/* Keep the old one as ours: the new one goes. */
		snprintf(full, sizeof(full), "locks/%s", name);
		l->backend->ops->remove(l->backend, full);
		return r;
	}
	memcpy(l->name, name, sizeof(name));
	l->refreshed = now_monotonic();
	return 0;
}

static void *lock_refresher(void *userdata)
{
	struct repo_lock *l = userdata;
	usec_t refresh, stale, retry_at = 0;

	lock_timing(&refresh, &stale);
	pthread_mutex_lock(&l->mu);
	while (!l->stop) {
		usec_t due = l->refreshed + refresh, now = now_monotonic();
		struct timespec ts;
		int r;

		if (retry_at > due)
			due = retry_at;
		if (now < due) {
			ts.tv_sec = (time_t)(due / USEC_PER_SEC);
			ts.tv_nsec = (long)(due % USEC_PER_SEC) * 1000;
			pthread_cond_timedwait(&l->cond, &l->mu, &ts);
			continue;
		}
		/* A failed refresh (a network error) is tried again soon; once
		 * the stale age has passed without one, others may have taken
		 * the lock for stale, and it is lost. */
		r = lock_refresh_locked(l);
		if (r < 0 && !l->lost && now_monotonic() - l->refreshed > stale)
			l->lost = true;
		if (l->lost)
			break;
		retry_at = r < 0 ? now_monotonic() + refresh / 5 : 0;
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

int repo_lock_verify(struct repo *repo)
{
	struct repo_lock *l = repo->lock;
	usec_t refresh;
	int r = 0;

	if (!l)
		return 0;
	lock_timing(&refresh, NULL);
	pthread_mutex_lock(&l->mu);
	if (l->lost)
		r = -BCDR_ERR_LOCK_LOST;
	else if (now_monotonic() - l->refreshed >= refresh)
		r = lock_refresh_locked(l);
	pthread_mutex_unlock(&l->mu);
	return r;
}

static bool lock_is_stale(json_t *j, const char *myhost)
{
	json_t *host = json_object_get(j, "host"), *pid = json_object_get(j, "pid"),
	       *t = json_object_get(j, "time_us");
	usec_t now = now_realtime(), stale;

	lock_timing(NULL, &stale);
	if (!json_is_string(host) || !json_is_integer(pid) || !json_is_integer(t))
		return true;
	if ((usec_t)json_integer_value(t) + stale < now)
		return true;
	if (strcmp(json_string_value(host), myhost) == 0 && json_integer_value(pid) > 0 &&
	    json_integer_value(pid) < INT32_MAX &&
	    kill((pid_t)json_integer_value(pid), 0) < 0 && errno == ESRCH)
		return true;
	return false;
}

struct lock_scan {
	struct repo *repo;
	bool exclusive; /* any live lock conflicts */
	bool remove_stale;
	bool count_only; /* no conflicts: count the live locks */
	unsigned removed, live;
	unsigned kept; /* stale, but they could not be removed */
	char conflict[300];
};

static int scan_lock(const char *name, uint64_t size, void *userdata)
{
	struct lock_scan *s = userdata;
	_cleanup_free_ uint8_t *data = NULL;
	_cleanup_json_ json_t *j = NULL;
	char full[128], host[256] = "";
	size_t len;
	int r;

	(void)size;
	if (repo_lock_is_ours(s->repo, name))
		return 0;
	snprintf(full, sizeof(full), "locks/%s", name);
	r = s->repo->backend->ops->get(s->repo->backend, full, 64 << 10, &data, &len);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	gethostname(host, sizeof(host) - 1);
	j = json_loadb((const char *)data, len, 0, NULL);
	if (!json_is_object(j) || lock_is_stale(j, host)) {
		if (s->remove_stale && s->repo->backend->ops->remove(s->repo->backend, full) >= 0)
			s->removed++;
		else
			s->kept++;
		return 0;
	}
	s->live++;
	if (s->count_only)
		return 0;
	if (s->exclusive || json_is_true(json_object_get(j, "exclusive"))) {
		json_t *h = json_object_get(j, "host"), *p = json_object_get(j, "pid");

		snprintf(s->conflict, sizeof(s->conflict), "%s lock held by pid %lld on '%s'",
			 json_is_true(json_object_get(j, "exclusive")) ? "an exclusive" : "a",
			 (long long)json_integer_value(p), json_is_string(h) ? json_string_value(h) : "?");
		return -BCDR_ERR_LOCKED;
	}
	return 0;
}

static char lock_conflict[300];

const char *repo_lock_conflict(void)
{
	return lock_conflict;
}

/* Stops the refresher: it is gone when this returns. */
static void lock_stop(struct repo_lock *l)
{
	if (!l->started)
		return;
	pthread_mutex_lock(&l->mu);
	l->stop = true;
	pthread_cond_signal(&l->cond);
	pthread_mutex_unlock(&l->mu);
	pthread_join(l->thread, NULL);
	l->started = false;
}

static void repo_lock_free(struct repo_lock *l)
{
	if (!l)
		return;
	lock_stop(l);
	pthread_cond_destroy(&l->cond);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

int repo_lock(struct repo *repo, bool exclusive)
{
	struct lock_scan s = { .repo = repo, .exclusive = exclusive, .remove_stale = exclusive };
	struct repo_lock *l;
	pthread_condattr_t ca;
	int r;

	if (repo->lock)
		return -EBUSY;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->backend = repo->backend;
	l->exclusive = exclusive;
	pthread_mutex_init(&l->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->cond, &ca);
	pthread_condattr_destroy(&ca);
	/* Write ours first, then look: of two racing lockers at least one sees
	 * the other. */
	r = lock_write(repo->backend, exclusive, l->name);
	if (r < 0) {
		repo_lock_free(l);
		return r;
	}
	l->refreshed = now_monotonic();
	repo->lock = l;
	r = repo->backend->ops->list(repo->backend, "locks", scan_lock, &s);
	if (r < 0) {
		snprintf(lock_conflict, sizeof(lock_conflict), "%s", s.conflict);
		repo_unlock(repo);
		return r;
	}
	l->others_live = s.live;
	l->others_stale = s.kept;
	r = pthread_create(&l->thread, NULL, lock_refresher, l);
	if (r) {
		repo_unlock(repo);
		return -r;
	}
	l->started = true;
	return 0;
}

int repo_unlock(struct repo *repo)
{
	struct repo_lock *l = repo->lock;
	char full[128];
	int r;

	if (!l)
		return 0;
	lock_stop(l); /* then its name is ours alone */
	snprintf(full, sizeof(full), "locks/%s", l->name);
	r = repo->backend->ops->remove(repo->backend, full);
	repo->lock = NULL;
	repo_lock_free(l);
	return r == -ENOENT ? 0 : r;
}

void repo_lock_others(struct repo *repo, unsigned *ret_live, unsigned *ret_stale)
{
	*ret_live = repo->lock ? repo->lock->others_live : 0;
	*ret_stale = repo->lock ? repo->lock->others_stale : 0;
}

int repo_remove_stale_locks(struct repo *repo, unsigned *ret_removed, unsigned *ret_others)
{
	struct lock_scan s = { .repo = repo, .exclusive = false, .remove_stale = true };
	int r = repo->backend->ops->list(repo->backend, "locks", scan_lock, &s);

	if (r < 0 && r != -BCDR_ERR_LOCKED)
		return r;
	if (ret_removed)
		*ret_removed = s.removed;
	if (ret_others) /* an exclusive lock stopped the scan: one at least */
		*ret_others = s.live + s.kept;
	return 0;
}

int repo_count_live_locks(struct repo *repo, unsigned *ret)
{
	struct lock_scan s = { .repo = repo, .count_only = true };
	int r = repo->backend->ops->list(repo->backend, "locks", scan_lock, &s);

	if (r < 0)
		return r;
	*ret = s.live;
	return 0;
}

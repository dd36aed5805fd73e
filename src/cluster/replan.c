/* A reload that keeps the cluster: section (cluster_replan()): the
 * services that left the plan or changed step down, then the new plan's
 * services take the place of the old ones, those alike with their state.
 * Between two steps of the engine's thread, which keeps the lease alive
 * meanwhile (docs/cluster.md, "In the agent"). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/internal.h"
#include "lib/strv.h"

static struct svc *find_svc(struct cluster *c, const char *name)
{
	for (size_t i = 0; i < c->n_svcs; i++)
		if (c->svcs[i].def && strcmp(c->svcs[i].def->name, name) == 0)
			return &c->svcs[i];
	return NULL;
}

static const struct cluster_service *find_def(const struct cluster_plan *p, const char *name)
{
	for (size_t i = 0; i < p->n_services; i++)
		if (strcmp(p->services[i].name, name) == 0)
			return &p->services[i];
	return NULL;
}

static void check_slots_free(struct check_slot *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].name);
	free(v);
}

/* The check slots plan p's services name, with the states known so far. */
static int check_slots_for(struct cluster *c, const struct cluster_plan *p,
			   struct check_slot **ret, size_t *ret_n)
{
	struct check_slot *v = NULL, *g;
	size_t n = 0;

	for (size_t i = 0; i < p->n_services; i++)
		for (char **h = p->services[i].healthy; h && *h; h++) {
			bool have = false;

			for (size_t j = 0; j < n; j++)
				have |= strcmp(v[j].name, *h) == 0;
			if (have)
				continue;
			if (!(g = realloc(v, (n + 1) * sizeof(*g)))) {
				check_slots_free(v, n);
				return -ENOMEM;
			}
			v = g;
			memset(&v[n], 0, sizeof(*v));
			if (!(v[n].name = strdup(*h))) {
				check_slots_free(v, n);
				return -ENOMEM;
			}
			pthread_mutex_lock(&c->lock);
			for (size_t j = 0; j < c->n_checks; j++)
				if (strcmp(c->checks[j].name, *h) == 0)
					memcpy(v[n].status, c->checks[j].status, sizeof(v[n].status));
			pthread_mutex_unlock(&c->lock);
			n++;
		}
	*ret = v;
	*ret_n = n;
	return 0;
}

/* Puts plan p's services in place of the old ones: a service of the same
 * name keeps its state (a leader goes on leading, its key and token
 * unchanged; one that stepped down for the change waits its turn). No
 * command may run: their threads point into the old array. */
static int install_plan(struct cluster *c, const struct cluster_plan *p)
{
	struct svc *svcs = calloc(p->n_services ? p->n_services : 1, sizeof(*svcs)), *old;
	struct check_slot *checks = NULL, *old_checks;
	size_t n_checks = 0, old_n_svcs, old_n_checks;
	int r = -ENOMEM;

	if (!svcs)
		return -ENOMEM;
	for (size_t i = 0; i < p->n_services; i++)
		if (!find_svc(c, p->services[i].name) &&
		    !(svcs[i].key = cluster_leader_key(p->name, p->services[i].name)))
			goto fail;
	r = check_slots_for(c, p, &checks, &n_checks);
	if (r < 0)
		goto fail;
	/* from here on nothing fails */
	for (size_t i = 0; i < p->n_services; i++) {
		struct svc *s = find_svc(c, p->services[i].name);

		if (s) {
			svcs[i] = *s;
			s->def = NULL; /* moved: its key and envp are the new one's */
			svcs[i].retiring = false;
			svcs[i].demote_why = NULL;
		}
		svcs[i].def = &p->services[i];
	}
	pthread_mutex_lock(&c->lock);
	old = c->svcs, old_n_svcs = c->n_svcs;
	old_checks = c->checks, old_n_checks = c->n_checks;
	c->svcs = svcs, c->n_svcs = p->n_services;
	c->checks = checks, c->n_checks = n_checks;
	c->plan = p;
	cluster_update_fitness(c);
	pthread_mutex_unlock(&c->lock);
	for (size_t i = 0; i < old_n_svcs; i++)
		if (old[i].def) {
			free(old[i].key);
			strv_free(old[i].cmd.envp);
		}
	free(old);
	check_slots_free(old_checks, old_n_checks);
	c->member_dirty = true; /* its leads, fit and priorities */
	return 0;
fail:
	for (size_t i = 0; i < p->n_services; i++)
		free(svcs[i].key);
	free(svcs);
	return r;
}

/* A plan handed over by cluster_replan(): what left it or changed steps
 * down (its demote runs, its key goes); once no command runs, the new
 * services take the old ones' place, and cluster_replan() returns. */
void cluster_adopt_plan(struct cluster *c)
{
	const struct cluster_plan *p;
	int r;

	pthread_mutex_lock(&c->lock);
	c->adopting = c->next_plan;
	pthread_mutex_unlock(&c->lock);
	p = c->adopting;
	if (!p)
		return;
	for (size_t i = 0; i < c->n_svcs; i++) {
		struct svc *s = &c->svcs[i];
		const struct cluster_service *d = find_def(p, s->def->name);

		if (s->retiring || (d && cluster_service_equal(d, s->def)))
			continue;
		s->retiring = true;
		cluster_begin_demote(c, s, d ? "its definition changed (reload)"
				     : "it left the plan (reload)");
	}
	for (size_t i = 0; i < c->n_svcs; i++) {
		const struct svc *s = &c->svcs[i];

		if (s->cmd.running || (s->state != SVC_FOLLOWER && s->state != SVC_LEADING) ||
		    (s->retiring && s->state != SVC_FOLLOWER))
			return; /* the next step looks again */
	}
	r = install_plan(c, p);
	pthread_mutex_lock(&c->lock);
	c->next_plan = NULL;
	c->replan_result = r;
	pthread_cond_broadcast(&c->adopted);
	pthread_mutex_unlock(&c->lock);
	c->adopting = NULL;
}

int cluster_replan(struct cluster *c, const struct cluster_plan *p)
{
	int r;

	if (!cluster_plan_same_cluster(c->plan, p))
		return -EINVAL;
	if (!c->started)
		return install_plan(c, p);
	pthread_mutex_lock(&c->lock);
	c->next_plan = p;
	c->poke = true;
	pthread_cond_signal(&c->cond);
	while (c->next_plan)
		pthread_cond_wait(&c->adopted, &c->lock);
	r = c->replan_result;
	pthread_mutex_unlock(&c->lock);
	return r;
}

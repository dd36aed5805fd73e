/* parallel_for() (lib/parallel.h): the threads take the next turn from a
 * counter under a mutex. */
#include "lib/parallel.h"

#include <pthread.h>

/* What every thread shares; next and error are under mu. */
struct loop {
	size_t n;
	const struct parallel_ops *ops;
	void *userdata;
	pthread_mutex_t mu;
	size_t next;
	int error; /* the first */
};

static void *loop_main(void *arg)
{
	struct loop *l = arg;
	void *state = NULL;
	int r = l->ops->setup ? l->ops->setup(l->userdata, &state) : 0;

	for (;;) {
		size_t i;

		pthread_mutex_lock(&l->mu);
		if (r < 0 && !l->error)
			l->error = r;
		i = l->error ? l->n : l->next++;
		pthread_mutex_unlock(&l->mu);
		if (i >= l->n)
			break;
		r = l->ops->turn(i, state, l->userdata);
	}
	if (state && l->ops->teardown)
		l->ops->teardown(state);
	return NULL;
}

int parallel_for(size_t n, size_t threads, const struct parallel_ops *ops, void *userdata)
{
	struct loop l = { .n = n, .ops = ops, .userdata = userdata };
	pthread_t t[PARALLEL_THREADS_MAX];
	size_t started = 0;

	if (n == 0)
		return 0;
	if (threads > PARALLEL_THREADS_MAX)
		threads = PARALLEL_THREADS_MAX;
	pthread_mutex_init(&l.mu, NULL);
	while (started + 1 < threads && started + 1 < n &&
	       pthread_create(&t[started], NULL, loop_main, &l) == 0)
		started++;
	loop_main(&l);
	for (size_t i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	pthread_mutex_destroy(&l.mu);
	return l.error;
}

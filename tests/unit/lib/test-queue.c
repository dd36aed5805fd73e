#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <errno.h>
#include <pthread.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/queue.h"

struct pair {
	uint32_t seq;
	uint16_t tag;
};

/* First in, first out, across the ring's wrap, by value. */
static void test_fifo_by_value(void **state)
{
	struct queue q;
	struct pair p;

	(void)state;
	assert_int_equal(queue_init(&q, sizeof(struct pair), 3), 0);
	for (uint32_t round = 0; round < 5; round++) {
		struct pair in[2] = { { round * 2, 7 }, { round * 2 + 1, 9 } };

		queue_push_many(&q, in, 2);
		assert_true(queue_pop(&q, &p));
		assert_int_equal(p.seq, round * 2);
		assert_int_equal(p.tag, 7);
		assert_true(queue_pop(&q, &p));
		assert_int_equal(p.seq, round * 2 + 1);
		assert_int_equal(p.tag, 9);
	}
	assert_false(queue_try_pop(&q, &p)); /* empty and open: no sleep */
	queue_push(&q, &(struct pair){ 41, 1 });
	assert_true(queue_try_pop(&q, &p));
	assert_int_equal(p.seq, 41);
	queue_push(&q, &(struct pair){ 42, 1 });
	queue_close(&q);
	assert_true(queue_pop(&q, &p)); /* closed: what is left still comes out */
	assert_int_equal(p.seq, 42);
	assert_false(queue_pop(&q, &p));
	queue_destroy(&q);
}

static void test_bad_sizes(void **state)
{
	struct queue q;

	(void)state;
	assert_int_equal(queue_init(&q, 0, 4), -EINVAL);
	assert_int_equal(queue_init(&q, 8, 0), -EINVAL);
	queue_destroy(&q); /* of a failed init: nothing to free, no crash */
}

#define ITEMS 200000u
#define WORKERS 3

struct tally {
	struct queue *q;
	atomic_uint_fast64_t sum;
	atomic_uint seen[ITEMS];
};

static void *worker(void *arg)
{
	struct tally *t = arg;
	uint32_t v;

	while (queue_pop(t->q, &v)) {
		atomic_fetch_add(&t->seen[v], 1);
		atomic_fetch_add(&t->sum, v);
	}
	return NULL;
}

/* One producer, three workers, a queue of 8: every item reaches exactly
 * one worker, and closing lets them all finish. */
static void test_every_item_once(void **state)
{
	static struct tally t;
	struct queue q;
	pthread_t th[WORKERS];
	uint32_t batch[5];

	(void)state;
	assert_int_equal(queue_init(&q, sizeof(uint32_t), 8), 0);
	t.q = &q;
	for (int i = 0; i < WORKERS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, worker, &t), 0);
	for (uint32_t v = 0; v < ITEMS;) {
		if (v % 3) {
			queue_push(&q, &v);
			v++;
			continue;
		}
		size_t n = 0;
		while (n < 5 && v < ITEMS)
			batch[n++] = v++;
		queue_push_many(&q, batch, n);
	}
	queue_close(&q);
	for (int i = 0; i < WORKERS; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(t.sum, (uint64_t)ITEMS * (ITEMS - 1) / 2);
	for (uint32_t v = 0; v < ITEMS; v++)
		assert_int_equal(t.seen[v], 1);
	queue_destroy(&q);
}

struct pusher {
	struct queue *q;
	atomic_bool done;
};

static void *push_one(void *arg)
{
	struct pusher *p = arg;
	int v = 5;

	queue_push(p->q, &v);
	atomic_store(&p->done, true);
	return NULL;
}

/* A producer that found the queue full sleeps until half of it is free,
 * not at the first free slot. */
static void test_full_queue_waits_for_half(void **state)
{
	struct queue q;
	struct pusher p = { &q, false };
	pthread_t th;
	int v;

	(void)state;
	assert_int_equal(queue_init(&q, sizeof(int), 4), 0);
	for (v = 1; v <= 4; v++)
		queue_push(&q, &v);
	assert_int_equal(pthread_create(&th, NULL, push_one, &p), 0);
	usleep(50 * 1000);
	assert_false(atomic_load(&p.done));
	assert_true(queue_pop(&q, &v)); /* 3 left: still more than half */
	usleep(50 * 1000);
	assert_false(atomic_load(&p.done));
	assert_true(queue_pop(&q, &v)); /* 2 left: half, the producer goes on */
	pthread_join(th, NULL);
	assert_true(atomic_load(&p.done));
	for (int want = 3; want <= 5; want++) {
		assert_true(queue_pop(&q, &v));
		assert_int_equal(v, want);
	}
	queue_destroy(&q);
}

static void *pop_one(void *arg)
{
	int v;

	return queue_pop(arg, &v) ? (void *)1 : NULL;
}

/* Closing wakes a worker asleep on an empty queue. */
static void test_close_wakes_a_sleeping_pop(void **state)
{
	struct queue q;
	pthread_t th;
	void *got = (void *)1;

	(void)state;
	assert_int_equal(queue_init(&q, sizeof(int), 2), 0);
	assert_int_equal(pthread_create(&th, NULL, pop_one, &q), 0);
	usleep(20 * 1000);
	queue_close(&q);
	pthread_join(th, &got);
	assert_null(got);
	queue_destroy(&q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fifo_by_value),
		cmocka_unit_test(test_bad_sizes),
		cmocka_unit_test(test_every_item_once),
		cmocka_unit_test(test_full_queue_waits_for_half),
		cmocka_unit_test(test_close_wakes_a_sleeping_pop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

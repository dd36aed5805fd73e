#include "lib/queue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int queue_init(struct queue *q, size_t item_size, size_t cap)
{
	*q = (struct queue){ .item_size = item_size, .cap = cap };
	if (!item_size || !cap)
		return -EINVAL;
	if (!(q->ring = calloc(cap, item_size)))
		return -ENOMEM;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->more, NULL);
	pthread_cond_init(&q->room, NULL);
	return 0;
}

void queue_destroy(struct queue *q)
{
	if (!q->ring)
		return;
	pthread_cond_destroy(&q->room);
	pthread_cond_destroy(&q->more);
	pthread_mutex_destroy(&q->lock);
	free(q->ring);
	q->ring = NULL;
}

/* With the lock held: one item in, sleeping first if the queue is full. */
static void put_locked(struct queue *q, const void *item)
{
	if (q->count == q->cap) {
		pthread_cond_broadcast(&q->more); /* the workers may be asleep on a batch */
		q->producer_waiting = true;
		while (q->producer_waiting && q->count == q->cap)
			pthread_cond_wait(&q->room, &q->lock);
	}
	memcpy(q->ring + (q->head + q->count) % q->cap * q->item_size, item, q->item_size);
	q->count++;
}

void queue_push(struct queue *q, const void *item)
{
	pthread_mutex_lock(&q->lock);
	put_locked(q, item);
	pthread_cond_signal(&q->more);
	pthread_mutex_unlock(&q->lock);
}

void queue_push_many(struct queue *q, const void *items, size_t n)
{
	const uint8_t *p = items;

	if (!n)
		return;
	pthread_mutex_lock(&q->lock);
	for (size_t i = 0; i < n; i++)
		put_locked(q, p + i * q->item_size);
	if (n > 1)
		pthread_cond_broadcast(&q->more);
	else
		pthread_cond_signal(&q->more);
	pthread_mutex_unlock(&q->lock);
}

static bool take(struct queue *q, void *item, bool wait)
{
	bool got = false;

	pthread_mutex_lock(&q->lock);
	while (wait && !q->count && !q->closed)
		pthread_cond_wait(&q->more, &q->lock);
	if (q->count) {
		memcpy(item, q->ring + q->head * q->item_size, q->item_size);
		q->head = (q->head + 1) % q->cap;
		q->count--;
		got = true;
		if (q->producer_waiting && q->count <= q->cap / 2) {
			q->producer_waiting = false;
			pthread_cond_signal(&q->room);
		}
	}
	pthread_mutex_unlock(&q->lock);
	return got;
}

bool queue_pop(struct queue *q, void *item)
{
	return take(q, item, true);
}

bool queue_try_pop(struct queue *q, void *item)
{
	return take(q, item, false);
}

void queue_close(struct queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->closed = true;
	q->producer_waiting = false;
	pthread_cond_broadcast(&q->more);
	pthread_cond_broadcast(&q->room);
	pthread_mutex_unlock(&q->lock);
}

/* A bounded queue between threads: the one way bcdr's engines hand work
 * from a producer to workers (a backup's files and stream pieces, a
 * restore's batches and pack jobs).
 *
 * Items are copied in and out by value (item_size bytes: a pointer or a
 * small struct). A producer that finds the queue full sleeps until half
 * of it is free, so a fast producer and slow workers cost one wake-up per
 * cap / 2 items, not one per item. Closing wakes everyone: pops drain
 * what is left, then return false.
 *
 *   struct queue q;
 *   queue_init(&q, sizeof(struct job *), 64);
 *   producer: queue_push(&q, &job); ... queue_close(&q);
 *   worker:   while (queue_pop(&q, &job)) run(job);
 *   queue_destroy(&q);   (once no thread uses it) */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct queue {
	pthread_mutex_t lock;
	pthread_cond_t more, room;
	uint8_t *ring;
	size_t item_size, cap, head, count;
	bool closed;
	bool producer_waiting; /* a push sleeps until count <= cap / 2 */
};

/* -ENOMEM, or -EINVAL for a zero item_size or cap. */
int queue_init(struct queue *q, size_t item_size, size_t cap);
void queue_destroy(struct queue *q);
/* Copies item in; sleeps while the queue is full. */
void queue_push(struct queue *q, const void *item);
/* Copies n items in (an array of item_size each), waking the workers once
 * for all of them. */
void queue_push_many(struct queue *q, const void *items, size_t n);
/* Copies the oldest item into *item; sleeps while the queue is empty and
 * open. false once it is closed and empty. */
bool queue_pop(struct queue *q, void *item);
/* queue_pop() without the sleep: false when nothing is there now. */
bool queue_try_pop(struct queue *q, void *item);
/* No more pushes: wakes every sleeper. */
void queue_close(struct queue *q);

/* A loop whose turns run on several threads at once: the parallel reads
 * and writes of a repository's small objects (index files, snapshots),
 * where each turn is mostly a round trip to a remote store. */
#pragma once

#include <stddef.h>

/* More threads than this are never started, whatever is asked. */
#define PARALLEL_THREADS_MAX 16

struct parallel_ops {
	/* A thread's own state (a crypto context, a buffer) into *ret, or
	 * NULL for none; < 0 stops the loop with that error. */
	int (*setup)(void *userdata, void **ret);
	void (*teardown)(void *state);
	/* Turn i, on one of the threads, with its state. */
	int (*turn)(size_t i, void *state, void *userdata);
};

/* Runs turns 0..n-1 on up to `threads` threads, the caller's among them
 * (one that cannot start leaves its turns to the others), each turn once,
 * in no given order. The first error, of a setup or a turn, stops the turns
 * not yet begun and is returned; 0 when every turn returned >= 0. */
int parallel_for(size_t n, size_t threads, const struct parallel_ops *ops, void *userdata);

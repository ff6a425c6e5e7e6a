/* platform/threads.h — a fixed-size worker pool (pthreads, or none).
 *
 * The pool lives in caller memory (spr_pool_bytes(n) bytes, in the arena),
 * so creating it allocates nothing of ours (pthread_create itself maps a
 * stack; that happens at session creation, never during a run). With
 * SPR_THREADS off (any n_threads: the pool is NULL), or n_threads == 1,
 * spr_pool_run runs inline on the caller with tid 0. */
#ifndef SPR_PLATFORM_THREADS_H
#define SPR_PLATFORM_THREADS_H

#include <stddef.h>

#include "sparrow/types.h"

struct spr_pool;

/* fn runs tasks [begin, end) on thread `tid` (0 = the calling thread). */
typedef void (*spr_task_fn)(void *ctx, size_t begin, size_t end, int tid);

/* Bytes of caller memory a pool of n_threads needs (0 for n_threads <= 1). */
size_t spr_pool_bytes(int n_threads);

/* Starts n_threads-1 workers in mem (aligned to 64). *out is NULL when
 * n_threads <= 1. THREAD when a worker cannot be created (the workers already
 * started are joined first). */
enum spr_status spr_pool_create(void *mem, int n_threads, struct spr_pool **out);
void spr_pool_destroy(struct spr_pool *p);

/* Splits [0, n_tasks) into contiguous chunks, one per thread, and waits.
 * The chunks are claimed in order: a task may wait for work of an earlier
 * chunk of the same dispatch (that chunk has been claimed, so it finishes),
 * never for a later one. */
void spr_pool_run(struct spr_pool *p, size_t n_tasks, spr_task_fn fn, void *ctx);

/* One step of a task's wait for another thread of the same dispatch (spins:
 * the steps so far, from 1): a pause, and past a while also a yield of the
 * core now and then, as the pool's own waits do (the awaited thread may be
 * queued behind the waiter on a loaded machine). A no-op without threads. */
void spr_pool_spin(int spins);

#endif

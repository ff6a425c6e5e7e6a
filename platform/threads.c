/* platform/threads.c — a fixed worker pool for the executor.
 *
 * One dispatch per graph node, so the hand-off must be cheap: workers spin
 * on a generation counter for a short while (an LLM decode step dispatches
 * hundreds of nodes back to back) and only then sleep on a condition
 * variable. The caller is thread 0 and works too.
 *
 * The work of a dispatch is cut into exactly T chunks whose bounds depend only
 * on (n_tasks, T); whichever thread is free claims the next chunk. When a
 * worker is descheduled (another process owns its core), the caller runs its
 * chunk instead of waiting a time slice for it. Results do not change: a
 * chunk's bounds are fixed and ops use the thread id only to pick their
 * scratch slice. */
#include "platform/threads.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#if SPR_THREADS
#include <pthread.h>
#include <sched.h>

#if defined(__x86_64__) || defined(__i386__)
#define SPR_PAUSE() __builtin_ia32_pause()
#elif defined(__aarch64__) || defined(__arm__)
#define SPR_PAUSE() __asm__ volatile("yield")
#else
#define SPR_PAUSE() ((void)0)
#endif

/* SPIN_ITERS pauses before a worker sleeps; after YIELD_AFTER of them a
 * waiter also yields its core every YIELD_EVERY pauses. On a loaded machine
 * the thread being waited for may be queued behind the waiter on the same
 * core, and pure spinning burns the time slice it needs (measured: with
 * other jobs running, a 2-thread decode's worker spent three quarters of its
 * CPU time spinning). With the machine to itself, sched_yield returns at once
 * and a waiter notices new work within about a microsecond. */
enum { SPIN_ITERS = 1 << 16, YIELD_AFTER = 1 << 10, YIELD_EVERY = 1 << 6 };

static inline void spin_wait(int spins) {
  if (spins >= YIELD_AFTER && spins % YIELD_EVERY == 0)
    sched_yield();
  else
    SPR_PAUSE();
}

struct spr_worker {
  struct spr_pool *pool;
  int tid;
  pthread_t thread;
};

struct spr_pool {
  int n_threads;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  alignas(64) _Atomic uint64_t generation;
  /* (generation << 32) | next chunk: a claim is valid only for the
   * generation the claimer saw, so a late worker cannot take a chunk of a
   * newer dispatch with the function of an older one. */
  alignas(64) _Atomic uint64_t ticket;
  alignas(64) _Atomic int done;
  _Atomic int sleepers;
  _Atomic int stop;
  spr_task_fn fn;
  void *ctx;
  size_t n_tasks;
  struct spr_worker workers[]; /* n_threads - 1 */
};

/* Claims and runs chunks of dispatch `gen` until none is left. */
static void run_chunks(struct spr_pool *p, uint64_t gen, int tid) {
  const uint32_t t = (uint32_t)p->n_threads;
  uint64_t cur = atomic_load_explicit(&p->ticket, memory_order_acquire);
  for (;;) {
    if ((cur >> 32) != (gen & 0xffffffffu) || (uint32_t)cur >= t) return;
    if (!atomic_compare_exchange_weak_explicit(&p->ticket, &cur, cur + 1, memory_order_acq_rel, memory_order_acquire))
      continue;
    const size_t c = (uint32_t)cur, n = p->n_tasks;
    const size_t begin = n * c / t, end = n * (c + 1) / t;
    if (begin < end) p->fn(p->ctx, begin, end, tid);
    atomic_fetch_add_explicit(&p->done, 1, memory_order_acq_rel);
    cur = atomic_load_explicit(&p->ticket, memory_order_acquire);
  }
}

static void *worker_main(void *arg) {
  struct spr_worker *w = arg;
  struct spr_pool *p = w->pool;
  /* Not a load: the caller may dispatch (or stop the pool) before this
   * thread first runs, and that generation must not be missed. */
  uint64_t seen = 0;
  for (;;) {
    uint64_t gen;
    int spins = 0;
    while ((gen = atomic_load_explicit(&p->generation, memory_order_acquire)) == seen) {
      if (++spins < SPIN_ITERS) {
        spin_wait(spins);
        continue;
      }
      pthread_mutex_lock(&p->mu);
      atomic_fetch_add(&p->sleepers, 1);
      while ((gen = atomic_load(&p->generation)) == seen) pthread_cond_wait(&p->cv, &p->mu);
      atomic_fetch_sub(&p->sleepers, 1);
      pthread_mutex_unlock(&p->mu);
      break;
    }
    seen = gen;
    if (atomic_load(&p->stop)) return NULL;
    run_chunks(p, gen, w->tid);
  }
}

void spr_pool_spin(int spins) {
  spin_wait(spins);
}

size_t spr_pool_bytes(int n_threads) {
  if (n_threads <= 1) return 0;
  return sizeof(struct spr_pool) + (size_t)(n_threads - 1) * sizeof(struct spr_worker);
}

static void wake_all(struct spr_pool *p) {
  if (atomic_load(&p->sleepers) > 0) {
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
  }
}

static void stop_workers(struct spr_pool *p, int n_started) {
  atomic_store(&p->stop, 1);
  atomic_fetch_add(&p->generation, 1);
  pthread_mutex_lock(&p->mu);
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  for (int i = 0; i < n_started; i++) pthread_join(p->workers[i].thread, NULL);
  pthread_cond_destroy(&p->cv);
  pthread_mutex_destroy(&p->mu);
}

enum spr_status spr_pool_create(void *mem, int n_threads, struct spr_pool **out) {
  *out = NULL;
  if (n_threads <= 1) return SPR_STATUS_OK;
  if (mem == NULL || ((uintptr_t)mem & 63) != 0) return SPR_STATUS_INVALID_ARGUMENT;
  struct spr_pool *p = mem;
  memset(p, 0, spr_pool_bytes(n_threads));
  p->n_threads = n_threads;
  if (pthread_mutex_init(&p->mu, NULL) != 0) return SPR_STATUS_THREAD;
  if (pthread_cond_init(&p->cv, NULL) != 0) {
    pthread_mutex_destroy(&p->mu);
    return SPR_STATUS_THREAD;
  }
  atomic_init(&p->generation, 0);
  atomic_init(&p->ticket, 0);
  atomic_init(&p->done, 0);
  atomic_init(&p->sleepers, 0);
  atomic_init(&p->stop, 0);
  for (int i = 0; i < n_threads - 1; i++) {
    p->workers[i].pool = p;
    p->workers[i].tid = i + 1;
    if (pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]) != 0) {
      stop_workers(p, i);
      return SPR_STATUS_THREAD;
    }
  }
  *out = p;
  return SPR_STATUS_OK;
}

void spr_pool_destroy(struct spr_pool *p) {
  if (p != NULL) stop_workers(p, p->n_threads - 1);
}

void spr_pool_run(struct spr_pool *p, size_t n_tasks, spr_task_fn fn, void *ctx) {
  if (n_tasks == 0) return;
  /* One task: only one chunk is non-empty, so waking workers buys nothing. */
  if (p == NULL || n_tasks == 1) {
    fn(ctx, 0, n_tasks, 0);
    return;
  }
  p->fn = fn;
  p->ctx = ctx;
  p->n_tasks = n_tasks;
  const uint64_t gen = atomic_load_explicit(&p->generation, memory_order_relaxed) + 1;
  atomic_store_explicit(&p->done, 0, memory_order_relaxed);
  atomic_store_explicit(&p->ticket, (gen & 0xffffffffu) << 32, memory_order_release);
  atomic_store(&p->generation, gen); /* seq_cst: pairs with the sleepers check */
  wake_all(p);
  run_chunks(p, gen, 0);
  for (int spins = 1; atomic_load_explicit(&p->done, memory_order_acquire) != p->n_threads; spins++) spin_wait(spins);
}

#else /* !SPR_THREADS */

struct spr_pool {
  int unused;
};

size_t spr_pool_bytes(int n_threads) {
  (void)n_threads;
  return 0;
}

void spr_pool_spin(int spins) {
  (void)spins;
}

/* Serial build: every dispatch runs inline on the caller (tid 0). */
enum spr_status spr_pool_create(void *mem, int n_threads, struct spr_pool **out) {
  (void)mem;
  (void)n_threads;
  *out = NULL;
  return SPR_STATUS_OK;
}

void spr_pool_destroy(struct spr_pool *p) {
  (void)p;
}

void spr_pool_run(struct spr_pool *p, size_t n_tasks, spr_task_fn fn, void *ctx) {
  (void)p;
  if (n_tasks) fn(ctx, 0, n_tasks, 0);
}
#endif

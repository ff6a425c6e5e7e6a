/* tools/sparrow/cli_arena.h — the heap arena the CLI gives a session (and the
 * hand-built bench tools, tools/bench/llm_bench.h, so that they measure the
 * same memory). Header-only so that a bench tool stays one cc line. */
#ifndef SPR_TOOLS_SPARROW_CLI_ARENA_H
#define SPR_TOOLS_SPARROW_CLI_ARENA_H

#include <stdbool.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "sparrow/sparrow.h"

/* bytes (0: one alignment unit) of arena, NULL when out of memory; free()
 * releases it. An arena of tens of MB (the sparse FFN's compact copy of the
 * core bundles is most of it) goes in transparent huge pages where the
 * kernel offers them (THP "madvise" mode): decode streams that copy, and
 * 2 MiB pages let the hardware prefetcher run past 4 KiB boundaries. */
static inline void *cli_arena_alloc(size_t bytes) {
  const size_t huge = (size_t)2 << 20;
  const bool big = bytes >= 16 * huge;
  void *p = NULL;
  if (posix_memalign(&p, big ? huge : SPR_ARENA_ALIGN, bytes ? bytes : SPR_ARENA_ALIGN) != 0) return NULL;
#ifdef MADV_HUGEPAGE
  if (big) (void)madvise(p, bytes / huge * huge, MADV_HUGEPAGE); /* advice: whole pages inside */
#endif
  return p;
}

#endif

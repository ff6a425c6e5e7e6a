/* tools/sparrow/read_roof.h — the DRAM read bandwidth the machine gives right
 * now, measured the way a decode reads weights (for `sparrow bench --roof`).
 *
 * A decode is memory bound, and on a shared host the bandwidth it can get moves
 * by up to 2x from minute to minute; a decode rate alone cannot say how close
 * to the limit it is. The roof reads the model file's own mapping (the same
 * page-cache pages as the weights) with the same number of threads, each
 * thread one contiguous part, with no arithmetic beyond an add per word and
 * the decode kernels' software prefetch (12 KiB ahead into L2), and is timed
 * between the decode runs, so both see the same machine. */
#ifndef SPR_TOOLS_READ_ROOF_H
#define SPR_TOOLS_READ_ROOF_H

#include <stddef.h>

struct read_roof;

/* Maps `path` and starts `threads` readers over its first `bytes` (at most the
 * file). NULL (after printing why) when that fails. */
struct read_roof *read_roof_open(const char *path, size_t bytes, int threads);
/* One timed pass: GB/s. */
double read_roof_measure(struct read_roof *r);
void read_roof_close(struct read_roof *r);

#endif

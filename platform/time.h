/* platform/time.h — monotonic time for benchmarks (not used by the runtime core). */
#ifndef SPR_PLATFORM_TIME_H
#define SPR_PLATFORM_TIME_H

#include <stdint.h>

/* Nanoseconds from an arbitrary origin; 0 where no clock exists. */
uint64_t spr_time_ns(void);

#endif

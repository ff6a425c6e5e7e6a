/* platform/time.c */
#include "platform/time.h"

#if !SPR_FIRMWARE
#include <time.h>
uint64_t spr_time_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
#else
uint64_t spr_time_ns(void) { return 0; }
#endif

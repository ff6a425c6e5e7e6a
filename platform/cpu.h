/* platform/cpu.h — CPU feature detection (declared publicly in sparrow/types.h).
 * The detected mask is the library's only global state. */
#ifndef SPR_PLATFORM_CPU_H
#define SPR_PLATFORM_CPU_H

#include <stdint.h>

#include "sparrow/types.h"

/* Number of online CPUs (1 where unknown). */
int spr_cpu_count(void);

#endif

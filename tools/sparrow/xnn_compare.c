/* tools/sparrow/xnn_compare.c — Debian's XNNPACK fully-connected f32 operator,
 * timed on the same data as `bench-op gemm`, so the two are compared in one
 * run (ratios are what matter on a shared, noisy machine). */
#include "tools/sparrow/xnn_compare.h"

#if defined(SPR_HAVE_XNNPACK) && SPR_HAVE_XNNPACK
#include <math.h>
#include <stdlib.h>
#include <xnnpack.h>

#include "platform/time.h"
#include "tools/sparrow/cli.h"

int cli_xnn_gemm(int m, int k, int n, int threads, const float *x, const float *w, const float *b, float *y,
                 int runs, double *median_ms, double *min_ms) {
  if (xnn_initialize(NULL) != xnn_status_success) return cli_fail("xnn_initialize failed");
  pthreadpool_t tp = threads > 1 ? pthreadpool_create((size_t)threads) : NULL;
  xnn_operator_t op = NULL;
  if (xnn_create_fully_connected_nc_f32((size_t)k, (size_t)n, (size_t)k, (size_t)n, w, b, -INFINITY, INFINITY, 0,
                                        &op) != xnn_status_success ||
      xnn_setup_fully_connected_nc_f32(op, (size_t)m, x, y, tp) != xnn_status_success) {
    if (tp) pthreadpool_destroy(tp);
    return cli_fail("XNNPACK cannot run this fully-connected shape");
  }
  for (int i = 0; i < 3; i++) xnn_run_operator(op, tp);
  double *ms = malloc((size_t)runs * sizeof *ms);
  if (ms == NULL) return cli_fail("out of memory");
  for (int i = 0; i < runs; i++) {
    const uint64_t t0 = spr_time_ns();
    xnn_run_operator(op, tp);
    ms[i] = (double)(spr_time_ns() - t0) * 1e-6;
  }
  *median_ms = cli_median(ms, (size_t)runs);
  *min_ms = ms[0];
  free(ms);
  xnn_delete_operator(op);
  if (tp) pthreadpool_destroy(tp);
  return 0;
}
#else
int cli_xnn_gemm(int m, int k, int n, int threads, const float *x, const float *w, const float *b, float *y,
                 int runs, double *median_ms, double *min_ms) {
  (void)m, (void)k, (void)n, (void)threads, (void)x, (void)w, (void)b, (void)y, (void)runs;
  *median_ms = *min_ms = 0;
  return -1; /* not built */
}
#endif

/* tools/sparrow/xnn_compare.h — optional XNNPACK timing for bench-op gemm. */
#ifndef SPR_TOOLS_XNN_COMPARE_H
#define SPR_TOOLS_XNN_COMPARE_H

/* y[m,n] = x[m,k] w[n,k]^T + b with XNNPACK; times `runs` runs. Returns 0,
 * 1 after printing an error, or -1 when this build has no XNNPACK. */
int cli_xnn_gemm(int m, int k, int n, int threads, const float *x, const float *w, const float *b, float *y,
                 int runs, double *median_ms, double *min_ms);

#endif

/* ops/backends/cuda/cuda_impl.h — internals shared by the backend's .cu files
 * (C++, nvcc only). */
#ifndef SPR_OPS_BACKENDS_CUDA_CUDA_IMPL_H
#define SPR_OPS_BACKENDS_CUDA_CUDA_IMPL_H

#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

/* The runtime's internal headers are C without extern "C" blocks. */
extern "C" {
#include "ops/backends/cuda/cuda_backend.h"
#include "ops/op.h"
#include "ops/params.h"
#include "runtime/graph.h"
#include "runtime/planner.h"
#include "runtime/session.h"
}

/* Where a node runs: the device (a stream) or the host emulation; the
 * device scratch (quantized activations), sized by spr_cuda_node_scratch. */
struct spr_cuda_ctx {
  bool emulate;
  cudaStream_t stream;
  uint8_t *scratch;
  size_t scratch_bytes;
};

/* Runs node n; ts are host descriptors (shapes of this run), dptr[i] the
 * device address of tensor i's data. Returns the launch status. */
typedef cudaError_t (*spr_cuda_run_fn)(const spr_cuda_ctx &c, const spr_tensor *ts, void *const *dptr,
                                       const spr_node *n, const spr_run_state &run);

/* One row of the kernel table: op + the dtype that selects the kernel
 * (spr_cuda_key_dtype), -1 for "any". */
struct spr_cuda_kernel {
  uint16_t op;
  int16_t dtype;
  const char *name;
  spr_cuda_run_fn run;
};

/* The dtype a node's kernel is chosen by: the weight type of GEMM / CONV2D,
 * the table type of GET_ROWS, the cache type of KV_STORE and of cached
 * ATTENTION (K cache), else src0's type. */
int spr_cuda_key_dtype(const spr_tensor *ts, const spr_node *n);

/* The table entry for node n, or NULL (no kernel, or a shape the kernel
 * does not take, e.g. head_dim > SPR_CUDA_MAX_HEAD_DIM). */
const spr_cuda_kernel *spr_cuda_kernel_find(const spr_tensor *ts, const spr_node *n);

/* Device scratch bytes node n needs at the shapes in ts. */
size_t spr_cuda_node_scratch(const spr_tensor *ts, const spr_node *n);

/* Largest head_dim the attention kernel takes (a per-thread accumulator). */
#define SPR_CUDA_MAX_HEAD_DIM 256

#endif

/* ops/backends/cuda/cuda_backend.h — the CUDA validation backend (-DSPR_CUDA=ON).
 *
 * It runs the SAME graph a CPU session built (same tensors, same planner
 * offsets) on an NVIDIA GPU, so that a desktop can check, node by node, that
 * the edge build computes what the model computes (`sparrow validate`,
 * docs/cuda.md). It is not a second inference runtime: correctness first,
 * one thread per output element (or per row) everywhere.
 *
 * Memory: spr_cuda_attach makes ONE cudaMalloc of
 *     the session's planned state + activation bytes (same offsets as the
 *     arena; zero-filled at attach)
 *   + the device scratch (quantized activations of the quantized GEMMs)
 *   + the graph's weights (copied once, at attach)
 * and nothing after that (no managed memory), so the static-allocation
 * promise holds on the GPU too. Host staging for the observer is one malloc
 * at attach.
 *
 * Execution: attach installs an executor on the session
 * (spr_session_set_executor): spr_session_run then copies the INPUT tensors
 * to the device, runs every node with the kernel chosen at attach from a
 * table keyed by (op, dtype) (cuda_ops.cu), and copies the OUTPUT tensors
 * back, so spr_llm_eval / vision code work unchanged. With an observer set
 * on the session, every node's output is copied to host staging after the
 * node and the observer sees that copy in info->data.
 *
 * Emulation (tests, SPR_CUDA_EMULATE): the same kernels' per-element code
 * runs on the host in a plain loop over the launch's index space, with host
 * buffers standing in for device memory. This exercises every kernel's
 * arithmetic and the whole attach / executor / offset logic on a machine
 * without a GPU; it says nothing about the launch configuration or the
 * device's math library (the real device tests do).
 *
 * Without a usable device (no driver: cudaErrorInsufficientDriver, or no
 * GPU: cudaErrorNoDevice) spr_cuda_probe and spr_cuda_attach(DEVICE) return
 * SPR_STATUS_UNSUPPORTED with the CUDA error in the message. */
#ifndef SPR_OPS_BACKENDS_CUDA_CUDA_BACKEND_H
#define SPR_OPS_BACKENDS_CUDA_CUDA_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "ops/op.h"
#include "sparrow/sparrow.h"

#ifdef __cplusplus
extern "C" {
#endif

enum spr_cuda_mode {
  SPR_CUDA_DEVICE = 0,  /* the first CUDA device */
  SPR_CUDA_EMULATE = 1, /* host emulation of the kernels (tests; no CUDA call at all) */
};

/* Exit code of tests and of `sparrow validate` when no CUDA device is usable
 * (CTest's SKIP_RETURN_CODE). */
#define SPR_CUDA_EXIT_NO_DEVICE 77

/* OK when a CUDA device is usable; UNSUPPORTED (msg says why: the
 * cudaGetDeviceCount error, or zero devices) otherwise. msg gets the device
 * name on success. */
enum spr_status spr_cuda_probe(char *msg, size_t len);

struct spr_cuda;

/* Binds s to the GPU (see above). Every node must have a kernel: UNSUPPORTED
 * names the first node without one. The session keeps its CPU arena (inputs
 * and outputs are exchanged through it); detach before destroying it. */
enum spr_status spr_cuda_attach(struct spr_session *s, enum spr_cuda_mode mode, struct spr_cuda **out,
                                struct spr_error *err);
/* Removes the executor (the session runs on the CPU again) and frees the
 * device memory. NULL is a no-op. */
void spr_cuda_detach(struct spr_cuda *c);

/* Validation aid (`sparrow validate --isolate`): before running node i, the
 * executor asks fn(user, i, t) for each non-weight source tensor t of the
 * node; a non-NULL answer (ts[t].nbytes bytes of host data) is copied over
 * the device's copy of t, so the node runs on those inputs (the CPU's) and
 * its difference is its own, not propagated from earlier nodes. fn NULL
 * removes the hook. */
typedef const void *(*spr_cuda_source_fn)(void *user, uint32_t node, int32_t tensor);
void spr_cuda_set_source_hook(struct spr_cuda *c, spr_cuda_source_fn fn, void *user);

/* Bytes of the one device allocation, by part. */
struct spr_cuda_info {
  size_t total_bytes, planned_bytes, scratch_bytes, weights_bytes;
  char device[96]; /* "NVIDIA ... (sm_90)", or "host emulation" */
};
void spr_cuda_info(const struct spr_cuda *c, struct spr_cuda_info *out);

/* The kernel the backend uses for a node, or NULL when it has none. */
const char *spr_cuda_kernel_name(const struct spr_tensor *ts, const struct spr_node *n);

/* Tests: runs one node outside a session. ts[] hold host data for every
 * source (weights included) and dst; the sources are copied to temporary
 * device buffers, the node runs, dst (ts[n->dst].nbytes bytes) is copied
 * back. run may be NULL (n_past 0, n_tokens 0). Allocates on every call:
 * never part of an inference path. */
enum spr_status spr_cuda_op_run(struct spr_tensor *ts, int32_t n_tensors, const struct spr_node *n,
                                const struct spr_run_state *run, enum spr_cuda_mode mode, struct spr_error *err);

#ifdef __cplusplus
}
#endif
#endif

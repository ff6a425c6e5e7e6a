/* sparrow/status.h — status codes returned by every fallible call.
 *
 * The list is append-only and grouped by class; each class owns a numeric
 * range so that codes can be added to a class without renumbering others:
 *   0        success
 *   100-199  caller error (bad argument, unsupported configuration)
 *   200-299  bad model (the bytes of a model file are malformed or inconsistent)
 *   300-399  resources (arena too small, out of memory)
 *   400-499  platform (I/O, mmap, threads, CPU features)
 */
#ifndef SPARROW_STATUS_H
#define SPARROW_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

enum spr_status {
  SPR_STATUS_OK = 0,

  /* caller error */
  SPR_STATUS_INVALID_ARGUMENT = 100, /* a NULL pointer, a zero count, a value out of range */
  SPR_STATUS_UNSUPPORTED = 101,      /* valid request this build or model cannot serve */
  SPR_STATUS_NOT_FOUND = 102,        /* a key, tensor or name was looked up and is absent */
  SPR_STATUS_MISALIGNED = 103,       /* a caller buffer is not aligned as documented */
  SPR_STATUS_BAD_INPUT = 104,        /* run-time input (image, prompt, tokens) is unusable */

  /* bad model */
  SPR_STATUS_BAD_MAGIC = 200,       /* not a GGUF file */
  SPR_STATUS_BAD_VERSION = 201,     /* GGUF version other than 3 */
  SPR_STATUS_TRUNCATED = 202,       /* a field or tensor extends past the end of the data */
  SPR_STATUS_BAD_STRING = 203,      /* string length out of range */
  SPR_STATUS_BAD_KV_TYPE = 204,     /* unknown metadata value type, or wrong type for a key */
  SPR_STATUS_BAD_DIMS = 205,        /* n_dims out of range, or a zero/negative dimension */
  SPR_STATUS_BAD_TENSOR_TYPE = 206, /* unknown or unsupported tensor data type */
  SPR_STATUS_BAD_OFFSET = 207,      /* tensor data offset misaligned, overlapping or out of order */
  SPR_STATUS_BAD_ALIGNMENT = 208,   /* general.alignment not a power of two multiple of 8 */
  SPR_STATUS_OVERFLOW = 209,        /* size arithmetic overflows */
  SPR_STATUS_BAD_SHAPE = 210,       /* a tensor's shape disagrees with the metadata */
  SPR_STATUS_MISSING_KEY = 211,     /* a required metadata key is absent */
  SPR_STATUS_MISSING_TENSOR = 212,  /* a required tensor is absent */
  SPR_STATUS_UNSUPPORTED_ARCH = 213,/* general.architecture is not one Sparrow builds */
  SPR_STATUS_BAD_METADATA = 214,    /* a metadata value is out of its valid range */
  SPR_STATUS_DUPLICATE = 215,       /* a key or tensor name appears twice */
  SPR_STATUS_BAD_COUNT = 216,       /* tensor or KV count impossible for the file size */
  SPR_STATUS_NOT_FINITE = 217,      /* NaN or Inf found in weights (opt-in check) */

  /* resources */
  SPR_STATUS_ARENA_TOO_SMALL = 300, /* the arena given is smaller than the plan */
  SPR_STATUS_OUT_OF_MEMORY = 301,   /* the load-time allocator returned NULL */
  SPR_STATUS_CAPACITY = 302,        /* a fixed capacity (context, buffer) is exhausted */

  /* platform */
  SPR_STATUS_IO = 400,          /* open/read/stat failed */
  SPR_STATUS_MMAP = 401,        /* mapping the file failed */
  SPR_STATUS_THREAD = 402,      /* creating a worker thread failed */
  SPR_STATUS_ISA = 403,         /* a forced ISA is not available on this CPU */
};

/* Short stable identifier of a status ("ARENA_TOO_SMALL"); never NULL. */
const char *spr_status_name(enum spr_status s);

/* One-line description of what the class of error means; never NULL. */
const char *spr_status_describe(enum spr_status s);

#ifdef __cplusplus
}
#endif
#endif

// The table through which w4a16._torch_ops (the torch op's C++ kernels, built only where torch
// is) reaches the weights and the gemm of w4a16._ext. Two Python extension modules cannot share
// C++ state by linking (each is loaded on its own, with its own copy of anything static, and two
// thread pools would fight over the cores), so _ext keeps the one registry of weights the op's
// int handles name and hands out this table of C functions in a capsule named
// W4A16_KERNEL_TABLE_CAPSULE (_ext._kernel_table()); _torch_ops checks the name and the version
// when it is imported. Plain C types only: the two modules may be built by different compilers.
#pragma once

#include <stddef.h>
#include <stdint.h>

#define W4A16_KERNEL_TABLE_CAPSULE "w4a16._ext.kernel_table"
#define W4A16_KERNEL_TABLE_VERSION 2

#ifdef __cplusplus
extern "C" {
#endif

typedef struct w4a16_kernel_table {
  uint32_t version;  // W4A16_KERNEL_TABLE_VERSION
  // The weight's N (out features) and K (in features); returns 0 when no weight has `handle`.
  int (*shape)(int64_t handle, int64_t* n, int64_t* k);
  // y [m, n] = x [m, k] @ dequant(W)^T (+ bias), with the options the handle was registered with;
  // x and y contiguous, both bf16 (x_bf16 != 0) or both fp16. With run != NULL the call's parallel
  // parts run through run(run_ctx, parts, part, part_ctx) (w4a16::ParallelRunner: every part once,
  // any threads, any order), as many as the planner chooses up to `threads` (the runner's), or the
  // registered thread count when that is not 0, capped to `threads`; with run == NULL, on w4a16's
  // pool as registered. Returns 0, or nonzero after
  // writing a NUL-terminated message of at most msg_size bytes to msg. The weight cannot be
  // released while the call runs (the registry's lock is held across it).
  int (*linear)(int64_t handle, const void* x, int x_bf16, int64_t m, int64_t k, void* y, int threads,
                void (*run)(void* run_ctx, int parts, void (*part)(void* part_ctx, int index), void* part_ctx),
                void* run_ctx, char* msg, size_t msg_size);
} w4a16_kernel_table;

#ifdef __cplusplus
}
#endif

// The pipelined decoupled strategy: the Ascend 910B's structure on a CPU with real concurrency.
// Vector-role threads dequantize panels of the packed weight into a bounded ring of slots in
// memory; matrix-role threads multiply each slot with the dense micro-kernel. Producers and
// consumers synchronize only through flags in that memory, as the 910B's AIV and AIC do through
// global memory. (Layout of the ring, the flag protocol and why it cannot deadlock: pipelined.cpp.)
#pragma once

#include <cstdint>

#include "cpu/kernels.hpp"
#include "cpu/packed_weight.hpp"

namespace w4a16::cpu {

struct PipelineConfig {
  int vector_threads = 1;  // dequantizing role
  int matrix_threads = 1;  // multiplying role; the work items (tile, K slice) are dealt to them
  int split_k = 1;         // S: each tile's groups cut into S slices (split points on group boundaries;
                           // S > G leaves slices without groups, whose partials are zero)
  int ring_slots = 4;      // slots in the ring (per matrix thread)
  int64_t slot_bytes = 0;  // bytes of one slot (a dense 16-bit panel of whole groups); 0 = 256 KiB. Used
                           // as min(this, the largest slice's panel), raised to one whole group; a
                           // slice larger than a slot is multiplied in sub-panels, summed in K order
  DequantKernel dequant = nullptr;
  DenseKernel dense = nullptr;
  DType dense_dtype = DType::bf16;  // the panel's 16-bit layout (kernels.hpp)
  XFormat x_format = XFormat::f32;  // how `dense` reads x (its DenseEntry::x): x is offset to each panel's first chunk
};

// Bytes of workspace the ring needs for this configuration (the planner reports it): the slots
// and their flags. Not counted: a [matrix_threads][M][64] fp32 scratch for sub-panel products.
// Checks only the fields that size the ring (the kernels may still be unset).
int64_t pipelined_workspace_bytes(const PackedWeight::Impl& w, const PipelineConfig& config);

// Computes the fp32 partial sum of every work item (tile t, slice s) into
// partials[(t * S + s) * x.m * 64 ...] ([x.m][64] each): the split-K layout that the executor
// reduces in slice order. Bitwise deterministic: the partials depend on w, x, S, slot_bytes and the
// kernels only, not on the thread counts, the ring depth or timing. Returns false, having
// run nothing, when the thread pool cannot run vector_threads + matrix_threads parts at once
// (busy with another call, or fewer threads): the caller then runs the per-thread decoupled
// strategy instead. Exceptions from a role are rethrown here after every role has stopped.
bool run_pipelined(const PackedWeight::Impl& w, const Activations& x, const PipelineConfig& config, float* partials);

}  // namespace w4a16::cpu

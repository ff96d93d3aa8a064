// Internal entry points of the CPU driver used by the benchmarks (not part of the public API).
#pragma once

#include "w4a16/w4a16.hpp"

namespace w4a16::cpu {

// The bottleneck study's ablations (see KernelTable::widen / ::stream in kernels.hpp). Their
// outputs are meaningless numbers; only their time is.
enum class Ablation { none, widen_copy, int4_stream };

// gemm() with an ablation: widen_copy runs the decoupled strategy with the widening copy in place
// of the dequantization; int4_stream runs the fused partition with the stream kernel.
void gemm_ablation(const MatrixRef& x, const PackedWeight& w, const MutableMatrixRef& y, const GemmOptions& options,
                   Ablation ablation);

}  // namespace w4a16::cpu

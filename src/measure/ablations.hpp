// The bottleneck study's ablations (`w4a16 bench --study`) as plans the bench builds: a plan of
// the planner with one stage swapped for an ablation entry of the kernel registry (kernels.hpp,
// KernelTable::widen / ::stream). Their outputs are meaningless numbers; only their time is.
#pragma once

#include "common/check.hpp"
#include "w4a16/w4a16.hpp"

namespace w4a16::measure {

enum class Ablation { none, widen_copy, int4_stream };

// widen_copy: the decoupled plan with the widening copy in place of the dequantization (the
// same bytes written, no arithmetic); int4_stream: the fused plan with the stream entry, which
// only reads the packed codes and scales (the floor: the int4 weight read alone).
inline GemmPlan ablation_plan(int64_t m, const PackedWeight& w, DType act, GemmOptions options, Ablation a) {
  if (a == Ablation::widen_copy) options.strategy = Strategy::decoupled;
  if (a == Ablation::int4_stream) options.strategy = Strategy::fused;
  GemmPlan plan = plan_gemm(m, w, act, options);
  if (a == Ablation::none) return plan;
  const std::string role = a == Ablation::widen_copy ? "widen" : "stream";
  for (const auto& k : list_kernels()) {  // the active table's first, then the lower ones'
    if (k.role != role) continue;
    if (a == Ablation::widen_copy) {
      plan.dequant_kernel = k.name;
      plan.kernel = k.name + " + " + plan.dense_kernel;
    } else {
      plan.q4_kernel = plan.kernel = k.name;
      plan.x_format = k.x_format;
    }
    return plan;
  }
  fail(ErrorCode::internal, "no '{}' ablation kernel in the registry", role);
}

}  // namespace w4a16::measure

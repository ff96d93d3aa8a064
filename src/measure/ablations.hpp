// The bottleneck study's ablations (`w4a16 bench --study`) as plans the bench builds: a plan of
// the planner with one stage swapped for an entry of the study kernels (cpu/study_kernels.hpp).
// Their outputs are meaningless numbers; only their time is.
#pragma once

#include <string>

#include "cpu/study_kernels.hpp"
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
  const cpu::StudyKernels& study = cpu::study_kernels(*plan.table);
  if (a == Ablation::widen_copy) {
    plan.dequant = &study.widen;
    plan.kernel = std::string(study.widen.name) + " + " + plan.dense->name;
  } else {
    plan.q4 = &study.stream;
    plan.kernel = study.stream.name;
    plan.x_format = study.stream.x;
  }
  return plan;
}

}  // namespace w4a16::measure

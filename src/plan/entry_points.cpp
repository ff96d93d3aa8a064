// The public gemm and planning entry points: the one way from the API to a kernel.
//
//   gemm(x, w, y, options)  plan (cached per shape: plan_cache.hpp) -> cpu::execute
//   gemm(x, w, y, plan)     cpu::exec_plan(plan) -> cpu::execute
//   plan_gemm / plan_candidates: the planner's plans, which the second form runs as they are.
//
// The planner decides (planner.hpp), the executor does (cpu/executor.hpp); cpu/ never calls back.
#include <algorithm>

#include "common/check.hpp"
#include "cpu/dispatch.hpp"
#include "cpu/executor.hpp"
#include "cpu/reference.hpp"
#include "cpu/study_kernels.hpp"
#include "plan/plan_cache.hpp"
#include "plan/planner.hpp"

namespace w4a16 {

void gemm(const MatrixRef& x, const PackedWeight& w, const MutableMatrixRef& y, const GemmOptions& options) {
  const auto& p = w.impl();
  check_gemm_args(x, p.layout.k, p.layout.n, p.bias, y);
  const auto& kt = cpu::active_kernels();  // one snapshot: set_isa_cap() may run concurrently
  cpu::execute(x, p, y, plan::cached_exec_plan(p, x.rows, x.dtype, options, kt), options.runner);
}

void gemm(const MatrixRef& x, const PackedWeight& w, const MutableMatrixRef& y, const GemmPlan& plan) {
  const auto& p = w.impl();
  check_gemm_args(x, p.layout.k, p.layout.n, p.bias, y);
  require(plan.m == x.rows && plan.k == p.layout.k && plan.n == p.layout.n && plan.act == x.dtype,
          "gemm: the plan is for {}x{}x{} {}, the call is {}x{}x{} {}", plan.m, plan.k, plan.n, to_string(plan.act),
          x.rows, p.layout.k, p.layout.n, to_string(x.dtype));
  cpu::execute(x, p, y, cpu::exec_plan(plan, p, cpu::active_kernels()));
}

void gemm(const MatrixRef& x, const QuantizedWeight& w, const MutableMatrixRef& y, const GemmOptions& options) {
  check_gemm_args(x, w, y);
  gemm(x, pack(w), y, options);
}

GemmPlan plan_gemm(int64_t m, const PackedWeight& w, DType act, const GemmOptions& options) {
  auto plans = plan_candidates(m, w, act, options);
  for (auto& p : plans) {
    if (p.chosen) return std::move(p);
  }
  return std::move(plans.front());
}

std::vector<GemmPlan> plan_candidates(int64_t m, const PackedWeight& w, DType act, const GemmOptions& options) {
  return plan::weight_plans(w.impl(), m, act, options, cpu::active_kernels());
}

std::vector<GemmPlan> plan_candidates(int64_t m, const QuantizedLayout& layout, DType act, const GemmOptions& options,
                                      std::string_view device_name) {
  plan::Problem p;
  p.m = m;
  p.k = layout.k;
  p.n = layout.n;
  p.group_size = std::min(layout.group_size, layout.k);
  p.zero_mode = layout.zero_mode;
  p.act = act;
  p.scale_dtype = layout.scale_dtype;
  if (device_name == "cpu") {
    const auto& kt = cpu::active_kernels();
    return plan::cpu_plans(*plan::cpu_device(), p, plan::cpu_target(p, kt), options);
  }
  return plan::accelerator_plans(plan::device(device_name), p, options);
}

std::vector<std::pair<std::string, std::string>> plan_devices() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& name : plan::device_names()) {
    out.emplace_back(name, name == "cpu" ? plan::cpu_device()->summary : plan::device(name).summary);
  }
  return out;
}

std::vector<KernelInfo> list_kernels() {
  std::vector<KernelInfo> out;
  for (const cpu::KernelTable* t = &cpu::active_kernels(); t; t = t->fallback) {
    for (const auto& e : t->q4) out.push_back({e.name, "fused", std::string(to_string(e.x)), "", e.m_min, e.m_max});
    for (const auto& e : t->dense) {
      out.push_back({e.name, "dense", std::string(to_string(e.x)), std::string(to_string(e.weight)), e.m_min, e.m_max});
    }
    if (t->dequant.name) out.push_back({t->dequant.name, "dequant", "", "", 0, 0});
    const cpu::StudyKernels& study = cpu::study_kernels(*t);
    if (study.isa == t) {
      out.push_back({study.widen.name, "widen", "", "", 0, 0});
      out.push_back({study.stream.name, "stream", std::string(to_string(study.stream.x)), "", 0, 0});
    }
  }
  return out;
}

}  // namespace w4a16

// The plan cache and the public planning entry points (plan_gemm, plan_candidates, list_kernels)
// and the spelling of strategies and partitions.
#include "plan/plan_cache.hpp"

#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "common/check.hpp"
#include "cpu/dispatch.hpp"
#include "plan/devices/cpu.hpp"
#include "plan/planner.hpp"

namespace w4a16 {

std::string_view to_string(Strategy s) {
  switch (s) {
    case Strategy::automatic:
      return "auto";
    case Strategy::fused:
      return "fused";
    case Strategy::decoupled:
      return "decoupled";
    case Strategy::dense:
      return "dense";
    case Strategy::pipelined:
      return "pipelined";
  }
  return "?";
}

std::string_view to_string(Partition p) {
  switch (p) {
    case Partition::automatic:
      return "auto";
    case Partition::data_parallel:
      return "dp";
    case Partition::split_k:
      return "splitk";
  }
  return "?";
}

Strategy parse_strategy(std::string_view name) {
  for (Strategy s : {Strategy::automatic, Strategy::fused, Strategy::decoupled, Strategy::dense, Strategy::pipelined}) {
    if (name == to_string(s)) return s;
  }
  fail(ErrorCode::invalid_argument, "unknown strategy '{}' (expected auto, fused, decoupled, pipelined or dense)",
       name);
}

Partition parse_partition(std::string_view name) {
  for (Partition p : {Partition::automatic, Partition::data_parallel, Partition::split_k}) {
    if (name == to_string(p)) return p;
  }
  fail(ErrorCode::invalid_argument, "unknown partition '{}' (expected auto, dp or splitk)", name);
}

namespace plan {

namespace {

// This CPU's description, read once per process (`w4a16 calibrate`'s cache or the defaults) and
// again after use_cpu_calibration(); and the executor's plans decided with it.
std::mutex g_mutex;
std::shared_ptr<const Device> g_cpu;

Problem problem_of(const PackedWeight::Impl& w, int64_t m, DType act) {
  Problem p;
  p.m = m;
  p.k = w.layout.k;
  p.n = w.layout.n;
  p.group_size = w.layout.group_size;
  p.zero_mode = w.layout.zero_mode;
  p.act = act;
  p.scale_dtype = w.layout.scale_dtype;
  p.quantized = w.quantized;
  return p;
}

// Everything the choice depends on. Two weights of the same shape and layout share plans.
using Key = std::tuple<const cpu::KernelTable*, bool, int64_t, int64_t, int64_t, int64_t, int, int, int, bool, int, int,
                       int, int, int, int64_t>;
constexpr size_t kMaxCachedPlans = 4096;  // prefill lengths vary: bounded, cleared when full
std::map<Key, cpu::ExecPlan> g_plans;

}  // namespace

std::shared_ptr<const Device> cpu_device() {
  std::lock_guard lock(g_mutex);
  if (!g_cpu) g_cpu = std::make_shared<const Device>(devices::this_cpu());
  return g_cpu;
}

void use_cpu_calibration(const std::optional<devices::CpuCalibration>& c) {
  devices::use_calibration(c);
  auto d = std::make_shared<const Device>(devices::this_cpu());
  std::lock_guard lock(g_mutex);
  g_cpu = std::move(d);
  g_plans.clear();
}

std::vector<GemmPlan> weight_plans(const PackedWeight::Impl& w, int64_t m, DType act, const GemmOptions& o,
                                   const cpu::KernelTable& kt) {
  require(m > 0, "plan: M={} must be positive", m);
  require(act == DType::f16 || act == DType::bf16, "plan: activations must be fp16 or bf16, got {}", to_string(act));
  return cpu_plans(*cpu_device(), problem_of(w, m, act), cpu_target(w, kt, act), o);
}

cpu::ExecPlan cached_exec_plan(const PackedWeight::Impl& w, int64_t m, DType act, const GemmOptions& o,
                               const cpu::KernelTable& kt) {
  const Key key{&kt,
                cpu::prefer_bf16_dot(),
                m,
                w.layout.k,
                w.layout.n,
                w.kernel_group,
                int(w.layout.zero_mode),
                int(w.layout.scale_dtype),
                int(act),
                w.quantized,
                int(o.strategy),
                int(o.partition),
                o.split_k,
                o.threads,
                o.vector_threads,
                o.decoupled_panel_bytes};
  {
    std::lock_guard lock(g_mutex);
    if (auto it = g_plans.find(key); it != g_plans.end()) return it->second;
  }
  const auto plans = weight_plans(w, m, act, o, kt);
  const GemmPlan* chosen = &plans.front();
  for (const auto& p : plans) {
    if (p.chosen) {
      chosen = &p;
      break;
    }
  }
  const cpu::ExecPlan e = cpu::resolve(*chosen, w, kt, o.decoupled_panel_bytes);
  std::lock_guard lock(g_mutex);
  if (g_plans.size() >= kMaxCachedPlans) g_plans.clear();
  g_plans.emplace(key, e);
  return e;
}

}  // namespace plan

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
  require(m > 0 && layout.k > 0 && layout.n > 0, "plan: M, K and N must be positive, got {}x{}x{}", m, layout.k,
          layout.n);
  require(layout.group_size > 0, "plan: the group size must be positive, got {}", layout.group_size);
  require(act == DType::f16 || act == DType::bf16, "plan: activations must be fp16 or bf16, got {}", to_string(act));
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
  const auto range = [](int64_t lo, int64_t hi) { return std::pair{lo, hi}; };
  for (const cpu::KernelTable* t = &cpu::active_kernels(); t; t = cpu::lower_table(*t)) {
    for (const auto& e : t->q4) {
      const auto [lo, hi] = range(e.m_min, e.m_max);
      out.push_back({e.name, "fused", e.x == cpu::XFormat::bf16 ? "bf16" : "fp32", "", lo, hi});
    }
    for (const auto& e : t->dense) {
      out.push_back({e.name, "dense", e.x == cpu::XFormat::bf16 ? "bf16" : "fp32", std::string(to_string(e.weight)),
                     e.m_min, e.m_max});
    }
    if (t->dequant.name) out.push_back({t->dequant.name, "dequant", "", "", 0, 0});
    if (t->widen.name) out.push_back({t->widen.name, "widen", "", "", 0, 0});
    if (t->stream.name) out.push_back({t->stream.name, "stream", "fp32", "", 0, 0});
  }
  return out;
}

}  // namespace w4a16

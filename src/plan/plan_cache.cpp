// The plan cache: this CPU's description and the executor's plans chosen with it.
#include "plan/plan_cache.hpp"

#include <pthread.h>

#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "common/check.hpp"
#include "cpu/dispatch.hpp"
#include "plan/devices/cpu.hpp"
#include "plan/planner.hpp"

namespace w4a16::plan {

namespace {

// This CPU's description, read once per process (`w4a16 calibrate`'s cache or the defaults) and
// again after use_cpu_calibration(); and the executor's plans decided with it.
std::mutex g_mutex;
std::shared_ptr<const Device> g_cpu;
// fork(): a child has only the forking thread; had another thread held g_mutex at that moment,
// the child's first gemm would wait for it forever. Held across the fork, as the thread pool and
// the thread scratch registry hold theirs. (No other lock is taken while g_mutex is held, so the
// handlers cannot deadlock with one another.)
[[maybe_unused]] const int g_fork_handlers =
    pthread_atfork([] { g_mutex.lock(); }, [] { g_mutex.unlock(); }, [] { g_mutex.unlock(); });

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
using Key = std::tuple<const cpu::KernelTable*, bool, bool, int64_t, int64_t, int64_t, int64_t, int, int, int, bool,
                       int, int, int, int, int, int64_t, int>;
constexpr size_t kMaxCachedPlans = 4096;  // prefill lengths vary: bounded, cleared when full
std::map<Key, cpu::ExecPlan> g_plans;

}  // namespace

std::shared_ptr<const Device> cpu_device() {
  {
    std::lock_guard lock(g_mutex);
    if (g_cpu) return g_cpu;
  }
  auto described = std::make_shared<const Device>(devices::this_cpu());  // takes its own lock: not under g_mutex
  std::lock_guard lock(g_mutex);
  if (!g_cpu) g_cpu = std::move(described);
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
  return cpu_plans(*cpu_device(), problem_of(w, m, act), cpu_target(w, kt, act), o);
}

cpu::ExecPlan cached_exec_plan(const PackedWeight::Impl& w, int64_t m, DType act, const GemmOptions& o,
                               const cpu::KernelTable& kt) {
  const Key key{&kt,
                cpu::prefer_bf16_dot(),
                worker_spin_us() == 0 && o.runner.run == nullptr,  // the pool's workers wake (planner.cpp)
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
                o.decoupled_panel_bytes,
                o.runner.threads};
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
  const cpu::ExecPlan e = cpu::exec_plan(*chosen, w, kt);
  std::lock_guard lock(g_mutex);
  if (g_plans.size() >= kMaxCachedPlans) g_plans.clear();
  g_plans.emplace(key, e);
  return e;
}

}  // namespace w4a16::plan

#include "measure/incore.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>

#include "common/check.hpp"
#include "cpu/dispatch.hpp"
#include "measure/random_bits.hpp"
#include "measure/reference_sample.hpp"
#include "plan/cost_model.hpp"
#include "plan/devices/cpu/calibration_file.hpp"
#include "plan/planner.hpp"

namespace w4a16::measure {

namespace {

using Clock = std::chrono::steady_clock;

constexpr int64_t kK = 1024, kColumnsPerThread = 512;

// The same machine with every weight read served by L2 (a hot call's weight never leaves it).
plan::Device hot_device(const plan::Device& base) {
  plan::Device d = base;
  d.incore_scale.clear();
  for (auto& [t, bw] : d.read_bw) bw = d.local_bw * t;
  d.core_read_bw = d.vector_core_read_bw = d.local_bw;
  return d;
}

// The scale s on the in-core terms at which the model predicts `measured` for this candidate:
// the prediction grows with s, so bisection (in log s) finds it.
double solve_scale(plan::Device d, const plan::Problem& p, const plan::Candidate& c, const std::string& strategy,
                   double measured) {
  const auto predicted = [&](double s) {
    d.incore_scale[strategy] = {{{c.threads, p.m}, s}};
    return plan::predict(d, p, c).seconds;
  };
  // The interval the calibration file's reader accepts: whatever is solved here is read back.
  double lo = plan::devices::kInCoreScaleRange.lo, hi = plan::devices::kInCoreScaleRange.hi;
  if (predicted(lo) >= measured) return lo;
  if (predicted(hi) <= measured) return hi;
  for (int i = 0; i < 60; ++i) {
    const double mid = std::sqrt(lo * hi);
    (predicted(mid) < measured ? lo : hi) = mid;
  }
  return std::sqrt(lo * hi);
}

// The median of repeated calls, after warm-up calls whose output (poisoned before) is first
// checked against the reference: nothing is timed that computes the wrong numbers.
double median_call_s(const MatrixRef& x, const PackedWeight& w, const MutableMatrixRef& y, const GemmPlan& plan,
                     const ReferenceSample& reference) {
  const size_t elements = size_t(y.rows * y.cols);
  std::fill_n(static_cast<uint16_t*>(y.data), elements, uint16_t(0x7FFF));  // NaN in fp16 and bf16
  gemm(x, w, y, plan);
  const std::string error = reference.mismatch({y.data, y.dtype, y.rows, y.cols});
  if (!error.empty())
    fail(ErrorCode::internal, "calibrate: {} plan ({}): {}", to_string(plan.strategy), plan.kernel, error);
  for (int i = 0; i < 2; ++i) gemm(x, w, y, plan);  // workspaces sized, the weight (and its 16-bit copy) in cache
  std::vector<double> times;
  const auto start = Clock::now();
  while (times.size() < 10 || (times.size() < 2000 && Clock::now() - start < std::chrono::milliseconds(40))) {
    const auto t0 = Clock::now();
    gemm(x, w, y, plan);
    times.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  return times[times.size() / 2];
}

}  // namespace

std::vector<InCoreSample> measure_incore(const plan::Device& base, const std::vector<int>& thread_counts, DType act) {
  const plan::Device hot = hot_device(base);
  std::vector<InCoreSample> out;
  for (const int threads : thread_counts) {
    const int64_t n = kColumnsPerThread * threads;
    const auto bits = random_bits(act, n * kK, 0.02f, uint64_t(n));
    const QuantizedWeight q = quantize({bits.data(), act, n, kK}, {128, ZeroMode::sym, act});
    const PackedWeight w = pack(q);
    plan::Problem p;
    p.k = kK;
    p.n = n;
    p.group_size = 128;
    p.zero_mode = ZeroMode::sym;
    p.act = act;
    p.scale_dtype = act;
    for (const int64_t m : kInCoreMs) {
      p.m = m;
      const auto x_bits = random_bits(act, m * kK, 1.0f, uint64_t(m * 31 + threads));
      std::vector<uint16_t> y(size_t(m * n));
      const MatrixRef x{x_bits.data(), act, m, kK};
      const MutableMatrixRef yr{y.data(), act, m, n};
      const ReferenceSample reference(x, q);
      for (const Strategy s : {Strategy::fused, Strategy::dense, Strategy::decoupled, Strategy::pipelined}) {
        if (s == Strategy::pipelined && threads < 2) continue;
        GemmOptions o;
        o.strategy = s;
        o.partition = Partition::data_parallel;
        o.threads = threads;
        const auto plans = plan::cpu_plans(hot, p, plan::cpu_target(w.impl(), cpu::active_kernels(), act), o);
        // On a tile table the strategy is listed on both units (planner.cpp): each unit's best plan
        // is timed, for its own scale (plan::incore_key).
        for (const bool tiles : {false, true}) {
          const GemmPlan* best = nullptr;
          for (const GemmPlan& g : plans) {
            if (plan::candidate_of(g, hot).tiles == tiles && (!best || g.predicted_s < best->predicted_s)) best = &g;
          }
          if (!best) continue;
          const plan::Candidate c = plan::candidate_of(*best, hot);
          InCoreSample r;
          r.strategy = plan::incore_key(c);
          r.threads = threads;
          r.m = m;
          r.kernel = best->kernel;
          r.measured_s = median_call_s(x, w, yr, *best, reference);
          r.model_s = plan::predict(hot, p, c).seconds;
          r.scale = solve_scale(hot, p, c, r.strategy, r.measured_s);
          out.push_back(r);
        }
      }
    }
  }
  return out;
}

plan::InCoreScales incore_scales(const std::vector<InCoreSample>& samples) {
  plan::InCoreScales out;
  for (const auto& r : samples) out[r.strategy][{r.threads, r.m}] = r.scale;
  return out;
}

}  // namespace w4a16::measure

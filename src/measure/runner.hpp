// The measurement engine of `w4a16 bench`: rotated weight copies, warm-up, verification against
// the fp64 reference before timing, medians and spreads.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "measure/suites.hpp"
#include "w4a16/w4a16.hpp"

namespace w4a16::measure {

struct BenchConfig {
  int threads = 0;  // 0 = all this process may use
  int64_t group_size = 128;
  ZeroMode zero = ZeroMode::sym;
  DType act = DType::bf16;
  double min_time_s = 0.1;  // per variant, after warm-up
  int min_reps = 5, max_reps = 300;
  int64_t rotation_bytes = 0;       // weights cycled over at least this many bytes (4x L3)
  bool study = false;               // add the ablations and more split factors
  double read_gbps[3] = {0, 0, 0};  // streaming read with 1 and 2 (index) threads; [0] unused
};

struct VariantResult {
  std::string name;
  double median_ms = 0, p10_ms = 0, p90_ms = 0;
  int64_t weight_bytes = 0;
  double gbps = 0, pct_bw = 0, gflops = 0;
  double roofline_ms = 0;  // max(weight_bytes / read bandwidth, 2 M K N / compute peak), for `threads`
  double vs_roofline = 0;  // median_ms / roofline_ms (1 = on the roofline); 0 when no roofline is known
  std::string plan;
  bool verified = false;
  int reps = 0;  // timed calls
  int split_k = 0;
  int threads = 0;
};

struct ShapeResult {
  LayerShape layer;
  int64_t m = 0;
  std::vector<VariantResult> variants;
  const VariantResult* find(std::string_view name) const;
};

// One layer shape (K, N): random bf16 weights quantized once, packed into enough copies that
// cycling through them streams every call's weight from DRAM.
class ShapeBench {
 public:
  ShapeBench(int64_t k, int64_t n, const BenchConfig& config);
  ~ShapeBench();
  // Times every variant at this M; `progress(variant)` is called before each.
  ShapeResult run(const LayerShape& layer, int64_t m, const std::function<void(const std::string&)>& progress);
  int copies() const;

  // plan_candidates() for M rows on this weight (the same layout as every rotated copy).
  std::vector<GemmPlan> candidates(int64_t m, const GemmOptions& options) const;
  // Times given plans (made for this weight's shape, all for the same M) as run() times its
  // variants: each checked against the reference first (one warm-up call, on every copy only for
  // the dense baseline, which makes its 16-bit copies then), weights rotated, at least min_reps calls
  // and min_time_s seconds per plan. interleaved: one call of each plan in turn per round, so that
  // a drift of the machine (another process, the clock) hits every plan alike; otherwise one plan
  // after the other. The results are named by `names` (one per plan).
  std::vector<VariantResult> time_plans(const std::vector<GemmPlan>& plans, const std::vector<std::string>& names,
                                        bool interleaved, const std::function<void(const std::string&)>& progress);

 private:
  struct State;
  struct Inputs;
  Inputs inputs(int64_t m) const;
  bool warm_up_and_verify(const GemmPlan& plan, const std::string& name, bool verify, bool every_copy, Inputs& in);
  double timed_call(const GemmPlan& plan, Inputs& in);
  VariantResult summarize(const std::string& name, const GemmPlan& plan, bool verified,
                          const std::vector<double>& times) const;
  std::unique_ptr<State> state_;
};

// The variant names one run measures (in order), for progress bars.
std::vector<std::string> variant_names(const BenchConfig& config);

}  // namespace w4a16::measure

// Micro-benchmarks of the CPU GEMM kernel families: fused int4, decoupled int4 (dequantize a
// panel, then the dense kernel), and the dense 16-bit baseline, at the Llama-3-8B MLP shape
// (N = 14336, K = 4096, g = 128, sym) plus a small-N split-K shape.
//
//   w4a16_bench_kernels [--w4a16_read_bw=GBPS_1T,GBPS_2T] [google benchmark flags]
//
// What every benchmark does, in order (see bench/README.md for the counters):
//   1. Weights: random non-zero bf16 [N, K] (one per shape), quantized once (RTN, sym, scales in
//      the activation dtype) and packed into as many independent copies as it takes to exceed
//      4x the L3 (measure::WeightRotation, the same rotation as `w4a16 bench`); the dense
//      baseline packs the dequantized values in 16 bits (a baseline of the same quality).
//   2. Verification: one gemm() on copy 0 (also the warm-up that sizes the workspaces), checked
//      on a sample of the output against the fp64 reference (measure::ReferenceSample, as in
//      `w4a16 bench`). A mismatch skips the benchmark with the error.
//   3. Timing: one gemm() per iteration, cycling through the copies so that every call streams
//      its weight from DRAM; the "hot" variants use one copy, which stays cache-resident.
//
// Limitations: the machine has 2 cores, so thread counts stop at 2; the read bandwidth is
// measured once at start-up and other processes running at the same time lower both it and
// the kernel numbers (Google Benchmark prints the load average in its context).
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "bench_common.hpp"
#include "measure/reference_sample.hpp"
#include "measure/weight_rotation.hpp"

namespace w4a16::bench {
namespace {

// The denominator of bw_pct. At start-up, every read variant over 1 GiB, best pass, by thread
// count (index 0 unused). Then, right after each benchmark's timing loop, a probe: the start-up
// winner over a smaller buffer (8x L3), best of 3 passes. bw_pct divides by the larger of the
// two, so a disturbed measurement never flatters a kernel. Why the probe: on this 2-core machine
// another process on the second core halves the two-thread read (33 instead of ~55 GB/s
// measured), and a start-up number taken in such a moment made later, undisturbed kernels read
// "155 %".
double g_read_gbps[3] = {0, 0, 0};
ReadKernel g_read_kernel[3] = {nullptr, nullptr, nullptr};
std::unique_ptr<HugeBuffer> g_probe_buffer;  // nullptr: no probes (--w4a16_read_bw given)

// Seconds per call of the dense baseline, by (act dtype, M, threads): the "vs_dense" column.
std::map<std::tuple<DType, int64_t, int>, double> g_dense_seconds;

// ---------------------------------------------------------------------------------------------
// Weights, activations and their caches (built on first use, kept for the whole run)
// ---------------------------------------------------------------------------------------------

// [M, K] random activations in dtype.
const std::vector<uint16_t>& activations(int64_t m, int64_t k, DType dtype) {
  static std::map<std::tuple<int64_t, int64_t, DType>, std::vector<uint16_t>> cache;
  auto& x = cache[{m, k, dtype}];
  if (x.empty()) x = to_dtype(random_bf16(size_t(m * k), uint64_t(m * 7919 + k)), dtype);
  return x;
}

enum class Kind { q4, dense };

// One weight, quantized once, and its rotated copies: packed int4 (q4), or its dequantized
// values in 16 bits (dense: the baseline of the same quality, checked against the same reference).
struct WeightSet {
  std::optional<QuantizedWeight> quantized;  // the weight every copy holds
  std::optional<measure::WeightRotation> copies;
  double bytes = 0;  // weight bytes one call streams: codes + scales (+ zeros), or 2 B per weight
};

WeightSet& weight_set(Kind kind, int64_t n, int64_t k, int64_t g, DType dtype) {
  static std::map<std::tuple<Kind, int64_t, int64_t, int64_t, DType>, std::unique_ptr<WeightSet>> cache;
  auto& slot = cache[{kind, n, k, g, dtype}];
  if (slot) return *slot;
  auto set = std::make_unique<WeightSet>();
  const std::vector<uint16_t> src = random_bf16(size_t(n * k), uint64_t(n * 1000003 + k));  // [N, K]
  QuantizeOptions q;
  q.group_size = g;
  q.zero_mode = ZeroMode::sym;
  q.scale_dtype = dtype;
  const QuantizedWeight& w = set->quantized.emplace(quantize(MatrixRef{src.data(), DType::bf16, n, k}, q));
  std::function<PackedWeight()> make;
  if (kind == Kind::q4) {
    set->bytes = double(w.codes().size() + w.scales().size() + w.zeros().size());
    make = [&w] { return pack(w); };
  } else {
    set->bytes = double(n * k) * 2;
    const std::vector<float> values = dequantize(w);
    auto dense = std::make_shared<std::vector<uint16_t>>(values.size());  // [N, K] in dtype
    for (size_t i = 0; i < values.size(); ++i)
      (*dense)[i] = dtype == DType::f16 ? f32_to_f16(values[i]) : f32_to_bf16(values[i]);
    make = [dense, dtype, n, k] { return pack_dense(MatrixRef{dense->data(), dtype, n, k}); };
  }
  set->copies.emplace(int64_t(set->bytes), rotation_bytes(), make, 2);
  slot = std::move(set);
  return *slot;
}

// ---------------------------------------------------------------------------------------------
// One benchmark configuration
// ---------------------------------------------------------------------------------------------

struct Config {
  Kind kind = Kind::q4;
  Strategy strategy = Strategy::fused;
  Partition partition = Partition::data_parallel;
  int split_k = 1;
  int threads = 1;
  DType act = DType::bf16;
  int64_t m = 1, n = 14336, k = 4096, g = 128;
  int64_t panel_bytes = 0;  // decoupled only
  bool rotate = true;       // false: one copy, cache-resident ("hot")

  std::string name() const {
    std::string family = kind == Kind::dense ? "dense" : fmt::format("q4_{}", to_string(strategy));
    std::string out = fmt::format("{}/{}/M:{}/N:{}/K:{}", family, to_string(act), m, n, k);
    if (kind == Kind::q4) out += fmt::format("/g:{}", g);
    out += partition == Partition::split_k ? fmt::format("/splitk:{}", split_k) : std::string("/dp");
    if (strategy == Strategy::decoupled) out += fmt::format("/panel:{}MiB", panel_bytes >> 20);
    out += fmt::format("/threads:{}", threads);
    out += rotate ? "/cold" : "/hot";
    return out;
  }
};

void run_gemm(benchmark::State& state, const Config& c) {
  try {
    WeightSet& ws = weight_set(c.kind, c.n, c.k, c.g, c.act);
    const size_t copies = c.rotate ? ws.copies->size() : 1;
    const std::vector<uint16_t>& x = activations(c.m, c.k, c.act);
    std::vector<uint16_t> y(size_t(c.m * c.n), 0x7FC0);  // [M, N], NaN-filled: unwritten outputs fail
    const MatrixRef xr{x.data(), c.act, c.m, c.k};
    const MutableMatrixRef yr{y.data(), c.act, c.m, c.n};

    GemmOptions o;
    o.strategy = c.kind == Kind::dense ? Strategy::dense : c.strategy;
    o.partition = c.partition;
    o.split_k = c.split_k;
    o.threads = c.threads;
    o.decoupled_panel_bytes = c.panel_bytes;
    const GemmPlan plan = plan_gemm(c.m, (*ws.copies)[0], c.act, o);

    gemm(xr, (*ws.copies)[0], yr, o);  // verification, and the warm-up that sizes the workspaces
    const measure::ReferenceSample reference(xr, *ws.quantized);
    if (std::string error = reference.mismatch(MatrixRef{y.data(), c.act, c.m, c.n}); !error.empty()) {
      state.SkipWithError(error.c_str());
      return;
    }

    size_t i = 1 % copies;  // copy 0 was just read: start from one that is not cached
    const auto t0 = std::chrono::steady_clock::now();
    for (auto _ : state) {
      gemm(xr, (*ws.copies)[i], yr, o);
      benchmark::DoNotOptimize(y.data());
      if (++i == copies) i = 0;
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double per_call = seconds / double(state.iterations());

    const int bw_threads = std::clamp(plan.threads, 1, 2);
    double read_now = 0;
    if (g_probe_buffer) read_now = probe_read_bandwidth(*g_probe_buffer, bw_threads, g_read_kernel[bw_threads]);

    using benchmark::Counter;
    state.counters["wbytes"] = Counter(ws.bytes, Counter::kIsIterationInvariantRate);
    state.counters["flops"] =
        Counter(2.0 * double(c.m) * double(c.n) * double(c.k), Counter::kIsIterationInvariantRate);
    state.counters["bw_pct"] = 100.0 * ws.bytes / per_call / 1e9 / std::max(g_read_gbps[bw_threads], read_now);
    if (g_probe_buffer) state.counters["read_GBps"] = read_now;
    const auto key = std::tuple{c.act, c.m, c.threads};
    if (c.kind == Kind::dense && c.rotate && c.n == 14336) g_dense_seconds[key] = per_call;
    if (c.kind == Kind::q4 && c.rotate && g_dense_seconds.count(key) && c.n == 14336) {
      state.counters["vs_dense"] = g_dense_seconds[key] / per_call;
    }
    state.SetLabel(fmt::format("{} {} {} S={} T={}; {}", plan.isa, plan.kernel, to_string(plan.partition), plan.split_k,
                               plan.threads,
                               c.rotate ? fmt::format("rotated {}x{:.1f}MB", copies, ws.bytes / 1e6)
                                        : fmt::format("one copy {:.2f}MB", ws.bytes / 1e6)));
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

bool g_min_time_given = false;  // --benchmark_min_time on the command line wins over ours

void register_config(const Config& c) {
  auto* b = benchmark::RegisterBenchmark(c.name().c_str(), [c](benchmark::State& s) { run_gemm(s, c); })
                ->UseRealTime()
                ->Unit(c.n * c.k > (int64_t(1) << 24) ? benchmark::kMillisecond : benchmark::kMicrosecond);
  // Enough calls for a stable mean within the ~3 minute budget: an M = 128 call takes about
  // 0.1 s, an M = 1 call about a millisecond.
  if (!g_min_time_given) b->MinTime(c.m >= 16 ? 0.5 : 0.25);
}

// The default set (README "What runs").
void register_default_set() {
  const std::vector<int64_t> ms_bf16 = {1, 16, 128}, ms_f16 = {1, 128};
  // Dense baseline first: the int4 rows that follow report their speed-up over it (vs_dense).
  for (DType act : {DType::bf16, DType::f16}) {
    for (int64_t m : act == DType::bf16 ? ms_bf16 : ms_f16) {
      for (int t : {1, 2}) {
        Config c;
        c.kind = Kind::dense;
        c.strategy = Strategy::dense;
        c.act = act;
        c.m = m;
        c.threads = t;
        register_config(c);
      }
    }
  }
  for (DType act : {DType::bf16, DType::f16}) {
    for (int64_t m : act == DType::bf16 ? ms_bf16 : ms_f16) {
      for (int t : {1, 2}) {
        Config c;
        c.act = act;
        c.m = m;
        c.threads = t;
        register_config(c);
      }
    }
  }
  // Decoupled: the panel of dequantized 16-bit weights sized for L2, for the LLC, and beyond it
  // (the whole dequantized weight goes through DRAM, as in the paper's pipeline).
  for (int64_t panel : {int64_t(1) << 20, int64_t(16) << 20, int64_t(256) << 20}) {
    for (int64_t m : ms_bf16) {
      for (int t : {1, 2}) {
        Config c;
        c.strategy = Strategy::decoupled;
        c.panel_bytes = panel;
        c.m = m;
        c.threads = t;
        register_config(c);
      }
    }
  }
  // Split-K vs data-parallel where there is one column tile (N = 64) and a long K: cold (rotated)
  // and cache-resident (one copy).
  for (bool rotate : {true, false}) {
    for (int t : {1, 2}) {
      for (int s : {1, 2}) {
        Config c;
        c.n = 64;
        c.k = 16384;
        c.m = 1;
        c.threads = t;
        c.partition = s == 1 ? Partition::data_parallel : Partition::split_k;
        c.split_k = s;
        c.rotate = rotate;
        register_config(c);
      }
    }
  }
  // The reference for split-K: the 2-thread/1-thread speed-up of data-parallel where there are
  // enough tiles (16 of them), with a weight of the same bytes (0.5 MB), cold and hot.
  for (bool rotate : {true, false}) {
    for (int t : {1, 2}) {
      Config c;
      c.n = 1024;
      c.k = 1024;
      c.m = 1;
      c.threads = t;
      c.partition = Partition::data_parallel;
      c.rotate = rotate;
      register_config(c);
    }
  }
}

// --w4a16_read_bw=A,B: use these GB/s for 1 and 2 threads instead of measuring (saves ~5 s and
// the per-benchmark probes).
bool take_read_bw_flag(int& argc, char** argv) {
  const std::string prefix = "--w4a16_read_bw=";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind(prefix, 0) != 0) continue;
    const std::string value = arg.substr(prefix.size());
    const size_t comma = value.find(',');
    g_read_gbps[1] = std::stod(value.substr(0, comma));
    g_read_gbps[2] = comma == std::string::npos ? g_read_gbps[1] : std::stod(value.substr(comma + 1));
    for (int j = i; j + 1 < argc; ++j) argv[j] = argv[j + 1];
    --argc;
    return true;
  }
  return false;
}

}  // namespace
}  // namespace w4a16::bench

int main(int argc, char** argv) {
  using namespace w4a16::bench;
  const bool given_bw = take_read_bw_flag(argc, argv);
  for (int i = 1; i < argc; ++i) g_min_time_given |= std::string(argv[i]).rfind("--benchmark_min_time", 0) == 0;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

  benchmark::AddCustomContext("w4a16_cpu", w4a16::host::cpu_name());
  benchmark::AddCustomContext("w4a16_isa", std::string(w4a16::active_isa()));
  if (given_bw) {
    for (int t : {1, 2}) {
      benchmark::AddCustomContext(fmt::format("read_bw_{}t", t), fmt::format("{:.2f} GB/s (given)", g_read_gbps[t]));
    }
  } else {
    {
      const HugeBuffer buf(read_buffer_bytes());
      for (int t : {1, 2}) {
        const ReadBandwidth bw = measure_read_bandwidth(buf, t);
        g_read_gbps[t] = bw.gbps;
        g_read_kernel[t] = bw.kernel;
        benchmark::AddCustomContext(fmt::format("read_bw_{}t", t), fmt::format("{:.2f} GB/s (best pass; {}; {} MiB)",
                                                                               bw.gbps, bw.variant, bw.bytes >> 20));
      }
    }
    g_probe_buffer = std::make_unique<HugeBuffer>(size_t(8 * w4a16::host::l3_bytes()));
    benchmark::AddCustomContext("read_probe", fmt::format("after each benchmark, {} MiB, best of 3 passes "
                                                          "(read_GBps); bw_pct uses max(read_bw_Nt, read_GBps)",
                                                          g_probe_buffer->size() >> 20));
  }
  benchmark::AddCustomContext("rotation", fmt::format("weights cycled over > {} MiB of copies (4x L3 {} MiB)",
                                                      rotation_bytes() >> 20, w4a16::host::l3_bytes() >> 20));
  register_default_set();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

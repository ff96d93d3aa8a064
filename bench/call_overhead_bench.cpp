// What one gemm call costs on top of its kernels at decode (M = 1, one thread), from C++ and C:
//
//   entries   the registry's fused entry over every column tile, nothing else: the kernels' floor
//   execute   cpu::execute with a ready ExecPlan: every stage (activations, tiles, bias, rounding)
//   plan      gemm(x, w, y, plan) with a plan made once by plan_gemm (checks it, then execute)
//   gemm      gemm(x, w, y, {.threads = 1}): the cached plan lookup + execute, the usual call
//   c         w4a16_gemm_ex(..., {.threads = 1}) on a handle: the C API's checks + gemm
//
// on the shapes of SmolLM2-135M (576x576, 1536x576) and a Llama-3-8B-sized 4096x4096, bf16 x and
// y, g = 128 sym bf16 scales. Outputs of every variant are compared bitwise before timing. The
// weights stay in cache on purpose: the subject is the per-call overhead (bench/kernels_bench.cpp
// and `w4a16 bench` measure bandwidth). Each round times every variant in turn (interleaved, so a
// noisy neighbour hits all alike); the table gives the median over rounds of the time per call.
//
//   w4a16_bench_call_overhead [rounds]    (default 15)
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "common/aligned_buffer.hpp"
#include "cpu/cpu_features.hpp"
#include "cpu/dispatch.hpp"
#include "cpu/executor.hpp"
#include "cpu/packed_weight.hpp"
#include "w4a16/w4a16.h"
#include "w4a16/w4a16.hpp"

namespace w4a16::cpu {
namespace {

struct Shape {
  int64_t n, k;
};
constexpr std::array kShapes{Shape{576, 576}, Shape{1536, 576}, Shape{4096, 4096}};
constexpr int kVariants = 5;
constexpr std::array<const char*, kVariants> kNames{"entries", "execute", "plan", "gemm", "c"};

// Microseconds per call over calls that together take about 20 ms.
double us_per_call(auto&& call) {
  int calls = 0;
  const auto t0 = std::chrono::steady_clock::now();
  double elapsed = 0;
  do {
    for (int i = 0; i < 16; ++i) call();
    calls += 16;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  } while (elapsed < 0.02);
  return elapsed / calls * 1e6;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void require_or_exit(bool ok, const std::string& what) {
  if (ok) return;
  fmt::print(stderr, "w4a16_bench_call_overhead: {}\n", what);
  std::exit(1);
}

void run_shape(const Shape& s, int rounds, std::mt19937& rng) {
  std::normal_distribution<float> normal;
  std::vector<float> w(size_t(s.n * s.k));
  for (auto& v : w) v = normal(rng);
  const QuantizeOptions qo{.group_size = 128, .zero_mode = ZeroMode::sym, .scale_dtype = DType::bf16};
  const QuantizedWeight q = quantize({w.data(), DType::f32, s.n, s.k}, qo);
  const PackedWeight packed = pack(q);
  const auto& p = packed.impl();
  w4a16_weight* handle = nullptr;
  require_or_exit(
      w4a16_quantize(w.data(), W4A16_DTYPE_F32, s.n, s.k, 128, W4A16_ZERO_SYM, W4A16_DTYPE_BF16, &handle) == W4A16_OK,
      "w4a16_quantize failed");

  std::vector<uint16_t> x(size_t(s.k));
  for (auto& v : x) v = f32_to_bf16(normal(rng));
  std::array<std::vector<uint16_t>, kVariants> y;
  for (auto& out : y) out.assign(size_t(s.n), 0xFFFF);  // NaN: a variant that writes nothing fails the check

  GemmOptions options;
  options.threads = 1;
  const GemmPlan plan = plan_gemm(1, packed, DType::bf16, options);
  const ExecPlan exec = exec_plan(plan, p, active_kernels());
  require_or_exit(exec.strategy == Strategy::fused && exec.split_k == 1,
                  fmt::format("the planner chose {} with split-K {} at M = 1; this bench times the fused path",
                              to_string(plan.strategy), plan.split_k));
  const MatrixRef xr{x.data(), DType::bf16, 1, s.k};
  const auto yr = [&](int v) { return MutableMatrixRef{y[size_t(v)].data(), DType::bf16, 1, s.n}; };
  AlignedBuffer<float> tile_out{size_t(kTileN)};
  // The entries read x as the executor prepares it: padded into K' and widened to fp32 where the
  // entry wants; done once here, outside the floor.
  const bool x_bf16 = exec.x_format == XFormat::bf16;
  AlignedBuffer<float> x_f32(size_t(p.k_padded));
  AlignedBuffer<uint16_t> x_b16(size_t(p.k_padded));
  std::fill(x_f32.data(), x_f32.data() + p.k_padded, 0.0f);
  std::fill(x_b16.data(), x_b16.data() + p.k_padded, uint16_t{0});
  for (int64_t i = 0; i < s.k; ++i) {
    x_f32[size_t(p.padded_k(i))] = bf16_to_f32(x[size_t(i)]);
    x_b16[size_t(p.padded_k(i))] = x[size_t(i)];
  }
  const Activations act{x_bf16 ? static_cast<const void*>(x_b16.data()) : x_f32.data(), p.k_padded, nullptr, 1};
  const w4a16_gemm_options c_options{W4A16_STRATEGY_AUTO, W4A16_PARTITION_AUTO, 0, 1};

  const std::array<std::function<void()>, kVariants> calls{
      [&] {
        for (int64_t t = 0; t < p.tiles; ++t) exec.q4(p.tile(t), act, 0, p.geom.groups, tile_out.data());
      },
      [&] { execute(xr, p, yr(1), exec); },
      [&] { gemm(xr, packed, yr(2), plan); },
      [&] { gemm(xr, packed, yr(3), options); },
      [&] {
        w4a16_gemm_ex(x.data(), W4A16_DTYPE_BF16, 1, s.k, handle, y[4].data(), W4A16_DTYPE_BF16, s.n, &c_options);
      },
  };
  for (const auto& call : calls) call();
  for (int v = 2; v < kVariants; ++v) {
    require_or_exit(std::memcmp(y[1].data(), y[size_t(v)].data(), size_t(s.n) * 2) == 0,
                    fmt::format("{} differs from execute for N={} K={}", kNames[size_t(v)], s.n, s.k));
  }
  std::array<std::vector<double>, kVariants> samples;
  for (int r = 0; r < rounds; ++r) {
    for (int v = 0; v < kVariants; ++v) samples[size_t(v)].push_back(us_per_call(calls[size_t(v)]));
  }
  std::array<double, kVariants> med{};
  for (int v = 0; v < kVariants; ++v) med[size_t(v)] = median(samples[size_t(v)]);
  fmt::print("| {} x {} |", s.n, s.k);
  for (double m : med) fmt::print(" {:.2f} |", m);
  fmt::print(" {:+.2f} | {:+.2f} | {:+.2f} |\n", med[3] - med[1], med[4] - med[1], med[1] - med[0]);
  w4a16_weight_free(handle);
}

int run(int rounds) {
  const std::string isa = active_kernels().name;
  fmt::print("# w4a16_bench_call_overhead: {}, isa {}, 1 thread, M = 1, bf16 x and y, g = 128 sym\n",
             cpu_features().brand, isa);
  fmt::print("# median over {} rounds of ~20 ms of calls each; microseconds per call\n", rounds);
  fmt::print("| N x K |");
  for (const char* name : kNames) fmt::print(" {} |", name);
  fmt::print(" gemm - execute | c - execute | execute - entries |\n|---|");
  for (int v = 0; v < kVariants + 3; ++v) fmt::print("---:|");
  fmt::print("\n");
  std::mt19937 rng(7);
  for (const Shape& s : kShapes) run_shape(s, rounds, rng);
  return 0;
}

}  // namespace
}  // namespace w4a16::cpu

int main(int argc, char** argv) {
  int rounds = 15;
  if (argc > 1) {
    rounds = std::atoi(argv[1]);
    if (rounds < 1 || rounds > 1000) {
      fmt::print(stderr, "w4a16_bench_call_overhead: rounds must be 1..1000, got '{}'\n", argv[1]);
      return 2;
    }
  }
  return w4a16::cpu::run(rounds);
}

// Every fused and dense entry of the kernel registry, timed at every M on one core on a cache-
// resident weight (8 tiles x K = 4096, 1 MiB of codes: L2), in GFLOP/s. It shows each register
// block's compute rate outside its own M range too, which is how the ranges in the tables were
// chosen (docs/kernels.md). No DRAM here: `w4a16 bench` measures the streamed layers.
//
//   w4a16_bench_registry [M,M,...]    (default 1,2,3,4,6,8,12,16,24,32,48,64,128)
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "common/aligned_buffer.hpp"
#include "cpu/cpu_features.hpp"
#include "cpu/dispatch.hpp"
#include "cpu/packed_weight.hpp"

namespace w4a16::cpu {
namespace {

constexpr int64_t kK = 4096, kTiles = 8;

double seconds_per_call(auto&& call) {
  call();
  double best = 1e30;
  for (int rep = 0; rep < 5; ++rep) {
    int calls = 0;
    const auto t0 = std::chrono::steady_clock::now();
    double elapsed = 0;
    do {
      call();
      ++calls;
      elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    } while (elapsed < 0.02);
    best = std::min(best, elapsed / calls);
  }
  return best;
}

int run(const std::vector<int64_t>& ms) {
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  std::vector<float> w(size_t(kTiles * kTileN * kK));
  for (auto& v : w) v = normal(rng);
  const QuantizedWeight q = quantize({w.data(), DType::f32, kTiles * kTileN, kK}, {.scale_dtype = DType::bf16});
  const PackedWeight packed = pack(q);
  const auto& p = packed.impl();
  const int64_t max_m = *std::max_element(ms.begin(), ms.end());
  // x as the executor hands it over: rows one cache line apart where a block would otherwise evict
  // its own x (kernels.hpp x_rows_apart), so the rates below are the ones gemm() gets.
  constexpr int64_t kLdF32 = kK + 16, kLdBf16 = kK + 32;
  AlignedBuffer<float> xf(size_t(max_m * kLdF32));
  AlignedBuffer<uint16_t> xb(size_t(max_m * kLdBf16));
  for (int64_t r = 0; r < max_m; ++r) {
    for (int64_t k = 0; k < kK; ++k) {
      xf[size_t(r * kLdF32 + k)] = bf16_to_f32(f32_to_bf16(normal(rng)));
      xb[size_t(r * kLdBf16 + k)] = f32_to_bf16(xf[size_t(r * kLdF32 + k)]);
    }
  }
  const auto rows_of = [&](XFormat format, int64_t mr, int64_t m) {
    const bool bf16 = format == XFormat::bf16;
    // (timing only: read in place with the stride K, the buffers' rows simply run into each other)
    const int64_t ld = x_rows_apart(mr, m, kK * (bf16 ? 2 : 4)) ? (bf16 ? kLdBf16 : kLdF32) : kK;
    return Activations{bf16 ? static_cast<const void*>(xb.data()) : static_cast<const void*>(xf.data()), ld, nullptr,
                       m};
  };
  AlignedBuffer<float> out(size_t(max_m * kTileN));
  const KernelTable& top = active_kernels();
  fmt::print(
      "w4a16_bench_registry: cpu {} | isa {} | 1 thread | {} tiles x K={} (L2-resident), g=128 sym bf16 scales\n",
      cpu_features().brand, top.name, kTiles, kK);
  fmt::print("GFLOP/s per entry and M (* = the entry the registry picks for that M)\n\n{:<36}", "entry");
  for (int64_t m : ms) fmt::print("{:>7}", m);
  fmt::print("\n");
  for (const KernelTable* t = &top; t; t = t->fallback) {
    if (t == &scalar_kernels() && t != &top) continue;  // the generic twins: only when they are what runs
    for (const Q4Entry& e : t->q4) {
      fmt::print("{:<36}", e.name);
      for (int64_t m : ms) {
        const Activations x = rows_of(e.x, e.mr, m);
        const double s = seconds_per_call([&] {
          for (int64_t tile = 0; tile < kTiles; ++tile) e.fn(p.tile(tile), x, 0, p.geom.groups, out.data());
        });
        const bool picked = find_q4(top, e.x, m) == &e;
        fmt::print("{:>6.0f}{}", 2.0 * double(m) * kK * kTiles * kTileN / s / 1e9, picked ? '*' : ' ');
      }
      fmt::print("\n");
    }
    for (const DenseEntry& e : t->dense) {
      if (e.weight != DType::bf16) continue;
      const uint16_t* dense = p.dense_tile(DType::bf16, 0);
      fmt::print("{:<36}", e.name);
      for (int64_t m : ms) {
        const Activations x = rows_of(e.x, e.mr, m);
        const double s = seconds_per_call([&] {
          for (int64_t tile = 0; tile < kTiles / 4; ++tile) {
            e.fn(dense + tile * p.dense_tile_elems(), x, 0, p.geom.chunks(), out.data());
          }
        });
        const bool picked = find_dense(top, e.weight, e.x, m) == &e;
        fmt::print("{:>6.0f}{}", 2.0 * double(m) * kK * (kTiles / 4) * kTileN / s / 1e9, picked ? '*' : ' ');
      }
      fmt::print("\n");
    }
  }
  return 0;
}

}  // namespace
}  // namespace w4a16::cpu

int main(int argc, char** argv) {
  std::vector<int64_t> ms = {1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128};
  if (argc > 1) {
    ms.clear();
    std::stringstream list(argv[1]);
    for (std::string item; std::getline(list, item, ',');) {
      const long v = std::strtol(item.c_str(), nullptr, 10);
      if (v < 1 || v > 4096) {
        fmt::print(stderr, "w4a16_bench_registry: M values must be 1..4096, got '{}'\n", item);
        return 2;
      }
      ms.push_back(v);
    }
  }
  return w4a16::cpu::run(ms);
}

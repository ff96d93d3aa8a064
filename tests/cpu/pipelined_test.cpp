// The pipelined decoupled strategy (src/cpu/pipelined.hpp) called directly on packed weights, with
// the active table's kernels and with the generic twins: the split-K partials, reduced here in
// slice order, against the fp64 product of x and the dequantized weight; bitwise determinism
// (repeated runs, other ring depths and thread splits); the `false` return when the pool cannot
// run every role at once; exceptions from a role. Also ThreadPool::run_concurrent itself.
// Partials are poisoned with NaN before each call; inputs are random, never zeros. These tests
// carry the ctest label "concurrency" (run again under ThreadSanitizer by scripts/test.sh).
#include "cpu/pipelined.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <iostream>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/aligned_buffer.hpp"
#include "cpu/dispatch.hpp"
#include "cpu/packed_weight.hpp"
#include "cpu/thread_pool.hpp"
#include "w4a16/w4a16.hpp"

namespace w4a16::cpu {
namespace {

constexpr double kU = 0x1p-24;  // unit roundoff of fp32

struct Problem {
  int64_t m = 1, k = 1, n = 1, g = 32;  // g = k: per-channel
  ZeroMode zero = ZeroMode::sym;
  DType scale = DType::bf16;
  std::string name() const {
    return "M" + std::to_string(m) + "_K" + std::to_string(k) + "_N" + std::to_string(n) + "_g" + std::to_string(g) +
           "_" + std::string(to_string(zero)) + "_s" + std::string(to_string(scale));
  }
};

// Odd M, K and N; a ragged last group for every g; per-channel both cut into pieces of 128 by
// pack() (K = 333: three kernel groups, the last 77 long) and in one group (K = 100, so S = 2, 3
// leave slices without groups).
const std::vector<Problem> kProblems = {
    {1, 200, 70, 32, ZeroMode::sym, DType::bf16},           // 200 = 6 * 32 + 8
    {3, 300, 130, 128, ZeroMode::asym, DType::f16},         // 300 = 2 * 128 + 44
    {17, 333, 100, 333, ZeroMode::float_zero, DType::f32},  // per-channel, K > 128
    {3, 100, 64, 100, ZeroMode::asym, DType::bf16},         // per-channel, one group
    {17, 520, 190, 32, ZeroMode::float_zero, DType::bf16},  // 520 = 16 * 32 + 8
    {1, 1000, 129, 128, ZeroMode::sym, DType::f16},         // 1000 = 7 * 128 + 104
};

// A packed weight, x in the kernels' padded layout (both forms), and the fp64 reference.
struct Prepared {
  Problem pr;
  PackedWeight packed;
  int64_t ld = 0;                  // x row stride, wider than K' to catch indexing by K
  AlignedBuffer<float> x_f32;      // [m][ld] bf16-representable values, zeros in padding
  AlignedBuffer<uint16_t> x_bf16;  // [m][ld] the same values as bf16 bits
  std::vector<double> ref;         // [m][n] sum_k x * w, w = dequantize(q) (the format's values)
  std::vector<double> mass;        // [m][n] sum_k |x * w|

  const PackedWeight::Impl& w() const { return packed.impl(); }
  Activations act(XFormat f) const {
    return {f == XFormat::bf16 ? static_cast<const void*>(x_bf16.data()) : x_f32.data(), ld, nullptr, pr.m};
  }
};

Prepared prepare(const Problem& pr, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> src(size_t(pr.n * pr.k));
  for (auto& v : src) v = normal(rng);
  const QuantizedWeight q = quantize({src.data(), DType::f32, pr.n, pr.k},
                                     {.group_size = pr.g, .zero_mode = pr.zero, .scale_dtype = pr.scale});
  const std::vector<float> wd = dequantize(q);  // [n][k]
  Prepared p{pr, pack(q), 0, {}, {}, {}, {}};
  const auto& w = p.w();
  p.ld = w.k_padded + 24;
  p.x_f32.resize(size_t(pr.m * p.ld));  // zero-filled: the padding of K'
  p.x_bf16.resize(size_t(pr.m * p.ld));
  std::vector<float> x(size_t(pr.m * pr.k));  // [m][k] logical
  for (int64_t r = 0; r < pr.m; ++r) {
    for (int64_t k = 0; k < pr.k; ++k) {
      uint16_t bits;
      do {
        bits = f32_to_bf16(normal(rng));
      } while (bf16_to_f32(bits) == 0.0f);
      x[size_t(r * pr.k + k)] = bf16_to_f32(bits);
      p.x_bf16[size_t(r * p.ld + w.padded_k(k))] = bits;
      p.x_f32[size_t(r * p.ld + w.padded_k(k))] = bf16_to_f32(bits);
    }
  }
  p.ref.assign(size_t(pr.m * pr.n), 0.0);
  p.mass.assign(size_t(pr.m * pr.n), 0.0);
  for (int64_t r = 0; r < pr.m; ++r) {
    for (int64_t n = 0; n < pr.n; ++n) {
      double sum = 0, mass = 0;
      for (int64_t k = 0; k < pr.k; ++k) {
        const double t = double(x[size_t(r * pr.k + k)]) * double(wd[size_t(n * pr.k + k)]);
        sum += t;
        mass += std::fabs(t);
      }
      p.ref[size_t(r * pr.n + n)] = sum;
      p.mass[size_t(r * pr.n + n)] = mass;
    }
  }
  return p;
}

// A dequant + dense kernel pair and the panel / x formats they use.
struct Kernels {
  std::string name;
  DequantKernel dequant = nullptr;
  DenseKernel dense = nullptr;
  DType dtype = DType::bf16;
  XFormat x = XFormat::f32;
};

// The active table's dequant with each of its dense entries for M rows (fp16 panel with fp32 x,
// bf16 panel with fp32 and with bf16 x), then the generic twins.
std::vector<Kernels> kernel_pairs(int64_t m) {
  std::vector<Kernels> out;
  const KernelTable& kt = active_kernels();
  const DequantEntry& dq = find_dequant(kt);
  for (auto [dtype, x] : {std::pair{DType::f16, XFormat::f32}, std::pair{DType::bf16, XFormat::f32},
                          std::pair{DType::bf16, XFormat::bf16}}) {
    const DenseEntry* e = find_dense(kt, dtype, x, m);
    if (e != nullptr && e->x == x) out.push_back({std::string(dq.name) + "+" + e->name, dq.fn, e->fn, dtype, x});
  }
  out.push_back({"generic f16", dequant_generic, dense_f16_f32_generic, DType::f16, XFormat::f32});
  out.push_back({"generic bf16", dequant_generic, dense_bf16_f32_generic, DType::bf16, XFormat::f32});
  out.push_back({"generic bf16 x", dequant_generic, dense_bf16_bf16_generic, DType::bf16, XFormat::bf16});
  return out;
}

PipelineConfig make_config(const Kernels& k, int split, int vector_threads = 1, int matrix_threads = 1) {
  PipelineConfig c;
  c.vector_threads = vector_threads;
  c.matrix_threads = matrix_threads;
  c.split_k = split;
  c.dequant = k.dequant;
  c.dense = k.dense;
  c.dense_dtype = k.dtype;
  c.x_format = k.x;
  return c;
}

struct Result {
  bool ran = false;
  AlignedBuffer<float> partials;  // [tiles][S][m][64]
};

Result run(const Prepared& p, const PipelineConfig& c, XFormat x) {
  Result r;
  const size_t count = size_t(p.w().tiles * c.split_k * p.pr.m * kTileN);
  r.partials.resize(count);
  for (size_t i = 0; i < count; ++i) r.partials[i] = NAN;
  r.ran = run_pipelined(p.w(), p.act(x), c, r.partials.data());
  return r;
}

bool bitwise_equal(const Result& a, const Result& b) {
  return a.partials.size() == b.partials.size() &&
         std::memcmp(a.partials.data(), b.partials.data(), a.partials.size() * sizeof(float)) == 0;
}

// The bound. Each partial sums products x * w16 (exact in fp32: x has 8 mantissa bits, w16 at
// most 11), in K' - 1 additions at most, then adds at most one sub-panel per chunk; the reduction
// here adds S - 1 slices. Any order of n fp32 additions errs by at most gamma_n * sum|t|
// (Higham, Accuracy and Stability, Thm 4.4), n = K' + chunks + S. The 16-bit weight w16 is
// w = dequantize(q) rounded twice (the fp32 fma of dequant_generic, then the 16-bit dtype), so
// |w16 - w| <= (u_w + 2u) |w|, u_w = 2^-8 (bf16), 2^-11 (fp16); dequantize's own fp32 rounding
// adds u: the weight term is (u_w + 4u) * sum|x w| with margin.
double bound(const Prepared& p, int split, DType dtype, double mass) {
  const auto& w = p.w();
  const double n = double(w.k_padded + w.geom.chunks() + split);
  const double gamma = n * kU / (1.0 - n * kU);
  const double u_w = dtype == DType::bf16 ? 0x1p-8 : 0x1p-11;
  const double weight = u_w + 4 * kU;
  return gamma * (1 + weight) * mass + weight * mass + 1e-30;
}

// Every partial written (padding columns included), then the slice-order reduction within bound.
void check(const Prepared& p, const Result& r, int split, DType dtype, const std::string& what) {
  ASSERT_TRUE(r.ran) << what;
  const auto& w = p.w();
  const int64_t m = p.pr.m, n_total = p.pr.n;
  for (size_t i = 0; i < r.partials.size(); ++i) {
    ASSERT_TRUE(std::isfinite(r.partials[i])) << what << ": partial element " << i << " not written";
  }
  int bad = 0;
  for (int64_t t = 0; t < w.tiles; ++t) {
    for (int64_t row = 0; row < m; ++row) {
      for (int64_t c = 0; c < kTileN && t * kTileN + c < n_total; ++c) {
        float y = 0.0f;
        for (int s = 0; s < split; ++s) y += r.partials[size_t(((t * split + s) * m + row) * kTileN + c)];
        const int64_t n = t * kTileN + c;
        const double want = p.ref[size_t(row * n_total + n)];
        const double tol = bound(p, split, dtype, p.mass[size_t(row * n_total + n)]);
        if (!(std::fabs(double(y) - want) <= tol) && ++bad <= 3) {
          ADD_FAILURE() << what << ": y[" << row << "," << n << "] = " << y << ", reference " << want << ", bound "
                        << tol;
        }
      }
    }
  }
  EXPECT_EQ(bad, 0) << what;
}

std::string describe(const Prepared& p, const Kernels& k, const PipelineConfig& c) {
  return p.pr.name() + " " + k.name + " S=" + std::to_string(c.split_k) + " " + std::to_string(c.vector_threads) + "+" +
         std::to_string(c.matrix_threads) + " slots=" + std::to_string(c.ring_slots) +
         " slot_bytes=" + std::to_string(c.slot_bytes);
}

// The 1 + 1 split needs two threads at once; a single-CPU machine can only check the refusal.
int max_threads() { return ThreadPool::instance().max_threads(); }
#define SKIP_WITHOUT_THREADS(n) \
  if (max_threads() < (n))      \
  GTEST_SKIP() << "the thread pool has " << max_threads() << " threads; this test needs " << (n) << " running at once"

TEST(Pipelined, MatchesTheReferenceForEveryZeroModeDtypeGroupAndSplit) {
  SKIP_WITHOUT_THREADS(2);
  int checked = 0;
  for (size_t pi = 0; pi < kProblems.size(); ++pi) {
    const Prepared p = prepare(kProblems[pi], 100 + pi);
    for (const Kernels& k : kernel_pairs(p.pr.m)) {
      for (int split : {1, 2, 3}) {
        // slot_bytes 1: one group per slot (sub-panels accumulated in the matrix role); 0: the
        // default, where these slices fit one slot. Ring depth 1 (lock-step) and 3.
        for (auto [slot_bytes, slots] : {std::pair<int64_t, int>{0, 3}, std::pair<int64_t, int>{1, 1}}) {
          PipelineConfig c = make_config(k, split);
          c.slot_bytes = slot_bytes;
          c.ring_slots = slots;
          check(p, run(p, c, k.x), split, k.dtype, describe(p, k, c));
          ++checked;
        }
      }
    }
  }
  EXPECT_GT(checked, 0);
}

TEST(Pipelined, RepeatedRunsAndOtherRingDepthsAreBitwiseEqual) {
  SKIP_WITHOUT_THREADS(2);
  for (size_t pi : {size_t(1), size_t(4)}) {
    const Prepared p = prepare(kProblems[pi], 200 + pi);
    for (const Kernels& k : kernel_pairs(p.pr.m)) {
      for (int64_t slot_bytes : {int64_t(0), int64_t(2048)}) {
        PipelineConfig c = make_config(k, 3);
        c.slot_bytes = slot_bytes;
        const Result first = run(p, c, k.x);
        check(p, first, 3, k.dtype, describe(p, k, c));
        EXPECT_TRUE(bitwise_equal(first, run(p, c, k.x))) << "second run differs: " << describe(p, k, c);
        for (int slots : {1, 2, 7}) {  // the ring depth changes timing only, never the sums
          c.ring_slots = slots;
          EXPECT_TRUE(bitwise_equal(first, run(p, c, k.x))) << "other ring depth differs: " << describe(p, k, c);
        }
      }
    }
  }
}

// When a slice fits one slot, its partial is one dense call on the slice's whole panel: bitwise
// what the per-thread decoupled strategy computes for the same item.
TEST(Pipelined, SliceInOneSlotIsBitwiseTheSerialDequantThenDense) {
  SKIP_WITHOUT_THREADS(2);
  const Prepared p = prepare(kProblems[4], 300);
  const auto& w = p.w();
  for (const Kernels& k : kernel_pairs(p.pr.m)) {
    for (int split : {1, 2, 3}) {
      const PipelineConfig c = make_config(k, split);  // default slot (256 KiB) holds each slice
      const Result got = run(p, c, k.x);
      ASSERT_TRUE(got.ran);
      AlignedBuffer<uint16_t> panel(size_t(w.dense_tile_elems()));
      AlignedBuffer<float> want(size_t(p.pr.m * kTileN));
      for (int64_t t = 0; t < w.tiles; ++t) {
        for (int s = 0; s < split; ++s) {
          const int64_t g0 = w.geom.groups * s / split, g1 = w.geom.groups * (s + 1) / split;
          const int64_t c0 = w.geom.chunk_begin(g0), c1 = w.geom.chunk_end(g1 - 1);
          k.dequant(w.tile(t), g0, g1, k.dtype, panel.data());
          Activations x = p.act(k.x);
          x.data = static_cast<const std::byte*>(x.data) + c0 * kChunkK * (k.x == XFormat::bf16 ? 2 : 4);
          k.dense(panel.data(), x, 0, c1 - c0, want.data());
          ASSERT_EQ(std::memcmp(want.data(), got.partials.data() + (t * split + s) * p.pr.m * kTileN,
                                size_t(p.pr.m * kTileN) * sizeof(float)),
                    0)
              << describe(p, k, c) << " tile " << t << " slice " << s;
        }
      }
    }
  }
}

// More roles than 1 + 1: the same partials, bitwise, as 1 + 1 (the tasks and their sums do not
// depend on the thread counts). Splits the pool cannot run are skipped, not refused silently.
TEST(Pipelined, LargerThreadSplitsAreBitwiseTheOneOnOneResult) {
  SKIP_WITHOUT_THREADS(2);
  const std::vector<std::pair<int, int>> splits = {{2, 1}, {1, 2}, {2, 2}, {3, 2}, {2, 5}};
  int ran = 0;
  std::set<std::string> skipped;
  for (size_t pi : {size_t(2), size_t(4), size_t(5)}) {
    const Prepared p = prepare(kProblems[pi], 400 + pi);
    for (const Kernels& k : kernel_pairs(p.pr.m)) {
      PipelineConfig c = make_config(k, 2);
      c.slot_bytes = 4096;
      c.ring_slots = 2;
      const Result base = run(p, c, k.x);
      check(p, base, 2, k.dtype, describe(p, k, c));
      for (auto [v, mt] : splits) {
        c.vector_threads = v;
        c.matrix_threads = mt;
        if (v + mt > max_threads()) {
          skipped.insert(std::to_string(v) + "+" + std::to_string(mt));
          continue;
        }
        const Result other = run(p, c, k.x);
        ASSERT_TRUE(other.ran) << describe(p, k, c);
        EXPECT_TRUE(bitwise_equal(base, other)) << describe(p, k, c);
        ++ran;
      }
    }
  }
  std::string list;
  for (const std::string& split : skipped) list += " " + split;
  if (ran == 0) {
    GTEST_SKIP() << "the thread pool has " << max_threads() << " threads: splits" << list
                 << " need more (the 1+1 split was checked)";
  }
  if (!skipped.empty()) {
    std::cout << "[  NOTE    ] skipped thread splits" << list << " (pool of " << max_threads() << " threads)\n";
  }
}

TEST(Pipelined, ReturnsFalseWithoutRunningWhenThePoolHasTooFewThreads) {
  const Prepared p = prepare(kProblems[0], 500);
  const Kernels k = kernel_pairs(p.pr.m).front();
  const int threads = max_threads();
  for (auto [v, mt] : {std::pair{threads, 1}, std::pair{1, threads}}) {
    const Result r = run(p, make_config(k, 2, v, mt), k.x);
    EXPECT_FALSE(r.ran) << v << "+" << mt << " roles on a pool of " << threads;
    for (size_t i = 0; i < r.partials.size(); ++i) ASSERT_TRUE(std::isnan(r.partials[i])) << "element " << i;
  }
}

// Another call owns the pool: from a second thread (whose run() holds the pool until released),
// and from inside a part of a pool call (nested).
TEST(Pipelined, ReturnsFalseWithoutRunningWhenThePoolIsBusy) {
  SKIP_WITHOUT_THREADS(2);
  const Prepared p = prepare(kProblems[1], 600);
  const Kernels k = kernel_pairs(p.pr.m).front();
  const PipelineConfig c = make_config(k, 2);
  ThreadPool& pool = ThreadPool::instance();
  std::atomic<bool> entered{false}, release{false};
  auto hold = [&](int part) {
    if (part != 0) return;
    entered.store(true);
    while (!release.load()) std::this_thread::yield();
  };
  std::thread holder([&] { pool.run(2, 2, hold); });
  while (!entered.load()) std::this_thread::yield();
  const Result refused = run(p, c, k.x);
  release.store(true);
  holder.join();
  EXPECT_FALSE(refused.ran);
  for (size_t i = 0; i < refused.partials.size(); ++i) ASSERT_TRUE(std::isnan(refused.partials[i])) << i;

  // Part 0 runs on the thread that owns the call, part 1 on a worker.
  bool nested_ran[2] = {true, true};
  auto nested = [&](int part) { nested_ran[part] = run(p, c, k.x).ran; };
  pool.run(2, 2, nested);
  EXPECT_FALSE(nested_ran[0]) << "a pipelined call inside part 0 of a pool call must be refused";
  EXPECT_FALSE(nested_ran[1]) << "a pipelined call inside part 1 of a pool call must be refused";

  check(p, run(p, c, k.x), 2, k.dtype, "after the refusals");  // the pool is free again
}

// Kernels that throw on their n-th call (function pointers cannot capture: the counters are global).
std::atomic<int> g_dequant_calls{0}, g_dense_calls{0};
int g_throw_at = 0;
void throwing_dequant(const Q4Tile& w, int64_t g0, int64_t g1, DType dtype, void* panel) {
  if (g_dequant_calls.fetch_add(1) + 1 == g_throw_at) throw std::runtime_error("dequant failed");
  dequant_generic(w, g0, g1, dtype, panel);
}
void throwing_dense(const void* tile, const Activations& x, int64_t c0, int64_t c1, float* out) {
  if (g_dense_calls.fetch_add(1) + 1 == g_throw_at) throw std::runtime_error("dense failed");
  dense_bf16_f32_generic(tile, x, c0, c1, out);
}

// A throwing role stops the others (which would otherwise wait forever for its slots) and its
// exception reaches the caller; the pool and the workspace are fine for the next call.
TEST(Pipelined, AnExceptionInARoleStopsEveryRoleAndIsRethrown) {
  SKIP_WITHOUT_THREADS(2);
  const Prepared p = prepare(kProblems[4], 700);
  Kernels k{"throwing", dequant_generic, dense_bf16_f32_generic, DType::bf16, XFormat::f32};
  for (bool in_dequant : {true, false}) {
    for (int at : {1, 3}) {
      for (int slots : {1, 2}) {
        Kernels bad = k;
        if (in_dequant) {
          bad.dequant = throwing_dequant;
        } else {
          bad.dense = throwing_dense;
        }
        g_dequant_calls = 0;
        g_dense_calls = 0;
        g_throw_at = at;
        PipelineConfig c = make_config(bad, 2);
        c.slot_bytes = 1;  // one group per slot: many tasks, so the others are mid-stream
        c.ring_slots = slots;
        const std::string what = std::string(in_dequant ? "dequant" : "dense") + " throws at call " +
                                 std::to_string(at) + ", slots " + std::to_string(slots);
        try {
          (void)run(p, c, k.x);
          ADD_FAILURE() << what << ": no exception";
        } catch (const std::runtime_error& e) {
          EXPECT_EQ(std::string(e.what()), in_dequant ? "dequant failed" : "dense failed") << what;
        }
      }
    }
  }
  g_throw_at = 0;
  PipelineConfig c = make_config(k, 2);
  c.slot_bytes = 1;
  check(p, run(p, c, k.x), 2, k.dtype, "after the exceptions");
}

TEST(Pipelined, RejectsInvalidConfigurations) {
  const Prepared p = prepare(kProblems[0], 800);
  const Kernels k = kernel_pairs(p.pr.m).front();
  AlignedBuffer<float> partials(size_t(p.w().tiles * p.pr.m * kTileN));
  for (int field = 0; field < 5; ++field) {
    PipelineConfig c = make_config(k, 1);
    if (field == 0) c.vector_threads = 0;
    if (field == 1) c.matrix_threads = 0;
    if (field == 2) c.split_k = 0;
    if (field == 3) c.ring_slots = 0;
    if (field == 4) c.dense = nullptr;
    EXPECT_THROW(run_pipelined(p.w(), p.act(k.x), c, partials.data()), Error) << "field " << field;
  }
}

TEST(Pipelined, WorkspaceBytesIsOneRingOfSlotsPerMatrixThread) {
  const Prepared p = prepare(kProblems[5], 900);  // 8 groups of 128: 16 chunks (16 KiB of panel) each
  const Kernels k = kernel_pairs(p.pr.m).front();
  PipelineConfig c = make_config(k, 1, 1, 1);
  c.ring_slots = 4;
  const int64_t one = pipelined_workspace_bytes(p.w(), c);
  // The whole slice (125 chunks, 125 KiB) is below the 256 KiB default: the slot shrinks to it.
  EXPECT_GE(one, 4 * 125 * 1024);
  EXPECT_LT(one, 4 * 126 * 1024);
  c.matrix_threads = 3;
  EXPECT_EQ(pipelined_workspace_bytes(p.w(), c), 3 * one);
  c.slot_bytes = 1;  // raised to one group of 16 chunks
  EXPECT_GE(pipelined_workspace_bytes(p.w(), c), 3 * 4 * 16 * 1024);
  EXPECT_LT(pipelined_workspace_bytes(p.w(), c), 3 * 4 * 17 * 1024);
}

TEST(ThreadPoolConcurrent, EveryPartRunsAtTheSameTimeOnItsOwnThread) {
  ThreadPool& pool = ThreadPool::instance();
  const int parts = pool.max_threads();
  std::atomic<int> arrived{0};
  std::vector<std::thread::id> ids(static_cast<size_t>(parts));
  auto meet = [&](int part) {  // each part waits for all the others: only simultaneous parts finish
    ids[size_t(part)] = std::this_thread::get_id();
    arrived.fetch_add(1);
    while (arrived.load() < parts) std::this_thread::yield();
  };
  ASSERT_TRUE(pool.run_concurrent(parts, meet));
  EXPECT_EQ(ids[0], std::this_thread::get_id()) << "part 0 runs on the calling thread";
  for (int a = 0; a < parts; ++a) {
    for (int b = a + 1; b < parts; ++b) EXPECT_NE(ids[size_t(a)], ids[size_t(b)]) << a << " " << b;
  }
  int calls = 0;
  auto count = [&](int) { ++calls; };
  EXPECT_FALSE(pool.run_concurrent(parts + 1, count));
  EXPECT_FALSE(pool.run_concurrent(0, count));
  EXPECT_EQ(calls, 0);
}

}  // namespace
}  // namespace w4a16::cpu

// The AMX kernels: detection and the Linux tile permission on every CPU; on every AVX512-BF16 CPU
// the kernels' loops on emulated tiles (tests/support/emulated_tiles.hpp) against their generic
// twins and, through the executor, against the reference; on CPUs with AMX the plans on tile
// entries through gemm() and a forked child that runs them. (registry_test.cpp checks the hardware
// entries against their twins wherever AMX runs.)
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <thread>
#include <vector>

#include "cpu/amx/tile_dequant.hpp"
#include "cpu/cpu_features.hpp"
#include "cpu/dispatch.hpp"
#include "cpu/executor.hpp"
#include "cpu/kernel_check.hpp"
#include "cpu/tile_permission.hpp"
#include "cpu/twin_check.hpp"
#include "measure/incore.hpp"
#include "measure/tile_dequant_rate.hpp"
#include "plan/devices/cpu.hpp"
#include "support/random_quantized.hpp"
#include "support/tile_emulation.hpp"

namespace w4a16::cpu {
namespace {

bool amx_offered() { return kernel_table("amx").usable(cpu_features()); }

TEST(AmxDetection, TheTableIsOfferedExactlyWhenTheCpuTheOsAndLinuxAllowAndInfoSaysWhyNot) {
  const TileAccess& access = tile_access();
  EXPECT_EQ(amx_offered(), cpu_features().has_amx_bf16() && access.granted);
  EXPECT_EQ(access.granted, access.why_not.empty());
  if (!cpu_features().amx_bf16) {
    EXPECT_FALSE(access.granted);
  }
  const CpuInfo info = cpu_info();
  EXPECT_EQ(info.amx, access.granted ? "usable" : "not offered: " + access.why_not);
  const auto isas = supported_isas();
  EXPECT_EQ(std::find(isas.begin(), isas.end(), "amx") != isas.end(), access.granted);
  if (!access.granted) std::printf("AMX not offered here: %s\n", access.why_not.c_str());
}

TEST(AmxDetection, ThePermissionIsRequestedAtMostOncePerProcessFromManyThreads) {
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) threads.emplace_back([] { (void)tile_access(); });
  for (auto& t : threads) t.join();
  (void)amx_offered();
  EXPECT_LE(tile_permission_requests(), 1);
  if (!cpu_features().has_amx_bf16()) {
    EXPECT_EQ(tile_permission_requests(), 0) << "no request without AMX";
  }
}

// On an AMX CPU: every plan on tile entries (fused, decoupled, pipelined, the dense baseline) within
// the reference's bound through gemm(), whatever the planner would choose; then a forked child, which
// inherits the permission and must not ask again, runs the fused entry against its twin.
TEST(AmxDetection, TilePlansMeetTheReferenceAndAForkedChildRunsTheTiles) {
  if (!amx_offered()) GTEST_SKIP() << "no AMX here: " << tile_access().why_not;
  set_isa_cap("amx");
  const test::KernelInput in{.m = 19, .k = 333, .n = 130, .g = 64, .zero = ZeroMode::asym, .act = DType::bf16};
  const test::PreparedInput p = test::prepare(in, 5);
  int ran = 0;
  for (const GemmPlan& plan : plan_candidates(in.m, p.packed, in.act)) {
    const bool tiles = plan.strategy == Strategy::fused ? plan.q4->isa->tiles : plan.dense->isa->tiles;
    if (!tiles) continue;
    test::HostMatrix y(in.act, in.m, in.n);
    y.poison();
    gemm(p.x.ref(), p.packed, y.mut(), plan);
    EXPECT_EQ(test::check_output(p, y, plan.strategy, plan.kernel), 0);
    ++ran;
  }
  EXPECT_GT(ran, 0) << "the planner lists plans on tile entries";
  const Q4Entry& fused = kernel_table("amx").q4[0];
  const auto twin_check = [&] {
    return twin::check_fused_twin(fused.name, fused.fn, fused.x, 1, 17) > 0 && !::testing::Test::HasFailure();
  };
  EXPECT_TRUE(twin_check());
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) _exit(twin_check() && tile_permission_requests() <= 1 ? 0 : 1);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  set_isa_cap("");
}

bool emulation_runs() { return cpu_features().has_avx512_bf16(); }

TEST(EmulatedAmx, TheFusedLoopMatchesItsGenericTwinForEveryRowBlockShape) {
  if (!emulation_runs()) GTEST_SKIP() << "the emulated AMX loops need AVX512-BF16";
  int checked = 0;
  // One row block (1, 7, 16 rows), equal blocks (20 = 2 x 10, 32 = 2 x 16), overlapping ones
  // (17 = 9 + 9 from row 8, 40 = 3 x 14 from rows 0, 14, 26).
  for (int64_t m : {1, 7, 16, 17, 20, 32, 40}) {
    checked += twin::check_fused_twin("q4_bf16_panel_16x64__emulated_amx", emulated::q4_bf16_panel_16x64__emulated_amx,
                                      XFormat::bf16, m, m);
  }
  EXPECT_GT(checked, 0);
}

TEST(EmulatedAmx, TheDenseLoopMatchesItsGenericTwin) {
  if (!emulation_runs()) GTEST_SKIP() << "the emulated AMX loops need AVX512-BF16";
  int checked = 0;
  for (int64_t m : {1, 16, 17, 40}) {
    checked += twin::check_dense_twin("dense_bf16_bf16_16x64__emulated_amx",
                                      emulated::dense_bf16_bf16_16x64__emulated_amx, DType::bf16, XFormat::bf16, m, m);
  }
  EXPECT_GT(checked, 0);
}

// The vector stage on its own (the entry calibrate times): every cell of every group's B tiles
// against the codes of the QuantizedWeight it was packed from. Pair row p of step s holds k =
// 32s + 2p (low half) and 32s + 2p + 1 (high half) of the group, as exact bf16(q - 8); past the
// group's end (a ragged or padded group) and past N (the tile's padded columns) the cell is 0.
TEST(AmxTileDequant, EveryGroupsBTilesHoldTheExactCodesInThePairLayout) {
  if (!emulation_runs()) GTEST_SKIP() << "the tile dequantization needs AVX512-BF16";
  struct Shape {
    int64_t n, k, g;
  };
  for (const Shape& s : {Shape{64, 256, 128}, Shape{130, 333, 64}, Shape{70, 100, 20}, Shape{64, 96, 32}}) {
    const QuantizedWeight q = test::random_weight(s.n, s.k, s.g, ZeroMode::sym, DType::bf16, false, uint64_t(s.k));
    const PackedWeight packed = pack(q);
    const auto& p = packed.impl();
    ASSERT_EQ(p.kernel_group, s.g);
    const int64_t steps = (p.geom.chunks_per_group + 3) / 4;
    AlignedBuffer<uint32_t> tiles(size_t(steps * kTileStepCells));
    for (int64_t t = 0; t < p.tiles; ++t) {
      for (int64_t g = 0; g < p.geom.groups; ++g) {
        std::fill_n(tiles.data(), tiles.size(), 0xDEADBEEFu);
        q4_tiles_dequant__amx(p.tile(t), g, g + 1, tiles.data());
        const int64_t length = std::min(s.g, s.k - g * s.g);
        const int64_t written = (p.geom.chunk_end(g) - p.geom.chunk_begin(g) + 3) / 4;
        for (int64_t step = 0; step < written; ++step) {
          for (int64_t j = 0; j < 4; ++j) {
            for (int64_t row = 0; row < 16; ++row) {
              for (int64_t c = 0; c < 16; ++c) {
                const int64_t col = t * kTileN + 16 * j + c;
                const auto half = [&](int64_t kk) -> uint32_t {
                  if (kk >= length || col >= s.n) return 0;
                  return f32_to_bf16(float(int(q.code(col, g * s.g + kk)) - 8));
                };
                const int64_t kk = 32 * step + 2 * row;
                const uint32_t want = half(kk) | half(kk + 1) << 16;
                ASSERT_EQ(tiles[size_t(step * kTileStepCells + j * 256 + row * 16 + c)], want)
                    << s.n << "x" << s.k << " g" << s.g << " tile " << t << " group " << g << " step " << step
                    << " column tile " << j << " pair row " << row << " column " << c;
              }
            }
          }
        }
      }
    }
  }
}

// The rate calibrate saves: a positive, finite number of weights per second wherever the stage runs
// (nothing is asserted about its size: tests time nothing); saved only where tiles are offered.
TEST(AmxTileDequant, TheRateIsMeasuredWhereTheStageRunsAndKeptOnlyBesideTiles) {
  if (!emulation_runs()) GTEST_SKIP() << "the tile dequantization needs AVX512-BF16";
  const double rate = measure::measure_tile_dequant_gweights(1, 1, 0.002);
  EXPECT_GT(rate, 0.0);
  EXPECT_TRUE(std::isfinite(rate));
  const measure::PerThreads rates = measure::measure_tile_dequant_rates(2);
  EXPECT_EQ(rates.empty(), !tile_access().granted);
}

// calibrate's in-core scales: on a tile table every strategy is timed on each unit and keyed by it
// (plan::incore_key), so the tile and the vector plans of one strategy are scaled apart; elsewhere
// no key names tiles.
TEST(AmxInCore, CalibrationTimesEachUnitOfAStrategyOnATileTable) {
  const auto samples = measure::measure_incore(plan::devices::this_cpu(), {1}, DType::bf16);
  std::set<std::string> keys;
  for (const auto& s : samples) keys.insert(s.strategy);
  for (const char* strategy : {"fused", "dense", "decoupled"}) {
    EXPECT_TRUE(keys.count(strategy)) << strategy;
    EXPECT_EQ(keys.count(std::string(strategy) + "+tiles"), active_kernels().tiles ? 1u : 0u) << strategy;
  }
}

TEST(EmulatedAmx, ATileConfigurationIsLoadedOncePerThreadAndRowBlockHeight) {
  if (!emulation_runs()) GTEST_SKIP() << "the emulated AMX loops need AVX512-BF16";
  const twin::Case c{256, 64, ZeroMode::sym, DType::bf16};
  const PackedWeight packed = twin::make_weight(c, 3 * kTileN, 3);
  const auto& p = packed.impl();
  std::mt19937_64 rng(4);
  std::thread([&] {  // a fresh thread: a fresh tile state
    const twin::Rows x5 = twin::make_rows(5, p.k_padded, p.geom.groups, rng);
    const twin::Rows x20 = twin::make_rows(20, p.k_padded, p.geom.groups, rng);
    std::vector<float> out(size_t(20 * kTileN));
    EXPECT_EQ(emulated::emulated_tile_configs(), 0);
    for (int64_t t = 0; t < p.tiles; ++t) {
      emulated::q4_bf16_panel_16x64__emulated_amx(p.tile(t), x5.as(XFormat::bf16, false), 0, p.geom.groups, out.data());
    }
    EXPECT_EQ(emulated::emulated_tile_configs(), 1) << "5 rows: one configuration for every tile";
    for (int64_t t = 0; t < p.tiles; ++t) {
      emulated::q4_bf16_panel_16x64__emulated_amx(p.tile(t), x20.as(XFormat::bf16, false), 0, p.geom.groups,
                                                  out.data());
    }
    EXPECT_EQ(emulated::emulated_tile_configs(), 2) << "20 rows (2 x 10): one more";
  })
      .join();
}

// The executor's stages around the loops (prepared or in-place x, rows kept apart, act-order,
// split-K partials, the decoupled panels, several threads), against the reference with the bound
// of kernel_check.hpp.
TEST(EmulatedAmx, GemmsThroughTheExecutorMeetTheReferenceBound) {
  if (!emulation_runs()) GTEST_SKIP() << "the emulated AMX loops need AVX512-BF16";
  const KernelTable& below = kernel_table("avx512bf16");
  struct Way {
    Strategy strategy;
    int split_k, threads;
  };
  const std::vector<test::KernelInput> inputs = {
      {.m = 1, .k = 4096 / 8, .n = 200, .g = 128, .zero = ZeroMode::sym, .act = DType::bf16},
      {.m = 5, .k = 300, .n = 70, .g = 32, .zero = ZeroMode::asym, .act = DType::bf16, .perm = true},
      {.m = 23, .k = 520, .n = 130, .g = 520, .zero = ZeroMode::float_zero, .act = DType::bf16, .bias = true},
      {.m = 40, .k = 200, .n = 64, .g = 40, .zero = ZeroMode::asym, .act = DType::bf16, .scale = DType::f16},
      // Rows of 4 KiB in 2 blocks of 9: copied one cache line apart (x_rows_apart), read in place otherwise.
      {.m = 17, .k = 2048, .n = 96, .g = 128, .zero = ZeroMode::sym, .act = DType::bf16},
  };
  int seed = 10;
  for (const auto& in : inputs) {
    const test::PreparedInput p = test::prepare(in, uint64_t(++seed));
    for (const Way way : {Way{Strategy::fused, 1, 1}, Way{Strategy::fused, 3, 2}, Way{Strategy::decoupled, 1, 2},
                          Way{Strategy::decoupled, 2, 1}}) {
      ExecPlan plan;
      plan.strategy = way.strategy;
      plan.split_k = way.split_k;
      plan.split = way.split_k > 1;
      plan.threads = way.threads;
      plan.x_format = XFormat::bf16;
      plan.x_block_rows = 16;  // the tile entries' MR
      plan.dense_dtype = DType::bf16;
      plan.q4 = emulated::q4_bf16_panel_16x64__emulated_amx;
      plan.dense = emulated::dense_bf16_bf16_16x64__emulated_amx;
      plan.dequant = find_dequant(below).fn;
      test::HostMatrix y(in.act, in.m, in.n);
      y.poison();
      execute(p.x.ref(), p.packed.impl(), y.mut(), plan);
      EXPECT_EQ(test::check_output(p, y, way.strategy,
                                   std::string(to_string(way.strategy)) + " S=" + std::to_string(way.split_k)),
                0);
    }
  }
}

}  // namespace
}  // namespace w4a16::cpu

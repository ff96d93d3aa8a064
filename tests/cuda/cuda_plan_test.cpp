// The GPU planner and the CUDA launch plan on the CPU: strategy, split-K choice, workspace regions and
// option errors; and the public CUDA API's behaviour on a machine without a GPU (or a build without CUDA).
#include "cuda/cuda_plan.hpp"

#include <gtest/gtest.h>

#include <string>

#include "plan/gpu_planner.hpp"
#include "support/random_quantized.hpp"

namespace w4a16::cuda {
namespace {

CudaShape shape(int64_t m, int64_t k, int64_t n, int sms = 132) {
  CudaShape s;
  s.m = m;
  s.k = k;
  s.n = n;
  s.n_slabs = (n + 63) / 64;
  s.k_slabs = (k + 15) / 16;
  s.sms = sms;
  s.x_direct = k % 8 == 0;
  return s;
}

TEST(CudaPlan, SplitsKWhenTheOutputTilesLeaveSmsIdle) {
  // K >> N: 1024 columns = 16 tiles for 132 SMs x 5 resident blocks: S = 41, 1792 / 41 -> 44 slabs.
  const CudaLaunchPlan kn = plan::plan_cuda(shape(1, 28672, 1024), {});
  EXPECT_EQ(kn.public_plan.strategy, Strategy::fused);
  EXPECT_EQ(kn.public_plan.partition, Partition::split_k);
  EXPECT_EQ(kn.slabs_per_split, 44);
  EXPECT_EQ(kn.public_plan.split_k, 41);  // ceil(1792 / 44): no empty split
  EXPECT_EQ(kn.public_plan.blocks, 16 * 41);
  EXPECT_EQ(kn.workspace.partials_bytes, 41 * 1 * 1024 * 4);
  // Enough tiles: data-parallel, no partials.
  const CudaLaunchPlan big = plan::plan_cuda(shape(1, 8192, 57344), {});
  EXPECT_EQ(big.public_plan.partition, Partition::data_parallel);
  EXPECT_EQ(big.public_plan.split_k, 1);
  EXPECT_EQ(big.workspace.partials_bytes, 0);
  EXPECT_EQ(big.workspace.total, kMaxCounterTiles * 4);  // only the counters, always first
  // 448 tiles for 660 resident blocks: a second split would make a second, mostly idle wave.
  EXPECT_EQ(plan::plan_cuda(shape(1, 8192, 28672), {}).public_plan.split_k, 1);
  // 64 tiles: S = 660 / 64 = 10, one wave.
  EXPECT_EQ(plan::plan_cuda(shape(1, 4096, 4096), {}).public_plan.split_k, 10);
  // The device's measured occupancy replaces the estimate: 4 resident -> 528 / 64 = 8.
  CudaShape measured = shape(1, 4096, 4096);
  measured.resident[0] = 4;
  EXPECT_EQ(plan::plan_cuda(measured, {}).public_plan.split_k, 8);
  // 64-row tiles: 2 resident per SM, 2 m tiles x 64 slabs = 128 tiles: S = 264 / 128 = 2.
  EXPECT_EQ(plan::plan_cuda(shape(128, 4096, 4096), {}).public_plan.split_k, 2);
  // A short K is never split below two stages per split.
  EXPECT_EQ(plan::plan_cuda(shape(1, 256, 64), {}).public_plan.split_k, 1);
}

TEST(CudaPlan, TileRowsGrowWithM) {
  EXPECT_EQ(plan::plan_cuda(shape(1, 4096, 4096), {}).public_plan.tile_rows, 16);
  EXPECT_EQ(plan::plan_cuda(shape(17, 4096, 4096), {}).public_plan.tile_rows, 32);
  EXPECT_EQ(plan::plan_cuda(shape(128, 4096, 4096), {}).public_plan.tile_rows, 64);
  EXPECT_EQ(plan::plan_cuda(shape(128, 4096, 4096), {}).public_plan.blocks % 2, 0);  // 2 m tiles x 64 slabs x S
}

TEST(CudaPlan, HonoursForcedPartitions) {
  CudaGemmOptions o;
  o.partition = Partition::data_parallel;
  EXPECT_EQ(plan::plan_cuda(shape(1, 28672, 512), o).public_plan.split_k, 1);
  o.partition = Partition::split_k;
  o.split_k = 4;
  const CudaLaunchPlan s4 = plan::plan_cuda(shape(3, 4096, 100), o);
  EXPECT_EQ(s4.public_plan.split_k, 4);
  EXPECT_EQ(s4.slabs_per_split, 64);
  EXPECT_EQ(s4.workspace.partials_bytes, 4 * 3 * 100 * 4);
  o.atomic_split_k = true;
  const CudaLaunchPlan atomic = plan::plan_cuda(shape(3, 4096, 100), o);
  EXPECT_TRUE(atomic.public_plan.atomic_split_k);
  EXPECT_EQ(atomic.workspace.partials_bytes, 3 * 100 * 4);  // one fp32 output, not S
  // More splits than slabs: clamped, said in the notes.
  o = {};
  o.split_k = 1000;
  const CudaLaunchPlan clamped = plan::plan_cuda(shape(1, 64, 64), o);
  EXPECT_EQ(clamped.public_plan.split_k, 4);
  EXPECT_NE(clamped.public_plan.notes.find("clamped"), std::string::npos) << clamped.public_plan.notes;
  // Uneven slices: 10 slabs in S = 4 -> slices of 3, so S = 4 with the last one short.
  o.split_k = 4;
  const CudaLaunchPlan uneven = plan::plan_cuda(shape(1, 160, 64), o);
  EXPECT_EQ(uneven.slabs_per_split, 3);
  EXPECT_EQ(uneven.public_plan.split_k, 4);
  // 9 slabs, S = 4 -> slices of 3 -> only 3 needed: S becomes 3 (no empty split).
  const CudaLaunchPlan fewer = plan::plan_cuda(shape(1, 144, 64), o);
  EXPECT_EQ(fewer.public_plan.split_k, 3);
}

TEST(CudaPlan, PreparesXAndSizesTheDecoupledWorkspace) {
  CudaShape s = shape(5, 200, 72);  // K % 16 = 8: 13 slabs, x padded to 208 when not direct
  s.x_direct = false;
  CudaGemmOptions o;
  o.strategy = Strategy::decoupled;
  const CudaLaunchPlan p = plan::plan_cuda(s, o);
  EXPECT_TRUE(p.prepare_x);
  EXPECT_EQ(p.x_ld, 208);
  EXPECT_EQ(p.workspace.x_bytes, 5 * 208 * 2);
  EXPECT_EQ(p.workspace.w16_bytes, 72 * 208 * 2);
  EXPECT_EQ(p.workspace.cublas_bytes, kCublasWorkspaceBytes);
  EXPECT_EQ(p.workspace.partials_bytes, 0);
  for (const int64_t off :
       {p.workspace.x_offset, p.workspace.partials_offset, p.workspace.w16_offset, p.workspace.cublas_offset}) {
    EXPECT_EQ(off % 256, 0);
  }
  EXPECT_GE(p.workspace.total, p.workspace.cublas_offset + p.workspace.cublas_bytes);
  s.has_bias = true;
  EXPECT_EQ(plan::plan_cuda(s, o).workspace.partials_bytes, 5 * 72 * 4);  // fp32 output for the bias epilogue
  EXPECT_TRUE(plan::plan_cuda(s, o).bias_epilogue);
  // cuBLAS writes y only in x's dtype or fp32: bf16 x with fp16 y goes through fp32 too.
  s.has_bias = false;
  s.act = DType::bf16;
  s.y_dtype = DType::f16;
  EXPECT_TRUE(plan::plan_cuda(s, o).bias_epilogue);
  s.y_dtype = DType::f32;
  EXPECT_FALSE(plan::plan_cuda(s, o).bias_epilogue);
  // Act-order gathers x even when it is aligned.
  CudaShape permuted = shape(2, 4096, 4096);
  permuted.has_perm = true;
  EXPECT_TRUE(plan::plan_cuda(permuted, {}).prepare_x);
  EXPECT_FALSE(plan::plan_cuda(shape(2, 4096, 4096), {}).prepare_x);
}

// The launch plan follows a choice and adds none: the strategy and rows per block stay as chosen, S only
// shrinks where a slice would be empty, the notes end with how x is prepared.
TEST(CudaPlan, LayOutFollowsTheChoice) {
  CudaPlan chosen;
  chosen.strategy = Strategy::fused;
  chosen.tile_rows = 64;  // not what the planner picks for M = 1
  chosen.split_k = 4;
  chosen.notes = "forced; ";
  CudaShape s = shape(1, 144, 64);  // 9 slabs: S = 4 -> slices of 3 -> S = 3
  s.has_perm = true;
  const CudaLaunchPlan lp = lay_out(s, chosen);
  EXPECT_EQ(lp.public_plan.tile_rows, 64);
  EXPECT_EQ(lp.public_plan.split_k, 3);
  EXPECT_EQ(lp.public_plan.partition, Partition::split_k);
  EXPECT_EQ(lp.public_plan.blocks, 1 * 1 * 3);
  EXPECT_EQ(lp.public_plan.workspace_bytes, lp.workspace.total);
  EXPECT_EQ(lp.public_plan.notes, "forced; x gathered by the act-order permutation");
  chosen.split_k = 1;
  chosen.atomic_split_k = true;  // meaningless unsplit: dropped
  EXPECT_FALSE(lay_out(shape(1, 144, 64), chosen).public_plan.atomic_split_k);
}

TEST(CudaPlan, RejectsWhatCannotRun) {
  CudaGemmOptions o;
  o.strategy = Strategy::pipelined;
  EXPECT_THROW(plan::plan_cuda(shape(1, 64, 64), o), Error);
  o = {};
  o.split_k = -1;
  EXPECT_THROW(plan::plan_cuda(shape(1, 64, 64), o), Error);
  o = {};
  o.strategy = Strategy::decoupled;
  o.partition = Partition::split_k;
  EXPECT_THROW(plan::plan_cuda(shape(1, 64, 64), o), Error);
  o = {};
  o.partition = Partition::data_parallel;
  o.split_k = 2;
  EXPECT_THROW(plan::plan_cuda(shape(1, 64, 64), o), Error);
  // Past the grid: N / 64 > 65535 slabs.
  EXPECT_THROW(plan::plan_cuda(shape(1, 64, (kMaxGridYZ + 1) * 64), {}), Error);
}

// Without a GPU (every CI machine), the API answers with Error(unsupported), never a crash.
TEST(CudaApi, WithoutAGpuSaysSo) {
  const CudaDevices d = cuda_devices();
  if (!d.devices.empty()) GTEST_SKIP() << "a CUDA device is present: " << d.devices.front();
  EXPECT_FALSE(d.note.empty());
  const QuantizedWeight w = test::random_weight(64, 64, 32, ZeroMode::sym, DType::f16, false, 1);
  try {
    to_cuda(w, DType::f16);
    FAIL() << "to_cuda succeeded without a device";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::unsupported);
    const std::string what = e.what();
    EXPECT_TRUE(what.find("CUDA") != std::string::npos) << what;
  }
  CudaWeight empty;
  EXPECT_THROW((void)empty.n(), Error);
  EXPECT_THROW(to_cuda(w, DType::f32), Error);
}

// A device index is checked before any CUDA call: an explicit index without a device is
// unsupported like the current device (it was INTERNAL "cudaGetDevice failed"), an index below -1
// is invalid_argument on every machine (it was "no usable device").
TEST(CudaApi, DeviceIndicesWithoutAGpu) {
  const CudaDevices d = cuda_devices();
  if (!d.devices.empty()) GTEST_SKIP() << "a CUDA device is present: " << d.devices.front();
  const QuantizedWeight w = test::random_weight(64, 64, 32, ZeroMode::sym, DType::f16, false, 1);
  const auto code_of = [](auto&& call) {
    try {
      call();
    } catch (const Error& e) {
      return e.code();
    }
    return ErrorCode::internal;  // no error at all: fails the expectations below
  };
  EXPECT_EQ(code_of([&] { to_cuda(w, DType::bf16, 5); }), ErrorCode::unsupported);
  EXPECT_EQ(code_of([&] { CudaWorkspace().reserve(1024, 3); }), ErrorCode::unsupported);
  EXPECT_EQ(code_of([&] { CudaWorkspace().reserve(1024); }), ErrorCode::unsupported);
  EXPECT_EQ(code_of([&] { to_cuda(w, DType::bf16, -12345); }), ErrorCode::invalid_argument);
  EXPECT_EQ(code_of([&] { CudaWorkspace().reserve(1024, -2); }), ErrorCode::invalid_argument);
}

}  // namespace
}  // namespace w4a16::cuda

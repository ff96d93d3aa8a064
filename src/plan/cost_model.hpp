// The cost model: a device description (device.hpp) plus a candidate plan gives a predicted time
// with its breakdown. One page of arithmetic per strategy; docs/model.md derives every formula.
// The same functions choose the plans of `gemm` on this CPU (planner.hpp) and evaluate the
// paper's pipeline on the modeled Ascend 910B (`w4a16 model`).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "plan/device.hpp"
#include "w4a16/w4a16.hpp"

namespace w4a16::plan {

// The problem one call solves: y[M,N] = x[M,K] W^T with W int4 in groups of g.
struct Problem {
  int64_t m = 1, k = 1, n = 1;
  int64_t group_size = 128;
  ZeroMode zero_mode = ZeroMode::sym;
  DType act = DType::bf16;         // x and y
  DType scale_dtype = DType::f16;  // scales (and float zeros)
  bool quantized = true;           // false: a dense 16-bit weight (only the dense strategy)
};

// One candidate: what the executor would run, in the model's terms.
struct Candidate {
  Strategy strategy = Strategy::fused;
  Partition partition = Partition::data_parallel;
  int split_k = 1;             // S (1 for data-parallel)
  int threads = 1;             // cores used in all (pipelined: vector + matrix roles)
  int vector_threads = 0;      // pipelined: cores in the dequantizing role
  int64_t tile_n = 64;         // output columns per work item
  int block_rows = 1;          // MR: rows of x one register block holds (the kernel entry's MRxNR)
  bool panel = false;          // the entry dequantizes each group once into an L1 panel (prefill entries)
  bool bf16_dot = false;       // cpu: the kernels read x as bf16 pairs (dot family), else fp32 (FMA family)
  bool tiles = false;          // cpu: the entry multiplies on the matrix unit (AMX tiles, Device::tile_flops)
  int64_t row_panels = 1;      // cpu: passes over the tiles, each with a share of the rows of x
  double workspace_bytes = 0;  // decoupled / pipelined panel ring, split-K partial sums
};

struct Term {
  std::string name;  // "weight read", "dequant", "workspace round trip", "matmul", "reduce", "launch", ...
  double seconds = 0;
  bool overlapped = false;  // runs concurrently with the other overlapped terms: only their max counts
};

struct Prediction {
  double seconds = 0;       // the predicted time of the call
  std::string bound;        // the term that sets it ("weight read", "matmul", ...)
  std::vector<Term> terms;  // every term; overlapped stages contribute their max, not their sum
};

Prediction predict(const Device& device, const Problem& problem, const Candidate& candidate);

// The key of a candidate's in-core scale (Device::incore_scale): its strategy ("fused", "dense",
// "decoupled", "pipelined"), with "+tiles" for plans on tile entries: the tile and the vector
// entries of one strategy miss different parts of their counts, so calibrate measures each.
std::string incore_key(const Candidate& candidate);

}  // namespace w4a16::plan

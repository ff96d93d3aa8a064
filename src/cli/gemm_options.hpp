// The --strategy/--partition/--split-k/--threads options shared by `gemm` and `demo`.
#pragma once

#include <CLI/CLI.hpp>
#include <climits>
#include <string>

#include "cli/arg_checks.hpp"
#include "w4a16/w4a16.hpp"

namespace w4a16::cli {

struct GemmFlags {
  std::string strategy = "auto", partition = "auto";
  int split_k = 0, threads = 0, vector_threads = 0;

  void add_to(CLI::App& app) {
    app.add_option("--strategy", strategy,
                   "fused | decoupled | pipelined (dequantizing and multiplying threads) | dense (W dequantized "
                   "once: the FP16 baseline) | auto (the planner's choice)")
        ->check(CLI::IsMember({"auto", "fused", "decoupled", "pipelined", "dense"}));
    app.add_option("--partition", partition, "dp (data-parallel) | splitk | auto")
        ->check(CLI::IsMember({"auto", "dp", "splitk"}));
    app.add_option("--split-k", split_k, "split factor S for --partition splitk (0 = automatic)")
        ->check(integer_in(0, kMaxThreads));
    app.add_option("--threads", threads, "threads (0 = the CPUs this process may use)")
        ->check(integer_in(0, kMaxThreads));
    app.add_option("--vector-threads", vector_threads, "pipelined: threads in the dequantizing role (0 = automatic)")
        ->check(integer_in(0, kMaxThreads));
  }
  GemmOptions options() const {
    GemmOptions o;
    o.strategy = parse_strategy(strategy);
    o.partition = parse_partition(partition);
    o.split_k = split_k;
    o.threads = threads;
    o.vector_threads = vector_threads;
    return o;
  }
};

// --zero sym|asym|float and --dtype fp16|bf16 (activations and scales) for the synthetic-weight
// commands (demo, bench).
inline void add_zero_and_dtype(CLI::App& app, std::string& zero, std::string& dtype) {
  app.add_option("--zero", zero, "zero-point mode")->default_val("sym")->check(CLI::IsMember({"sym", "asym", "float"}));
  app.add_option("--dtype", dtype, "activation and scale dtype")
      ->default_val("bf16")
      ->check(CLI::IsMember({"fp16", "bf16"}));
}

inline std::string describe(const GemmPlan& plan) {
  std::string s = std::string(to_string(plan.strategy)) + " " + std::string(to_string(plan.partition)) +
                  " S=" + std::to_string(plan.split_k) + " threads=" + std::to_string(plan.threads) +
                  " isa=" + plan.isa + " kernel=" + plan.kernel;
  if (!plan.notes.empty()) s += " (" + plan.notes + ")";
  return s;
}

}  // namespace w4a16::cli

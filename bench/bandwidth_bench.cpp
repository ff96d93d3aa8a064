// The streaming DRAM read, variant by variant: the denominator of every "% of bandwidth" that
// w4a16_bench_kernels reports (it takes the best variant, see bench_common.hpp). The variants
// include a plain compiler-vectorized read-sum (the "simple read-sum over 1 GiB" of KERNEL-NOTES).
//
//   w4a16_bench_bandwidth [--benchmark_filter=threads:2] [google benchmark flags]
//
// One iteration is one pass over the whole buffer (>= 1 GiB, >= 8x the L3) by 1 or 2 threads,
// each reading a contiguous slice; the time of a pass runs from the first thread's start to the
// last thread's end (manual time), so thread start-up is not counted.
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "bench_common.hpp"

namespace w4a16::bench {
namespace {

const HugeBuffer& shared_buffer() {
  static const HugeBuffer buf(read_buffer_bytes());
  return buf;
}

void bm_read(benchmark::State& state, ReadKernel kernel, int threads) {
  const HugeBuffer& buf = shared_buffer();
  timed_read_pass(buf, threads, kernel);  // warm-up
  for (auto _ : state) state.SetIterationTime(timed_read_pass(buf, threads, kernel));
  const double bytes = double(read_slice_bytes(buf, threads)) * threads;
  state.counters["bytes"] = benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace
}  // namespace w4a16::bench

int main(int argc, char** argv) {
  using namespace w4a16::bench;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("w4a16_cpu", w4a16::host::cpu_name());
  benchmark::AddCustomContext("read_buffer", fmt::format("{} MiB, 2 MiB aligned, MADV_HUGEPAGE, L3 {} MiB",
                                                         read_buffer_bytes() >> 20, w4a16::host::l3_bytes() >> 20));
  shared_buffer();  // allocate (and touch) it now, so the THP figure below includes it
  benchmark::AddCustomContext("anon_huge_pages",
                              fmt::format("{} MiB with the buffer allocated", anon_huge_pages_kb() >> 10));
  const std::vector<ReadVariant> variants = read_variants();
  for (int threads : {1, 2}) {
    for (const auto& v : variants) {
      std::string name = "read/" + v.name + "/threads:" + std::to_string(threads);
      for (char& c : name) c = c == ' ' ? '/' : c;
      benchmark::RegisterBenchmark(name.c_str(), bm_read, v.kernel, threads)
          ->UseManualTime()
          ->Unit(benchmark::kMillisecond)
          ->MinTime(0.3);
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

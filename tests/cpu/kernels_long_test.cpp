// The long tier (ctest label "long"; scripts/test.sh runs it with W4A16_TEST_TIER=long): a
// denser covering of the kernel factors — all three strategies x every split factor x every
// thread count on each input, triple-wise over shapes and modes — on the active ISA and every
// forced lower one.
#include <gtest/gtest.h>

#include "cpu/kernel_check.hpp"

namespace w4a16::test {
namespace {

TEST(KernelsLong, EveryExecutionVariantOnManyInputs) {
  const std::vector<int64_t> ms = {1, 2, 3, 4, 5, 8, 9, 16, 43, 300};
  const std::vector<int64_t> ns = {1, 7, 16, 33, 64, 65, 257};
  const std::vector<int64_t> gs = {32, 64, 128, 256};
  const auto rows = pairwise_rows({int(ms.size()), int(ns.size()), int(gs.size()), 4, 3, 2, 3, 2}, 99);
  int bad = 0;
  for (const auto& isa : supported_isas()) {
    set_isa_cap(isa);
    for (size_t i = 0; i < rows.size(); ++i) {
      const auto& r = rows[i];
      KernelInput in;
      in.m = ms[size_t(r[0])], in.n = ns[size_t(r[1])], in.g = gs[size_t(r[2])];
      in.k = r[3] == 0 ? in.g : r[3] == 1 ? 3 * in.g : r[3] == 2 ? 11 * in.g : 3 * in.g + in.g / 2;
      in.zero = ZeroMode(r[4]), in.act = r[5] ? DType::bf16 : DType::f16, in.scale = DType(r[6]);
      in.perm = r[7] == 1, in.bias = i % 3 == 0;
      const PreparedInput p = prepare(in, 5000 + i);
      for (Strategy strategy : {Strategy::fused, Strategy::decoupled, Strategy::dense}) {
        for (int s : {1, 2, 3, 7}) {
          for (int threads : {1, 2, 3}) {
            GemmOptions o;
            o.strategy = strategy;
            o.partition = s == 1 ? Partition::data_parallel : Partition::split_k;
            o.split_k = s;
            o.threads = threads;
            HostMatrix y(in.act, in.m, in.n);
            y.poison();
            gemm(p.x.ref(), p.packed, y.mut(), o);
            bad += check_output(p, y, strategy,
                                isa + " " + std::string(to_string(strategy)) + " S=" + std::to_string(s) +
                                    " T=" + std::to_string(threads));
          }
        }
      }
    }
  }
  set_isa_cap("");
  EXPECT_EQ(bad, 0);
}

}  // namespace
}  // namespace w4a16::test

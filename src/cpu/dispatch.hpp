// Runtime ISA dispatch: the kernel table for this CPU, capped by W4A16_ISA / set_isa_cap(), and
// the registry lookups the planner chooses entries with.
#pragma once

#include "cpu/kernels.hpp"

namespace w4a16::cpu {

const KernelTable& active_kernels();
// The table named `name` in this build; Error(invalid_argument) listing the names otherwise.
const KernelTable& kernel_table(std::string_view name);

// The entry of `table` (or, where it has none for x format / weight dtype, of the table it falls
// back to, and so on) that serves M rows; nullptr when no table down the chain has one (the
// scalar table serves every format and M, so that means a format the chain lacks, e.g. bf16 x
// below avx512bf16 when the chain does not end in scalar).
const Q4Entry* find_q4(const KernelTable& table, XFormat x, int64_t m);
const DenseEntry* find_dense(const KernelTable& table, DType weight, XFormat x, int64_t m);
// The dequant stage of `table` or of the first table down its chain that has one.
const DequantEntry& find_dequant(const KernelTable& table);

// Whether bf16 activations go to the bf16-dot entries (vdpbf16ps) rather than being widened
// to fp32 for the FMA entries, where the table has both. The dot does 32 MACs per instruction,
// the FMA 16, but their issue rates differ by CPU: on AMD Zen 4 / Zen 5 both issue at the same
// rate, so the dot is twice as fast; on the Intel Xeon (family 6 model 207) of the dev machine
// the dot measured 86 GFLOP/s per core against 175 for the FMA (`w4a16 calibrate`). Rule: AMD
// -> dot, others -> FMA; W4A16_BF16_DOT=0|1 or set_bf16_dot() overrides it (tests run both).
bool prefer_bf16_dot();
// -1: back to the rule / environment; 0 / 1: force.
void set_bf16_dot(int preference);

}  // namespace w4a16::cpu

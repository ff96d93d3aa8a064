// The bottleneck study's ablation kernels (`w4a16 bench --study`), kept out of the production
// tables (kernels.hpp): they compute nothing useful, only their time matters.
//   widen   the decoupled stage with the dequantization arithmetic replaced by a plain widening
//           copy of each code to 16 bits, as the mantissa of 1.0 so that the values are normal
//           (the same bytes written as `dequant`);
//   stream  reads the packed codes and scales of its groups and XOR-reduces them into out (the
//           floor: the int4 weight read alone).
#pragma once

#include "cpu/kernels.hpp"

namespace w4a16::cpu {

struct StudyKernels {
  const KernelTable* isa = nullptr;  // the table whose ISA they are compiled for
  DequantEntry widen;
  Q4Entry stream;
};

// The ablations for plans of `table`: its own, or those of the first table down its fallback
// chain that has some (the scalar ones at the end).
const StudyKernels& study_kernels(const KernelTable& table);

// Each ISA that has ablations defines its set next to its kernels.
extern const StudyKernels study_kernels_scalar;
extern const StudyKernels study_kernels_avx512;

}  // namespace w4a16::cpu

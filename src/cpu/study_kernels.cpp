// study_kernels(): the ablation set for a table, found down its fallback chain.
#include "cpu/study_kernels.hpp"

namespace w4a16::cpu {

const StudyKernels& study_kernels(const KernelTable& table) {
  static const StudyKernels* const sets[] = {&study_kernels_avx512, &study_kernels_scalar};
  for (const KernelTable* t = &table; t; t = t->fallback) {
    for (const StudyKernels* s : sets) {
      if (s->isa == t) return *s;
    }
  }
  return study_kernels_scalar;
}

}  // namespace w4a16::cpu

// The AVX2 + FMA + F16C kernel table (kernels in progress: scalar twins until they land).
#include "cpu/kernels.hpp"

namespace w4a16::cpu {

const KernelTable* avx2_kernels() { return nullptr; }

}  // namespace w4a16::cpu

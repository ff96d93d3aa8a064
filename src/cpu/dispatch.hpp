// Runtime ISA dispatch: the kernel table for this CPU, capped by W4A16_ISA / set_isa_cap().
#pragma once

#include "cpu/kernels.hpp"

namespace w4a16::cpu {

const KernelTable& active_kernels();

}  // namespace w4a16::cpu

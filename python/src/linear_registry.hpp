// The weights that the torch op's int handles name, for the op's C++ kernels (kernel_table.h).
// python/w4a16/torch registers a Linear's packed weight and gemm options under its handle when
// the Linear is made (again when its weight or options change) and unregisters it when the
// Linear is collected.
#pragma once

#include <cstdint>

#include "kernel_table.h"
#include "w4a16/w4a16.hpp"

namespace w4a16::python {

// Adds or replaces `handle`'s entry. The registry keeps the address `w`: the caller keeps the
// weight alive until the entry is replaced or unregister_linear(handle) has returned (both wait
// for the kernel calls that are using the old entry).
void register_linear(int64_t handle, const PackedWeight* w, const GemmOptions& options);
void unregister_linear(int64_t handle);  // no-op when absent

const w4a16_kernel_table* kernel_table();

}  // namespace w4a16::python

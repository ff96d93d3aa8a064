// The Linux tile permission (tile_permission.hpp), asked for once per process.
#include "cpu/tile_permission.hpp"

#include <fmt/format.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "cpu/cpu_features.hpp"

#if defined(__linux__) && defined(__x86_64__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace w4a16::cpu {

namespace {

std::atomic<int> g_requests{0};

#if defined(__linux__) && defined(__x86_64__)
// From the kernel's uapi asm/prctl.h and fpu/types.h (not in every libc's headers).
constexpr int kArchGetXcompPerm = 0x1022;
constexpr int kArchReqXcompPerm = 0x1023;
constexpr unsigned long kXfeatureXtiledata = 18;

std::string os_permission() {
  unsigned long mask = 0;
  if (syscall(SYS_arch_prctl, kArchGetXcompPerm, &mask) == 0 && (mask >> kXfeatureXtiledata) & 1u) return "";
  g_requests.fetch_add(1, std::memory_order_relaxed);
  if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) != 0) {
    const int err = errno;
    return fmt::format("Linux refused the tile state (arch_prctl ARCH_REQ_XCOMP_PERM: {}{})", std::strerror(err),
                       err == EINVAL ? "; kernels before 5.16 have no such request" : "");
  }
  mask = 0;
  if (syscall(SYS_arch_prctl, kArchGetXcompPerm, &mask) != 0 || !((mask >> kXfeatureXtiledata) & 1u)) {
    return "Linux granted the tile request but ARCH_GET_XCOMP_PERM does not list XTILEDATA";
  }
  return "";
}
#else
std::string os_permission() { return "the tile permission request is only implemented for Linux on x86-64"; }
#endif

TileAccess decide() {
  const CpuFeatures& f = cpu_features();
  TileAccess a;
  if (!f.amx_tile || !f.amx_bf16) {
    a.why_not = "the CPU has no AMX-BF16 (cpuid 7.0 EDX bits 22, 24)";
  } else if (!f.has_avx512_bf16()) {
    a.why_not = "the AMX kernels dequantize with AVX512-BF16, which this CPU or OS does not offer";
  } else if (!f.os_saves_tiles) {
    a.why_not = "the OS does not enable the tile state (XCR0 bits 17-18)";
  } else if (!f.tile_palette_8x16x64) {
    a.why_not = "tile palette 1 is not 8 tiles of 16 rows x 64 bytes (cpuid 0x1D)";
  } else {
    a.why_not = os_permission();
  }
  a.granted = a.why_not.empty();
  return a;
}

}  // namespace

const TileAccess& tile_access() {
  static const TileAccess access = decide();  // thread-safe: one thread decides, the others wait
  return access;
}

int tile_permission_requests() { return g_requests.load(std::memory_order_relaxed); }

}  // namespace w4a16::cpu

// cpuid + xgetbv feature detection. A feature is only usable when the OS saves the registers it
// needs (XCR0), which is why AVX-512 in cpuid alone is not enough (FBGEMM/MLAS do the same).
#include "cpu/cpu_features.hpp"

#include <cstdint>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace w4a16::cpu {

namespace {

#if defined(__x86_64__) || defined(__i386__)
struct Regs {
  uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
};

Regs cpuid(uint32_t leaf, uint32_t subleaf = 0) {
  Regs r;
  __cpuid_count(leaf, subleaf, r.eax, r.ebx, r.ecx, r.edx);
  return r;
}

uint64_t xgetbv0() {
  uint32_t lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t(hi) << 32) | lo;
}

bool bit(uint32_t value, int index) { return (value >> index) & 1u; }

CpuFeatures detect() {
  CpuFeatures f;
  const Regs r0 = cpuid(0);
  char vendor[13] = {};
  std::memcpy(vendor + 0, &r0.ebx, 4);
  std::memcpy(vendor + 4, &r0.edx, 4);
  std::memcpy(vendor + 8, &r0.ecx, 4);
  f.vendor = vendor;

  if (cpuid(0x80000000).eax >= 0x80000004) {
    char brand[49] = {};
    for (uint32_t i = 0; i < 3; ++i) {
      const Regs r = cpuid(0x80000002 + i);
      std::memcpy(brand + 16 * i + 0, &r.eax, 4);
      std::memcpy(brand + 16 * i + 4, &r.ebx, 4);
      std::memcpy(brand + 16 * i + 8, &r.ecx, 4);
      std::memcpy(brand + 16 * i + 12, &r.edx, 4);
    }
    f.brand = brand;
    while (!f.brand.empty() && f.brand.back() == ' ') f.brand.pop_back();
  }

  const uint32_t max_leaf = r0.eax;
  if (max_leaf < 1) return f;
  const Regs r1 = cpuid(1);
  f.sse42 = bit(r1.ecx, 20);
  f.fma = bit(r1.ecx, 12);
  f.f16c = bit(r1.ecx, 29);
  f.avx = bit(r1.ecx, 28);
  const bool osxsave = bit(r1.ecx, 27);
  if (osxsave) {
    const uint64_t xcr0 = xgetbv0();
    f.os_saves_ymm = (xcr0 & 0x6) == 0x6;
    f.os_saves_zmm = f.os_saves_ymm && (xcr0 & 0xE0) == 0xE0;
    f.os_saves_tiles = (xcr0 & 0x60000) == 0x60000;
  }
  if (max_leaf >= 7) {
    const Regs r7 = cpuid(7, 0);
    f.avx2 = bit(r7.ebx, 5);
    f.bmi2 = bit(r7.ebx, 8);
    f.avx512f = bit(r7.ebx, 16);
    f.avx512dq = bit(r7.ebx, 17);
    f.avx512bw = bit(r7.ebx, 30);
    f.avx512vl = bit(r7.ebx, 31);
    f.avx512_vbmi = bit(r7.ecx, 1);
    f.avx512_vnni = bit(r7.ecx, 11);
    f.avx512_fp16 = bit(r7.edx, 23);
    if (r7.eax >= 1) f.avx512_bf16 = bit(cpuid(7, 1).eax, 5);
    f.amx_bf16 = bit(r7.edx, 22);
    f.amx_tile = bit(r7.edx, 24);
    f.amx_int8 = bit(r7.edx, 25);
  }
  if (max_leaf >= 0x1D && f.amx_tile) {
    // Leaf 0x1D subleaf 1 describes palette 1 (SDM vol. 2, CPUID): EAX[31:16] bytes per tile,
    // EBX[31:16] tile names, EBX[15:0] bytes per row, ECX[15:0] rows; subleaf 0 EAX = last palette.
    if (cpuid(0x1D, 0).eax >= 1) {
      const Regs p1 = cpuid(0x1D, 1);
      f.tile_palette_8x16x64 =
          (p1.eax >> 16) >= 1024 && (p1.ebx >> 16) >= 8 && (p1.ebx & 0xFFFF) == 64 && (p1.ecx & 0xFFFF) >= 16;
    }
  }
  return f;
}
#else
CpuFeatures detect() { return {}; }
#endif

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

}  // namespace w4a16::cpu

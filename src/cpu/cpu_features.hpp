// What this CPU and OS can run, read once from cpuid + xgetbv.
#pragma once

#include <string>

namespace w4a16::cpu {

struct CpuFeatures {
  std::string vendor;  // "AuthenticAMD", "GenuineIntel", ...
  std::string brand;   // the processor brand string
  bool sse42 = false, avx = false, avx2 = false, fma = false, f16c = false, bmi2 = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool avx512_bf16 = false, avx512_vnni = false, avx512_vbmi = false, avx512_fp16 = false;
  bool os_saves_ymm = false;  // XCR0 bits 1-2: the OS saves SSE and AVX state
  bool os_saves_zmm = false;  // XCR0 bits 5-7: the OS saves opmask and ZMM state
  // AMX (cpuid 7.0 EDX bits 24, 22, 25), the OS's tile state (XCR0 bits 17-18: TILECFG and
  // TILEDATA) and palette 1 as the kernels use it (cpuid 0x1D: 8 tiles of 16 rows x 64 bytes).
  bool amx_tile = false, amx_bf16 = false, amx_int8 = false;
  bool os_saves_tiles = false;
  bool tile_palette_8x16x64 = false;

  // Feature bits that are usable: set in cpuid *and* enabled by the OS.
  bool has_avx2_fma_f16c() const { return os_saves_ymm && avx2 && fma && f16c; }
  bool has_avx512_core() const { return os_saves_zmm && avx512f && avx512bw && avx512vl && avx512dq; }
  bool has_avx512_bf16() const { return has_avx512_core() && avx512_bf16; }
  // The AMX kernels: tiles with the bf16 dot product, fed by AVX512-BF16 code. Linux also wants a
  // per-process permission before the first tile instruction (tile_permission.hpp).
  bool has_amx_bf16() const {
    return has_avx512_bf16() && amx_tile && amx_bf16 && os_saves_tiles && tile_palette_8x16x64;
  }
};

// Detected once, on first use; thread-safe.
const CpuFeatures& cpu_features();

}  // namespace w4a16::cpu

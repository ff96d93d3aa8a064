// cpu_info(): the public view of cpu_features() and available_cpus().
#include "cpu/cpu_features.hpp"
#include "cpu/thread_pool.hpp"
#include "cpu/tile_permission.hpp"
#include "w4a16/w4a16.hpp"

namespace w4a16 {

CpuInfo cpu_info() {
  const auto& f = cpu::cpu_features();
  CpuInfo info;
  info.vendor = f.vendor;
  info.brand = f.brand;
  info.available_threads = cpu::available_cpus();
  info.features = {{"os saves ymm", f.os_saves_ymm},
                   {"os saves zmm", f.os_saves_zmm},
                   {"avx2", f.avx2},
                   {"fma", f.fma},
                   {"f16c", f.f16c},
                   {"bmi2", f.bmi2},
                   {"avx512f", f.avx512f},
                   {"avx512bw", f.avx512bw},
                   {"avx512vl", f.avx512vl},
                   {"avx512dq", f.avx512dq},
                   {"avx512_bf16", f.avx512_bf16},
                   {"avx512_vnni", f.avx512_vnni},
                   {"avx512_vbmi", f.avx512_vbmi},
                   {"avx512_fp16", f.avx512_fp16},
                   {"usable avx2+fma+f16c", f.has_avx2_fma_f16c()},
                   {"usable avx512", f.has_avx512_core()},
                   {"usable avx512bf16", f.has_avx512_bf16()},
                   {"amx_tile", f.amx_tile},
                   {"amx_bf16", f.amx_bf16},
                   {"amx_int8", f.amx_int8},
                   {"os saves tiles", f.os_saves_tiles}};
  const cpu::TileAccess& tiles = cpu::tile_access();
  info.amx = tiles.granted ? "usable" : "not offered: " + tiles.why_not;
  return info;
}

}  // namespace w4a16

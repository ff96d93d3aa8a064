// The one place that knows which ISA runs: cpuid + xgetbv (cpu_features) capped by W4A16_ISA or
// set_isa_cap(). Kernels never test CPU features themselves.
#include "cpu/dispatch.hpp"

#include <atomic>
#include <cstdlib>
#include <mutex>

#include "common/check.hpp"
#include "cpu/cpu_features.hpp"

namespace w4a16 {
namespace cpu {

namespace {

const KernelTable* table_for(Isa isa) {
  switch (isa) {
    case Isa::avx512bf16:
      return avx512bf16_kernels();
    case Isa::avx512:
      return avx512_kernels();
    case Isa::avx2:
      return avx2_kernels();
    case Isa::scalar:
      return scalar_kernels();
  }
  return scalar_kernels();
}

Isa parse_isa(std::string_view name) {
  if (name == "scalar") return Isa::scalar;
  if (name == "avx2") return Isa::avx2;
  if (name == "avx512") return Isa::avx512;
  if (name == "avx512bf16") return Isa::avx512bf16;
  fail(ErrorCode::invalid_argument, "unknown ISA '{}' (expected scalar, avx2, avx512 or avx512bf16)", name);
}

// Highest level this CPU + OS supports and this build compiled.
Isa detected_isa() {
  const auto& f = cpu_features();
  if (f.has_avx512_bf16() && avx512bf16_kernels()) return Isa::avx512bf16;
  if (f.has_avx512_core() && avx512_kernels()) return Isa::avx512;
  if (f.has_avx2_fma_f16c() && avx2_kernels()) return Isa::avx2;
  return Isa::scalar;
}

Isa env_cap() {
  const char* env = std::getenv("W4A16_ISA");
  if (!env || !*env) return Isa::avx512bf16;
  return parse_isa(env);
}

std::atomic<int> g_cap{-1};  // -1: not yet read from the environment

}  // namespace

const KernelTable& active_kernels() {
  int cap = g_cap.load(std::memory_order_acquire);
  if (cap < 0) {
    cap = int(env_cap());
    g_cap.store(cap, std::memory_order_release);
  }
  const Isa isa = Isa(std::min(cap, int(detected_isa())));
  // A lower level is always available when a higher one is (the tables are nested).
  for (int level = int(isa); level >= 0; --level) {
    if (const KernelTable* t = table_for(Isa(level))) return *t;
  }
  return *scalar_kernels();
}

}  // namespace cpu

std::string_view active_isa() { return cpu::active_kernels().name; }

void set_isa_cap(std::string_view isa) {
  cpu::g_cap.store(isa.empty() ? int(cpu::env_cap()) : int(cpu::parse_isa(isa)), std::memory_order_release);
}

std::vector<std::string> supported_isas() {
  std::vector<std::string> out;
  const int top = int(cpu::detected_isa());
  for (int level = 0; level <= top; ++level) {
    if (const auto* t = cpu::table_for(cpu::Isa(level))) out.emplace_back(t->name);
  }
  return out;
}

}  // namespace w4a16

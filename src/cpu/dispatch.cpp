// The one place that knows which ISA runs: cpuid + xgetbv (cpu_features) capped by W4A16_ISA or
// set_isa_cap(). Kernels never test CPU features themselves.
#include "cpu/dispatch.hpp"

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <span>
#include <string_view>

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
std::atomic<int> g_dot{-1};  // -1: the vendor rule, unless W4A16_BF16_DOT is set

int dot_from_rule() {
  const char* env = std::getenv("W4A16_BF16_DOT");
  if (env && *env) {
    const std::string_view v(env);
    if (v == "1") return 1;
    if (v == "0") return 0;
    fail(ErrorCode::invalid_argument, "W4A16_BF16_DOT must be 0 or 1, got '{}'", v);
  }
  return cpu_features().vendor == "AuthenticAMD" ? 1 : 0;
}

template <class Entry, class Match>
const Entry* find_in_chain(const KernelTable& table, Match match, std::span<const Entry> KernelTable::*list) {
  for (int level = int(table.isa); level >= 0; --level) {
    const KernelTable* t = level == int(table.isa) ? &table : table_for(Isa(level));
    if (!t) continue;
    bool has_format = false;
    for (const Entry& e : t->*list) {
      if (!match(e)) continue;
      has_format = true;
      if (e.m_min <= e.m_max && match.m >= e.m_min && match.m <= e.m_max) return &e;
    }
    if (has_format) return nullptr;  // a table covers every M of the formats it has
  }
  return nullptr;
}

}  // namespace

const KernelTable* lower_table(const KernelTable& table) {
  for (int level = int(table.isa) - 1; level >= 0; --level) {
    if (const KernelTable* t = table_for(Isa(level))) return t;
  }
  return nullptr;
}

const Q4Entry* find_q4(const KernelTable& table, XFormat x, int64_t m) {
  struct {
    XFormat x;
    int64_t m;
    bool operator()(const Q4Entry& e) const { return e.x == x; }
  } match{x, m};
  return find_in_chain<Q4Entry>(table, match, &KernelTable::q4);
}

const DenseEntry* find_dense(const KernelTable& table, DType weight, XFormat x, int64_t m) {
  struct {
    DType weight;
    XFormat x;
    int64_t m;
    bool operator()(const DenseEntry& e) const { return e.weight == weight && e.x == x; }
  } match{weight, x, m};
  return find_in_chain<DenseEntry>(table, match, &KernelTable::dense);
}

bool prefer_bf16_dot() {
  int dot = g_dot.load(std::memory_order_acquire);
  if (dot < 0) {
    static const int rule = dot_from_rule();
    dot = rule;
  }
  return dot == 1;
}

void set_bf16_dot(int preference) {
  g_dot.store(preference < 0 ? -1 : preference > 0 ? 1 : 0, std::memory_order_release);
}

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

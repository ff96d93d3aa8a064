// The one place that knows which ISA runs: the tables this build has (the generated list of
// src/CMakeLists.txt's w4a16_isa_library lines), each with its own feature test (cpuid + xgetbv,
// cpu_features), capped by W4A16_ISA or set_isa_cap(). Kernels never test CPU features.
#include "cpu/dispatch.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/check.hpp"
#include "cpu/cpu_features.hpp"

namespace w4a16 {
namespace cpu {

#define W4A16_ISA(name) extern const KernelTable kernels_##name;
#include "cpu/isa_list.inc"
#undef W4A16_ISA

std::span<const KernelTable* const> kernel_tables() {
#define W4A16_ISA(name) &kernels_##name,
  static const KernelTable* const tables[] = {
#include "cpu/isa_list.inc"
  };
#undef W4A16_ISA
  return tables;
}

const KernelTable& scalar_kernels() { return kernels_scalar; }

namespace {

// Tables a table falls back to, itself included: the preference order (a longer chain is a
// table that adds to more of the others).
int chain_length(const KernelTable& table) {
  int n = 0;
  for (const KernelTable* t = &table; t; t = t->fallback) ++n;
  return n;
}

bool in_chain(const KernelTable& top, const KernelTable& table) {
  for (const KernelTable* t = &top; t; t = t->fallback) {
    if (t == &table) return true;
  }
  return false;
}

std::string table_names() {
  std::string out;
  for (const KernelTable* t : kernel_tables()) out += (out.empty() ? "" : ", ") + std::string(t->name);
  return out;
}

// The cap: nullptr = none, else the table whose chain bounds the choice; kNotRead until W4A16_ISA
// has been read (on first use).
const KernelTable kNotRead{};
std::atomic<const KernelTable*> g_cap{&kNotRead};
std::atomic<int> g_dot{-1};  // -1: the vendor rule, unless W4A16_BF16_DOT is set

const KernelTable* env_cap() {
  const char* env = std::getenv("W4A16_ISA");
  if (!env || !*env) return nullptr;
  return &kernel_table(env);
}

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

// The tables this CPU can run, most preferred first: longest fallback chain first, and among equal
// chains the later line of the list. Read once: the CPU does not change under a process.
const std::vector<const KernelTable*>& usable_tables() {
  static const std::vector<const KernelTable*> tables = [] {
    std::vector<const KernelTable*> out;
    for (const KernelTable* t : kernel_tables()) {
      if (t->usable(cpu_features())) out.insert(out.begin(), t);  // later lines first among equals
    }
    std::stable_sort(out.begin(), out.end(),
                     [](const KernelTable* a, const KernelTable* b) { return chain_length(*a) > chain_length(*b); });
    return out;
  }();
  return tables;
}

// The most preferred usable table inside the cap's chain (a cap above what the CPU can run leaves
// the best table below it); scalar is always usable.
const KernelTable& best_table(const KernelTable* cap) {
  for (const KernelTable* t : usable_tables()) {
    if (!cap || in_chain(*cap, *t)) return *t;
  }
  return kernels_scalar;
}

template <class Entry, class Match>
const Entry* find_in_chain(const KernelTable& table, Match match, std::span<const Entry> KernelTable::*list) {
  for (const KernelTable* t = &table; t; t = t->fallback) {
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

const KernelTable& kernel_table(std::string_view name) {
  for (const KernelTable* t : kernel_tables()) {
    if (name == t->name) return *t;
  }
  fail(ErrorCode::invalid_argument, "unknown ISA '{}' (expected one of {})", name, table_names());
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

const DequantEntry& find_dequant(const KernelTable& table) {
  for (const KernelTable* t = &table; t; t = t->fallback) {
    if (t->dequant.fn) return t->dequant;
  }
  return kernels_scalar.dequant;
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
  const KernelTable* cap = g_cap.load(std::memory_order_acquire);
  if (cap == &kNotRead) {
    const KernelTable* from_env = env_cap();
    g_cap.compare_exchange_strong(cap, from_env, std::memory_order_acq_rel);  // unless set_isa_cap ran
    cap = g_cap.load(std::memory_order_acquire);
  }
  return best_table(cap);
}

}  // namespace cpu

std::string_view active_isa() { return cpu::active_kernels().name; }

void set_isa_cap(std::string_view isa) {
  const cpu::KernelTable* cap = isa.empty() ? cpu::env_cap() : &cpu::kernel_table(isa);
  cpu::g_cap.store(cap, std::memory_order_release);
}

std::vector<std::string> supported_isas() {
  const auto& usable = cpu::usable_tables();
  std::vector<std::string> out;
  for (auto it = usable.rbegin(); it != usable.rend(); ++it) out.emplace_back((*it)->name);  // lowest first
  return out;
}

}  // namespace w4a16

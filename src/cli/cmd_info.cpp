// `w4a16 info [FILE]`: what this machine can run, and what a safetensors file holds.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cpu/cpu_features.hpp"
#include "cuda/device_query.hpp"
#include "io/quantized_file.hpp"

namespace w4a16::cli {

namespace {

void print_machine() {
  const auto& f = cpu::cpu_features();
  fmt::print("w4a16 {}\n", version());
  fmt::print("cpu: {} ({})\n", f.brand.empty() ? "unknown" : f.brand, f.vendor);
  const auto yn = [](bool b) { return b ? "yes" : "no"; };
  fmt::print("  os saves ymm/zmm state (xgetbv): {} / {}\n", yn(f.os_saves_ymm), yn(f.os_saves_zmm));
  fmt::print("  avx2 {}  fma {}  f16c {}  bmi2 {}\n", yn(f.avx2), yn(f.fma), yn(f.f16c), yn(f.bmi2));
  fmt::print("  avx512f {}  avx512bw {}  avx512vl {}  avx512dq {}\n", yn(f.avx512f), yn(f.avx512bw), yn(f.avx512vl),
             yn(f.avx512dq));
  fmt::print("  avx512_bf16 {}  avx512_vnni {}  avx512_vbmi {}  avx512_fp16 {}\n", yn(f.avx512_bf16), yn(f.avx512_vnni),
             yn(f.avx512_vbmi), yn(f.avx512_fp16));
  fmt::print("  usable: avx2+fma+f16c {}  avx512 {}  avx512bf16 {}\n", yn(f.has_avx2_fma_f16c()),
             yn(f.has_avx512_core()), yn(f.has_avx512_bf16()));
  const auto cuda = cuda::query_devices();
  if (cuda.devices.empty()) {
    fmt::print("cuda: {}\n", cuda.note);
  } else {
    for (size_t i = 0; i < cuda.devices.size(); ++i) fmt::print("cuda:{}: {}\n", i, cuda.devices[i]);
  }
}

void print_file(const std::string& path) {
  const auto file = io::SafetensorsFile::open(path);
  fmt::print("\n{}: {} tensors\n", path, file.tensors().size());
  for (const auto& t : file.tensors()) {
    fmt::print("  {:<56} {:<5} [{}]\n", t.name, io::st_dtype_name(t.dtype), fmt::join(t.shape, ", "));
  }
  const auto modules = io::quantized_modules(file);
  if (modules.empty()) return;
  fmt::print("quantized layers: {}\n", modules.size());
  for (const auto& module : modules) {
    const QuantizedWeight w = io::read_quantized(file, module);
    const double bits = 8.0 * double(w.codes().size() + w.scales().size() + w.zeros().size()) / double(w.n() * w.k());
    fmt::print("  {:<48} N={} K={} g={} {} scales={} act-order={} bias={} ({:.3f} bits/weight)\n", module, w.n(), w.k(),
               w.group_size(), to_string(w.zero_mode()), to_string(w.scale_dtype()), w.has_perm() ? "yes" : "no",
               w.has_bias() ? "yes" : "no", bits);
  }
}

}  // namespace

Command register_info(CLI::App& app) {
  auto file = std::make_shared<std::string>();
  auto* sub = app.add_subcommand("info", "CPU/GPU features, and the tensors and quantized layers of a file");
  sub->add_option("file", *file, "a safetensors file to describe")->check(CLI::ExistingFile);
  return {sub, [file] {
            print_machine();
            if (!file->empty()) print_file(*file);
          }};
}

}  // namespace w4a16::cli

// Fuzz target for the GGUF reader and importers (src/io/gguf.*, src/io/import_gguf.*).
//
// Contract under test: for any bytes, GgufFile::parse either throws w4a16::Error or returns a file
// whose every tensor span lies inside the input, aligned and disjoint from the others, whose
// lookups find every tensor and key, and whose metadata renders as valid JSON. On an accepted file,
// dequantize_gguf_tensor and import_gguf_weight either throw w4a16::Error or return values that
// agree with each other: Q4_0 exactly, Q4_1 / Q4_K within the bound of import_gguf.hpp. An accepted
// file also goes through convert()'s whole path (layouts built from its dims, metadata rendered,
// the output checked and written), and when convert succeeds every layer of its output loads:
// convert never writes what load refuses. Any other exception, crash, sanitizer report or failed
// check below is a bug.
#include "gguf_fuzz.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <span>
#include <utility>
#include <vector>

#include "io/gguf.hpp"
#include "io/import_gguf.hpp"
#include "scratch_dir.hpp"
#include "w4a16/w4a16.hpp"

namespace w4a16::fuzz::gguf {
Stats& stats() {
  static Stats counters;
  return counters;
}
}  // namespace w4a16::fuzz::gguf

namespace {

using w4a16::fuzz::gguf::stats;

void check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "gguf_fuzz: invariant violated: %s\n", what);
    std::abort();
  }
}

double ulp_f32(float x) {
  const float a = std::fabs(x);
  if (a < std::numeric_limits<float>::min()) return std::ldexp(1.0, -149);
  return std::ldexp(1.0, std::ilogb(a) - 23);
}

// import_gguf_weight's values against ggml's formulas (dequantize_gguf_tensor).
void check_import(const w4a16::io::GgufFile& file, const w4a16::io::GgufTensor& t, const std::vector<float>& ref) {
  using namespace w4a16;
  ++stats().weights_tried;
  const QuantizedWeight w = io::import_gguf_weight(file, t);
  ++stats().weights_loaded;
  check(w.n() == t.dims[1] && w.k() == t.dims[0] && w.group_size() == 32, "imported shape");
  for (int64_t row = 0; row < w.n(); ++row) {
    for (int64_t col = 0; col < w.k(); ++col) {
      const float ours = w.value(row, col);
      const float ggml = ref[size_t(row * w.k() + col)];
      if (ours == ggml) continue;
      check(t.type != io::GgmlType::Q4_0, "Q4_0 import is exact");
      const float zf = w.zero_float(row, col / 32);
      const double bound = ulp_f32(zf) / 2 + ulp_f32(ours) / 2 + ulp_f32(ggml) / 2;
      check(std::fabs(double(ours) - double(ggml)) <= bound, "Q4_1/Q4_K import within the documented bound");
    }
  }
}

// convert() on the bytes as a file; when it succeeds, every quantized layer it wrote must load.
void check_convert(std::span<const std::byte> bytes) {
  using namespace w4a16;
  const auto src = w4a16::fuzz::scratch_dir() / "in.gguf", dst = w4a16::fuzz::scratch_dir() / "out.safetensors";
  {
    std::ofstream out(src, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    check(out.good(), "scratch input written");
  }
  ++stats().converts_tried;
  try {
    convert(src, dst);
  } catch (const Error& e) {
    check(e.code() != ErrorCode::internal, "convert refuses with a named error, never internal");
    return;
  }
  ++stats().converted;
  for (const std::string& layer : list_quantized(dst)) (void)load_quantized(dst, layer);
}

void exercise(std::span<const std::byte> bytes) {
  using namespace w4a16;
  const io::GgufFile file = io::GgufFile::parse(bytes);
  ++stats().parsed;

  check(file.version() == 2 || file.version() == 3, "version");
  check(file.alignment() != 0 && (file.alignment() & (file.alignment() - 1)) == 0, "alignment is a power of two");
  check(file.data_offset() <= bytes.size(), "data section inside the input");
  for (const io::GgufKeyValue& kv : file.metadata()) {
    check(file.find_metadata(kv.key) == &kv.value, "find_metadata() returns the value");
  }
  std::vector<std::pair<uint64_t, uint64_t>> ranges;  // [offset, offset + nbytes) of each non-empty tensor
  for (const io::GgufTensor& t : file.tensors()) {
    check(file.find(t.name) == &t, "find() returns the tensor");
    check(t.data.size() == t.nbytes, "span size == nbytes");
    check(t.data.empty() ||
              (t.data.data() >= bytes.data() && t.data.data() + t.data.size() <= bytes.data() + bytes.size()),
          "tensor span inside the input");
    check(t.offset % file.alignment() == 0, "offset aligned");
    check(t.n_dims <= io::kGgufMaxDims && t.numel() >= 0, "dims");
    if (t.nbytes != 0) ranges.emplace_back(t.offset, t.offset + t.nbytes);
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) check(ranges[i].first >= ranges[i - 1].second, "tensors are disjoint");

  if (bytes.size() <= (1u << 20)) {
    check(nlohmann::json::accept(file.metadata_json()), "metadata_json() is valid JSON");
  }

  int64_t elements = 0;
  for (const io::GgufTensor& t : file.tensors()) elements += std::min<int64_t>(t.numel(), int64_t(1) << 20);
  if (bytes.size() <= (1u << 20) && elements <= (int64_t(1) << 20)) check_convert(bytes);  // bounded work per input

  for (const io::GgufTensor& t : file.tensors()) {
    if (t.numel() > (int64_t(1) << 16)) continue;  // bounded work per input
    std::vector<float> ref;
    try {
      ref = io::dequantize_gguf_tensor(t);
      ++stats().dequantized;
    } catch (const Error& e) {
      check(e.code() == ErrorCode::unsupported, "dequantize refuses only unsupported types");
      continue;
    }
    check(int64_t(ref.size()) == t.numel(), "dequantize size");
    if (!io::gguf_weight_importable(t.type)) continue;
    try {
      check_import(file, t, ref);
    } catch (const Error&) {
      // Not 2-D, or a non-finite fp16 scale: refused, fine.
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ++stats().inputs;
  try {
    exercise(std::span<const std::byte>(reinterpret_cast<const std::byte*>(data), size));
  } catch (const w4a16::Error&) {
    // Rejected input: the expected outcome for most inputs.
  }
  return 0;
}

// Fuzz target for the safetensors reader and the quantized-layer reader.
//
// Contract under test: for any bytes, SafetensorsFile::parse either throws w4a16::Error or
// returns a file whose every tensor span lies inside the input; read_quantized on every listed
// module either throws w4a16::Error or returns a QuantizedWeight that matches the file. Any other
// exception, crash, sanitizer report or failed check below is a bug.
#include "safetensors_fuzz.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>

#include "io/quantized_file.hpp"
#include "io/safetensors.hpp"

namespace w4a16::fuzz {
Stats& stats() {
  static Stats counters;
  return counters;
}
}  // namespace w4a16::fuzz

namespace {

void check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "safetensors_fuzz: invariant violated: %s\n", what);
    std::abort();
  }
}

void exercise(std::span<const std::byte> bytes) {
  using namespace w4a16;
  const io::SafetensorsFile file = io::SafetensorsFile::parse(bytes);
  ++fuzz::stats().parsed;

  // Every accepted tensor lies inside the input, and the tensors tile the data buffer.
  uint64_t covered = 0;
  for (const io::TensorInfo& tensor : file.tensors()) {
    const auto data = file.data(tensor);
    check(data.size() == tensor.nbytes(), "span size == nbytes");
    check(data.empty() || (data.data() >= bytes.data() && data.data() + data.size() <= bytes.data() + bytes.size()),
          "tensor span inside the input");
    check(uint64_t(tensor.numel()) * io::st_dtype_size(tensor.dtype) == tensor.nbytes(), "numel * size == nbytes");
    check(tensor.begin == covered, "tensors are contiguous");
    covered = tensor.end;
    check(file.find(tensor.name) == &tensor, "find() returns the tensor");
  }

  for (const std::string& module : io::quantized_modules(file)) {
    try {
      ++fuzz::stats().layers_tried;
      const QuantizedWeight w = io::read_quantized(file, module);
      ++fuzz::stats().layers_loaded;
      const io::TensorInfo* codes = file.find(module + ".w4a16.codes");
      check(codes != nullptr && codes->nbytes() == w.codes().size(), "codes match the file");
      // Dequantize small layers end to end (bounded: the codes alone hold N*K/2 input bytes).
      if (w.n() * w.k() <= (int64_t(1) << 16)) {
        const std::vector<float> values = dequantize(w);
        check(int64_t(values.size()) == w.n() * w.k(), "dequantize size");
      }
    } catch (const Error&) {
      // Rejected layer: fine.
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ++w4a16::fuzz::stats().inputs;
  try {
    exercise(std::span<const std::byte>(reinterpret_cast<const std::byte*>(data), size));
  } catch (const w4a16::Error&) {
    // Rejected input: the expected outcome for most inputs.
  }
  return 0;
}

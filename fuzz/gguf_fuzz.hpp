// Counters of the GGUF fuzz target, so a driver can report how deep its inputs got.
#pragma once

#include <cstddef>

namespace w4a16::fuzz::gguf {

struct Stats {
  size_t inputs = 0;          // calls of LLVMFuzzerTestOneInput
  size_t parsed = 0;          // inputs GgufFile::parse accepted
  size_t dequantized = 0;     // tensors dequantize_gguf_tensor returned
  size_t weights_tried = 0;   // import_gguf_weight calls
  size_t weights_loaded = 0;  // import_gguf_weight calls that returned a layer
  size_t converts_tried = 0;  // inputs given to convert()
  size_t converted = 0;       // convert() calls that wrote a file (all of whose layers then loaded)
};

Stats& stats();

}  // namespace w4a16::fuzz::gguf

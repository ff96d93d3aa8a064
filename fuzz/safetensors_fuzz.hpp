// Counters of the safetensors fuzz target, so a driver can report how deep its inputs got.
#pragma once

#include <cstddef>

namespace w4a16::fuzz {

struct Stats {
  size_t inputs = 0;         // calls of LLVMFuzzerTestOneInput
  size_t parsed = 0;         // inputs SafetensorsFile::parse accepted
  size_t layers_tried = 0;   // read_quantized calls
  size_t layers_loaded = 0;  // read_quantized calls that returned a layer
};

Stats& stats();

}  // namespace w4a16::fuzz

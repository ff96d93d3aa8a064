// Counters of the quantization_config fuzz target, so a driver can report how deep its inputs got.
#pragma once

#include <cstddef>

namespace w4a16::fuzz::quant_config {

struct Stats {
  size_t parsed = 0;     // inputs parse_quant_config returned a config for
  size_t converts = 0;   // convert() calls on a checkpoint with that config
  size_t converted = 0;  // convert() calls that wrote a file (all of whose layers then loaded)
};

Stats& stats();

}  // namespace w4a16::fuzz::quant_config

// The JSON header of a safetensors file, read in one streaming pass.
//
// Why not parse it into a JSON document first: a header may be 100 MB, and a document of it costs
// 20-40x its size (52 M integers in an ignored key took 2 GB), while a duplicate-key check on a
// document parser made 80k entries take 28 s. This reader walks nlohmann's SAX events with a
// small state machine, keeps only what the format defines (names, dtypes, shapes, offsets,
// string metadata), skips everything else without storing it, and bounds what it keeps:
// time is linear in the header size and memory a small multiple of it (docs/formats.md,
// "safetensors container").
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "io/safetensors.hpp"

namespace w4a16::io {

struct SafetensorsHeader {
  std::vector<TensorInfo> tensors;  // in header order; offsets checked against nothing yet
  std::map<std::string, std::string> metadata;
};

// Parses and validates the header text (everything but the data-buffer bounds and tiling, which
// need the file size). Throws Error(format) naming `source` and the offending tensor or key.
SafetensorsHeader parse_safetensors_header(std::string_view text, std::string_view source);

}  // namespace w4a16::io

// Replay and mutation driver for the GGUF fuzz target, for compilers without libFuzzer (and as a
// quick ctest smoke test under any build, sanitizers included).
//
//   gguf_fuzz_replay [--mutations N] [--seed S] PATH...
//
// Runs every file given (directories: every regular file inside, sorted), then N deterministic
// mutations of each. A mutation applies 1 to 4 edits drawn from: bit flips, byte overwrites with
// "interesting" values, byte insertions and deletions, truncation, overwrites of the fixed header
// fields (version, tensor count, key count), overwrites of 4 or 8 bytes anywhere with values that
// GGUF fields hold at their edges (type ids, counts, lengths, 2^60, offsets near the file size),
// and splices from another seed. The same arguments always produce the same inputs; with
// W4A16_FUZZ_VERBOSE=1 the driver names the seed file and mutation index before each run.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "gguf_fuzz.hpp"
#include "replay_driver.hpp"

using w4a16::fuzz::Rng;

namespace {

using Bytes = std::vector<uint8_t>;

constexpr uint8_t kInterestingBytes[] = {0x00, 0x01, 0x02, 0x03, 0x07, 0x08, 0x09, 0x0C, 0x0D, 0x10,
                                         0x1F, 0x20, 0x40, 0x7C, 0x7F, 0x80, 0xFE, 0xFF, 'G',  'U'};

void write_le(Bytes& b, size_t pos, uint64_t v, size_t width) {
  if (pos + width > b.size()) return;
  for (size_t i = 0; i < width; ++i) b[pos + i] = uint8_t(v >> (8 * i));
}

uint64_t edge_value(const Bytes& b, size_t pos, Rng& rng) {
  const uint64_t choices[] = {0,
                              1,
                              2,
                              3,
                              4,
                              5,
                              7,
                              8,
                              9,
                              12,
                              13,
                              16,
                              24,
                              28,
                              30,
                              31,
                              32,
                              33,
                              64,
                              255,
                              256,
                              4096,
                              65535,
                              65536,
                              0x7FFFFFFFull,
                              0x80000000ull,
                              0xFFFFFFFFull,
                              1ull << 32,
                              1ull << 60,
                              1ull << 62,
                              1ull << 63,
                              ~0ull,
                              b.size(),
                              b.size() - std::min(pos, b.size()),
                              (b.size() + 31) / 32 * 32,
                              rng.next()};
  return choices[rng.below(std::size(choices))];
}

void mutate_once(Bytes& b, const std::vector<Bytes>& seeds, Rng& rng) {
  switch (rng.below(9)) {
    case 0:  // bit flip
      if (!b.empty()) b[rng.below(b.size())] ^= uint8_t(1u << rng.below(8));
      break;
    case 1:  // interesting byte
      if (!b.empty()) b[rng.below(b.size())] = kInterestingBytes[rng.below(std::size(kInterestingBytes))];
      break;
    case 2: {  // random byte insertion(s)
      const size_t pos = rng.below(b.size() + 1);
      const size_t count = 1 + rng.below(8);
      for (size_t i = 0; i < count; ++i) b.insert(b.begin() + std::ptrdiff_t(pos), uint8_t(rng.next()));
      break;
    }
    case 3: {  // deletion
      if (b.empty()) break;
      const size_t pos = rng.below(b.size());
      const size_t count = std::min(b.size() - pos, 1 + rng.below(16));
      b.erase(b.begin() + std::ptrdiff_t(pos), b.begin() + std::ptrdiff_t(pos + count));
      break;
    }
    case 4:  // truncation
      b.resize(rng.below(b.size() + 1));
      break;
    case 5: {  // a fixed header field: version (offset 4, u32), tensor count (8, u64), key count (16, u64)
      const size_t field = rng.below(3);
      const size_t pos = field == 0 ? 4 : field == 1 ? 8 : 16;
      write_le(b, pos, edge_value(b, pos, rng), field == 0 ? 4 : 8);
      break;
    }
    case 6:    // a u32 anywhere (types, n_dims)
    case 7: {  // a u64 anywhere (lengths, counts, dims, offsets)
      if (b.empty()) break;
      const size_t pos = rng.below(b.size());
      write_le(b, pos, edge_value(b, pos, rng), rng.below(2) ? 4 : 8);
      break;
    }
    default:  // splice a chunk of another seed
      w4a16::fuzz::splice_from_seed(b, seeds, rng);
      break;
  }
}

}  // namespace

int main(int argc, char** argv) {
  return w4a16::fuzz::replay_main<Bytes>(argc, argv, "gguf_fuzz_replay", mutate_once, [] {
    const auto& stats = w4a16::fuzz::gguf::stats();
    std::printf("  %zu parsed as GGUF, %zu tensors dequantized, %zu weight imports, %zu weights loaded\n", stats.parsed,
                stats.dequantized, stats.weights_tried, stats.weights_loaded);
    std::printf("  %zu converts tried, %zu wrote a file whose every layer loaded\n", stats.converts_tried,
                stats.converted);
  });
}

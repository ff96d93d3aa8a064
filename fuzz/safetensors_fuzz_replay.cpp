// Replay and mutation driver for LLVMFuzzerTestOneInput, for compilers without libFuzzer (and as
// a quick ctest smoke test under any build, sanitizers included).
//
//   safetensors_fuzz_replay [--mutations N] [--seed S] PATH...
//
// Runs every file given (directories: every regular file inside, sorted), then N deterministic
// mutations of each. A mutation applies 1 to 4 edits drawn from: bit flips, byte overwrites with
// "interesting" values, byte insertions and deletions, truncation, edits of the u64 header length,
// number and token edits inside the JSON header (with the header length fixed up afterwards, so
// the edit reaches the JSON and layer checks rather than the length check), and splices from
// another seed. The same arguments always produce the same inputs, so a failure reproduces by
// rerunning; with W4A16_FUZZ_VERBOSE=1 in the environment the driver names the seed file and
// mutation index before each run, which locates the input that crashed.
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

#include "replay_driver.hpp"
#include "safetensors_fuzz.hpp"

using w4a16::fuzz::Rng;

namespace {

using Bytes = std::vector<uint8_t>;

constexpr uint8_t kInterestingBytes[] = {0x00, 0x01, 0x7F, 0x80, 0xFF, '{', '}', '[',  ']',  '"',  ',',  ':',
                                         '-',  '0',  '1',  '9',  '.',  'e', ' ', '\\', 0x10, 0x11, 0x7C, 0xC0};

// Tokens that the header holds; replacing one with another keeps most of the JSON valid.
constexpr std::string_view kTokens[] = {
    "\"F16\"",
    "\"BF16\"",
    "\"F32\"",
    "\"U8\"",
    "\"I8\"",
    "\"I32\"",
    "\"I64\"",
    "\"F64\"",
    "\"BOOL\"",
    "\"F8_E4M3\"",
    "\"shape\"",
    "\"dtype\"",
    "[]",
    "[0]",
    "[1,1]",
    "0",
    "1",
    "2",
    "8",
    "16",
    "17",
    "-1",
    "1.5",
    "null",
    "true",
    "false",
    "{}",
    "\"\"",
    "\\\"sym\\\"",
    "\\\"asym\\\"",
    "\\\"float\\\"",
    "\\\"fp16\\\"",
    "\\\"bf16\\\"",
    "\\\"fp32\\\"",
    "\"data_offsets\"",
    "\"__metadata__\"",
    "\\\"version\\\"",
    "\\\"act_order\\\"",
    "\\\"group_size\\\"",
    "4294967296",
    "18446744073709551615",
    "9223372036854775807",
    ".w4a16",
    ".bias",
};

uint64_t read_u64(const Bytes& b) {
  uint64_t v = 0;
  for (int i = 0; i < 8 && i < int(b.size()); ++i) v |= uint64_t(b[size_t(i)]) << (8 * i);
  return v;
}

void write_u64(Bytes& b, uint64_t v) {
  if (b.size() < 8) b.resize(8, 0);
  for (int i = 0; i < 8; ++i) b[size_t(i)] = uint8_t(v >> (8 * i));
}

// The header as [8, 8 + length) when the length field is in range, else nothing.
bool header_range(const Bytes& b, size_t& begin, size_t& end) {
  if (b.size() < 8) return false;
  const uint64_t length = read_u64(b);
  if (length > b.size() - 8) return false;
  begin = 8;
  end = 8 + size_t(length);
  return true;
}

// Replaces b[pos, pos + count) with `text`, keeping the header length field in sync when the edit
// lies inside the header (most of the time; sometimes it is left stale on purpose).
void splice_header(Bytes& b, size_t pos, size_t count, std::string_view text, Rng& rng) {
  size_t hb = 0, he = 0;
  const bool in_header = header_range(b, hb, he) && pos >= hb && pos + count <= he;
  b.erase(b.begin() + std::ptrdiff_t(pos), b.begin() + std::ptrdiff_t(pos + count));
  b.insert(b.begin() + std::ptrdiff_t(pos), text.begin(), text.end());
  if (in_header && !rng.chance(10)) write_u64(b, uint64_t(he - hb) - count + text.size());
}

void mutate_once(Bytes& b, const std::vector<Bytes>& seeds, Rng& rng) {
  size_t hb = 0, he = 0;
  switch (rng.below(11)) {
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
    case 5: {  // header length edit
      const uint64_t length = read_u64(b);
      const uint64_t choices[] = {length + 1,
                                  length - 1,
                                  length + 8,
                                  length - 8,
                                  0,
                                  b.size() >= 8 ? b.size() - 8 : 0,
                                  b.size() >= 8 ? b.size() - 7 : 1,
                                  100ull * 1024 * 1024,
                                  100ull * 1024 * 1024 + 1,
                                  ~0ull,
                                  1ull << 63,
                                  rng.next()};
      write_u64(b, choices[rng.below(std::size(choices))]);
      break;
    }
    case 6: {  // number edit inside the header
      if (!header_range(b, hb, he) || he == hb) break;
      const size_t start = hb + rng.below(he - hb);
      size_t pos = start;
      while (pos < he && !(b[pos] >= '0' && b[pos] <= '9')) ++pos;
      if (pos == he) break;
      size_t digits = pos;
      while (digits < he && b[digits] >= '0' && b[digits] <= '9') ++digits;
      std::string replacement;
      switch (rng.below(4)) {
        case 0:
          replacement = std::to_string(rng.below(64));
          break;
        case 1: {
          uint64_t value = 0;
          for (size_t i = pos; i < digits && i < pos + 18; ++i) value = value * 10 + (b[i] - '0');
          replacement = std::to_string(value + (rng.chance(50) ? 1 : uint64_t(-1)));
          break;
        }
        case 2:
          replacement = std::to_string(rng.next() >> rng.below(64));
          break;
        default:
          replacement = std::string(1, char('0' + rng.below(10)));
          break;
      }
      splice_header(b, pos, digits - pos, replacement, rng);
      break;
    }
    case 7: {  // token replacement inside the header
      if (!header_range(b, hb, he) || he == hb) break;
      const std::string_view header(reinterpret_cast<const char*>(b.data()) + hb, he - hb);
      const std::string_view from = kTokens[rng.below(std::size(kTokens))];
      const size_t found = header.find(from, rng.below(header.size()));
      const size_t at = found != std::string_view::npos ? found : header.find(from);
      if (at == std::string_view::npos) break;
      splice_header(b, hb + at, from.size(), kTokens[rng.below(std::size(kTokens))], rng);
      break;
    }
    case 8: {  // token insertion inside the header
      if (!header_range(b, hb, he)) break;
      splice_header(b, hb + rng.below(he - hb + 1), 0, kTokens[rng.below(std::size(kTokens))], rng);
      break;
    }
    case 9: {  // data-buffer byte edit (codes, scales, zeros, perm values)
      if (!header_range(b, hb, he) || he >= b.size()) break;
      const size_t pos = he + rng.below(b.size() - he);
      const uint8_t values[] = {0x00, 0x11, 0x7C, 0x7E, 0xFF, 0x80, uint8_t(rng.next())};
      b[pos] = values[rng.below(std::size(values))];
      break;
    }
    default:  // splice a chunk of another seed
      w4a16::fuzz::splice_from_seed(b, seeds, rng);
      break;
  }
}

}  // namespace

int main(int argc, char** argv) {
  return w4a16::fuzz::replay_main<Bytes>(argc, argv, "safetensors_fuzz_replay", mutate_once, [] {
    const auto& stats = w4a16::fuzz::stats();
    std::printf("  %zu parsed as safetensors, %zu quantized-layer reads, %zu layers loaded\n", stats.parsed,
                stats.layers_tried, stats.layers_loaded);
  });
}

// Replay and mutation driver for the quant_config fuzz target, for compilers without libFuzzer
// (and as the ctest smoke test quant_config_fuzz_smoke, sanitizers included).
//
//   quant_config_fuzz_replay [--mutations N] [--seed S] PATH...
//
// Runs every file given (directories: every regular file inside, sorted), then N deterministic
// mutations of each: bit flips, byte insertions and deletions, truncation, replacement of a JSON
// token by another from a list of the config's own tokens (so most mutants stay valid JSON and
// reach the field checks), and splices from another seed. The same arguments always produce the
// same inputs; W4A16_FUZZ_VERBOSE=1 names each input before it runs.
#include <algorithm>
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

#include "quant_config_fuzz.hpp"
#include "replay_driver.hpp"

using w4a16::fuzz::Rng;

namespace {

constexpr std::string_view kTokens[] = {"\"gptq\"",
                                        "\"awq\"",
                                        "\"compressed-tensors\"",
                                        "\"exl2\"",
                                        "\"gptq_v2\"",
                                        "\"gemm\"",
                                        "\"gemv\"",
                                        "\"pack-quantized\"",
                                        "\"group\"",
                                        "\"channel\"",
                                        "\"tensor\"",
                                        "\"Linear\"",
                                        "\"re:.*\"",
                                        "\"int\"",
                                        "\"float\"",
                                        "4",
                                        "8",
                                        "3",
                                        "-1",
                                        "0",
                                        "128",
                                        "1e309",
                                        "-9223372036854775809",
                                        "18446744073709551615",
                                        "4.0",
                                        "true",
                                        "false",
                                        "null",
                                        "[]",
                                        "{}",
                                        "\"\"",
                                        "\"bits\"",
                                        "\"group_size\"",
                                        "\"quant_method\"",
                                        "\"config_groups\"",
                                        "\"weights\"",
                                        "\"targets\"",
                                        "\"ignore\"",
                                        "\"num_bits\"",
                                        "\"symmetric\"",
                                        "\"strategy\"",
                                        "\"actorder\"",
                                        "\"version\"",
                                        "\"zero_point\"",
                                        "\"desc_act\"",
                                        "\"sym\"",
                                        "\"checkpoint_format\"",
                                        "\"format\"",
                                        "\"input_activations\"",
                                        "[[[[[[[[",
                                        "\"\\u0000\"",
                                        "\"\\ud800\""};

using Bytes = std::string;

void mutate_once(Bytes& b, const std::vector<Bytes>& seeds, Rng& rng) {
  switch (rng.below(6)) {
    case 0:
      if (!b.empty()) b[rng.below(b.size())] ^= char(1u << rng.below(8));
      break;
    case 1:
      b.insert(rng.below(b.size() + 1), 1, char(rng.next()));
      break;
    case 2:
      if (!b.empty()) {
        const size_t pos = rng.below(b.size());
        b.erase(pos, std::min(b.size() - pos, 1 + rng.below(16)));
      }
      break;
    case 3:
      b.resize(rng.below(b.size() + 1));
      break;
    case 4: {  // replace a token (a quoted string, a number or a literal) with another
      if (b.empty()) break;
      size_t pos = rng.below(b.size());
      size_t end = pos;
      if (b[pos] == '"') {
        end = b.find('"', pos + 1);
        end = end == Bytes::npos ? b.size() : end + 1;
      } else {
        while (end < b.size() && std::strchr(",:{}[] \n\"", b[end]) == nullptr) ++end;
        if (end == pos) end = pos + 1;
      }
      const std::string_view token = kTokens[rng.below(std::size(kTokens))];
      b.replace(pos, end - pos, token);
      break;
    }
    default:  // splice a chunk of another seed
      w4a16::fuzz::splice_from_seed(b, seeds, rng);
      break;
  }
}

}  // namespace

int main(int argc, char** argv) {
  return w4a16::fuzz::replay_main<Bytes>(argc, argv, "quant_config_fuzz_replay", mutate_once, [] {
    const auto& stats = w4a16::fuzz::quant_config::stats();
    std::printf("  %zu configs parsed, %zu converts tried, %zu wrote a file whose every layer loaded\n", stats.parsed,
                stats.converts, stats.converted);
  });
}

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

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

struct Rng {  // splitmix64: identical on every platform
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return n == 0 ? 0 : size_t(next() % n); }
};

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
    default: {  // splice
      const Bytes& other = seeds[rng.below(seeds.size())];
      if (other.empty()) break;
      const size_t from = rng.below(other.size());
      const size_t count = std::min(other.size() - from, 1 + rng.below(64));
      b.insert(rng.below(b.size() + 1), other, from, count);
      break;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  size_t mutations = 0;
  uint64_t seed = 1;
  std::vector<std::filesystem::path> files;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--mutations" && i + 1 < argc) {
      mutations = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--seed" && i + 1 < argc) {
      seed = std::strtoull(argv[++i], nullptr, 10);
    } else if (std::filesystem::is_directory(arg)) {
      std::vector<std::filesystem::path> inside;
      for (const auto& e : std::filesystem::directory_iterator(arg)) {
        if (e.is_regular_file()) inside.push_back(e.path());
      }
      std::sort(inside.begin(), inside.end());
      files.insert(files.end(), inside.begin(), inside.end());
    } else {
      files.emplace_back(arg);
    }
  }
  if (files.empty()) {
    std::fprintf(stderr, "usage: quant_config_fuzz_replay [--mutations N] [--seed S] PATH...\n");
    return 2;
  }
  const bool verbose = std::getenv("W4A16_FUZZ_VERBOSE") != nullptr;
  std::vector<Bytes> seeds;
  for (const auto& path : files) {
    std::ifstream in(path, std::ios::binary);
    seeds.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  Rng rng{seed};
  size_t runs = 0;
  for (size_t s = 0; s < seeds.size(); ++s) {
    for (size_t m = 0; m <= mutations; ++m) {
      Bytes input = seeds[s];
      if (m > 0) {
        const size_t edits = 1 + rng.below(4);
        for (size_t e = 0; e < edits; ++e) mutate_once(input, seeds, rng);
      }
      if (verbose) std::fprintf(stderr, "%s #%zu\n", files[s].string().c_str(), m);
      LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
      ++runs;
    }
  }
  std::printf("quant_config_fuzz_replay: %zu inputs from %zu seeds\n", runs, seeds.size());
  return 0;
}

// Module-name patterns (io/module_pattern.hpp) and the compressed-tensors targets built on them:
// the same answers as Python's re.match on the patterns checkpoints use and on each construct of the
// subset, the same refusals as re.compile plus a named refusal for each construct outside the
// subset, and the guarantees a hostile config.json cannot break: matching linear in the name with
// bounded stack, bounded parsing depth, errors beyond the limits, and each regex compiled once,
// when the config is read.
#include "io/module_pattern.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "io/import_compressed_tensors.hpp"
#include "io/quant_config.hpp"
#include "support/checkpoint_builder.hpp"
#include "support/io_test_util.hpp"

namespace w4a16 {
namespace {

using io::ModulePattern;
using test::expect_error;

bool python_match(std::string_view pattern, std::string_view name) {
  return ModulePattern::compile(pattern).matches(name);
}

// Module names from Llama, Mixtral, Qwen-MoE and vision-language checkpoints, and targets and
// ignore entries of their llm-compressor configs. The expected answers were generated once with
// Python 3.11's `re.match(pattern, name) is not None` and are hard-coded: one character per name
// of kNames, '1' = match.
const std::vector<std::string> kNames = {
    "model.layers.0.self_attn.q_proj",
    "model.layers.12.self_attn.k_proj",
    "model.layers.3.self_attn.o_proj",
    "model.layers.31.mlp.down_proj",
    "model.layers.7.mlp.gate",
    "model.layers.7.mlp.gate_proj",
    "model.layers.2.block_sparse_moe.gate",
    "model.layers.5.mlp.experts.17.up_proj",
    "model.layers.5.mlp.shared_expert_gate",
    "model.layers.0.self_attn.q_proj_extra",
    "lm_head",
    "model.embed_tokens",
    "vision_tower.blocks.0.attn.qkv",
    "model.norm",
    "",
};

struct CheckpointCase {
  const char* pattern;
  const char* python;  // re.match per name of kNames
};

const CheckpointCase kCheckpointCases[] = {
    {R"(.*q_proj$)", "100000000000000"},
    {R"(.*self_attn.(q|k|v)_proj$)", "110000000000000"},
    {R"(model.layers.\d+.mlp.down_proj)", "000100000000000"},
    {R"(.*lm_head)", "000000000010000"},
    {R"(lm_head)", "000000000010000"},
    {R"(.*mlp.gate$)", "000010000000000"},
    {R"(.*mlp\.gate$)", "000010000000000"},
    {R"(.*self_attn\..*)", "111000000100000"},
    {R"(.*(gate|up)_proj$)", "000001010000000"},
    {R"(model\.layers\.[0-9]+\.self_attn\.o_proj$)", "001000000000000"},
    {R"(.*\.experts\.\d+\.(gate|up|down)_proj$)", "000000010000000"},
    {R"(.*vision_tower.*)", "000000000000100"},
    {R"(.*block_sparse_moe.gate)", "000000100000000"},
    {R"(^model\.layers\.(0|1|2)\.)", "100000100100000"},
    {R"(.*layers\.([0-9]|1[0-5])\.mlp)", "000011011000000"},
    {R"(.*norm$)", "000000000000010"},
    {R"(.*_proj$)", "111101010000000"},
    {R"(.*embed_tokens)", "000000000001000"},
    {R"(.*shared_expert_gate$)", "000000001000000"},
    {R"(.*mlp\.(?:shared_)?experts?[._].*)", "000000011000000"},
    {R"(model\.layers\.\d{1,2}\.)", "111111111100000"},
    {R"(.*\bq_proj\b)", "100000000000000"},
    {R"([^.]+\.layers)", "111111111100000"},
    {R"(.*?q_proj$)", "100000000000000"},
    {R"(model.layers.\d+.self_attn.[qkv]_proj)", "110000000100000"},
    {R"((?P<prefix>model\.layers\.\d+)\.mlp)", "000111011000000"},
    {R"(.*)", "111111111111111"},
};

TEST(ModulePattern, AgreesWithPythonReMatchOnCheckpointTargets) {
  for (const CheckpointCase& c : kCheckpointCases) {
    const ModulePattern p = ModulePattern::compile(c.pattern);
    ASSERT_EQ(std::string_view(c.python).size(), kNames.size()) << c.pattern;
    for (size_t i = 0; i < kNames.size(); ++i) {
      EXPECT_EQ(p.matches(kNames[i]), c.python[i] == '1') << "re.match('" << c.pattern << "', '" << kNames[i] << "')";
    }
  }
}

struct ConstructCase {
  const char* pattern;
  const char* name;
  bool python;  // re.match(pattern, name) is not None
};

// One or two cases per construct of the subset, non-matches included. Generated once with Python
// 3.11's re.match (flags: re.ASCII, which differs from the default only where marked) and
// hard-coded; non-ASCII text is written as its UTF-8 bytes. (Also checked once, not committed:
// 120,000 random patterns over this subset x random names, every answer and refusal the same as
// Python 3.11's but for the possessive quantifiers, which are refused here.)
const ConstructCase kConstructCases[] = {
    {"abc", "abcd", true},
    {"abc", "ab", false},
    {"abc", "xabc", false},
    {"a.c", "abc", true},
    {"a.c", "a\nc", false},
    {"a\\.c", "abc", false},
    {"a\\.c", "a.c", true},
    {"\\d+", "123x", true},
    {"\\d", "x1", false},
    {"\\D\\W\\S", "a. ", false},
    {"\\D\\W\\S", "a.x", true},
    {"\\w+\\s\\w", "ab c", true},
    {"\\w", "_", true},
    {"\\w", "-", false},
    {"[a-c]+$", "abcabc", true},
    {"[a-c]+$", "abcd", false},
    {"[^a-c]", "d", true},
    {"[^a-c]", "a", false},
    {"[^a-c]", "\n", true},
    {"[]a]", "]", true},
    {"[^]]", "]", false},
    {"[a-]", "-", true},
    {"[-a]", "-", true},
    {"[\\w-]+$", "a-b_c", true},
    {"[\\d.]+$", "1.5", true},
    {"[\\]]", "]", true},
    {"[\\\\]", "\\", true},
    {"[.]", "x", false},
    {"[\\D]", "5", false},
    {"[\\s\\S]", "\n", true},
    {"[a-z0-9_]+$", "layer_12", true},
    {"[\\x41-\\x43]", "B", true},
    {"\\x41", "A", true},
    {"(a|b)*c", "ababc", true},
    {"(a|b)*c", "ababd", false},
    {"a|b|c", "c", true},
    {"a||b", "x", true},
    {"(|a)b", "b", true},
    {"(?:ab)+$", "ababab", true},
    {"(?:ab)+$", "ababa", false},
    {"a*", "", true},
    {"a+", "", false},
    {"a?b", "b", true},
    {"a??b", "ab", true},
    {"a*?b", "aab", true},
    {"a+?b", "b", false},
    {"a{3}", "aa", false},
    {"a{3}", "aaa", true},
    {"a{2,}$", "aaaaa", true},
    {"a{2,}$", "a", false},
    {"a{,2}$", "aaa", false},
    {"a{,2}$", "aa", true},
    {"a{1,3}$", "aaaa", false},
    {"a{1,3}b", "aaab", true},
    {"a{0}b", "b", true},
    {"a{,}$", "aaaa", true},
    {"a{}", "a{}", true},
    {"a{", "a{", true},
    {"a{x}", "a{x}", true},
    {"a{1,2", "a{1,2", true},
    {"{", "{", true},
    {"x{2}?", "xx", true},
    {"a{2,3}?$", "aaa", true},
    {"(ab){2}c", "ababc", true},
    {"((a|b){2}){2}$", "abba", true},
    {"((a|b){2}){2}$", "abb", false},
    {"()*a", "a", true},
    {"(a*)*$", "aaab", false},
    {"(a*)+b", "aab", true},
    {"^abc", "abc", true},
    {"a^b", "ab", false},
    {"abc$", "abc\n", true},
    {"abc$", "abc\n\n", false},
    {"abc\\Z", "abc\n", false},
    {"abc\\Z", "abc", true},
    {"\\Aabc", "abc", true},
    {"ab\\b", "ab.c", true},
    {"ab\\b", "abc", false},
    {"ab\\B", "abc", true},
    {"\\bab", "ab", true},
    {"\\b", "", false},
    {"\\B", "", false},  // Python's \B never matches in an empty string
    {"\\B", "..", true},
    {"\\B", "ab", false},
    {"a$|b", "b", true},
    {"$", "", true},
    {"^$", "", true},
    {"^", "x", true},
    {"\\-\\_\\ \\#", "-_ #", true},
    {"]", "]", true},
    {"}", "}", true},
    {"a\\tb", "a\tb", true},
    {"(?P<n1>a)(?P<m>b)", "ab", true},
    {"caf\xc3\xa9", "caf\xc3\xa9s", true},
    {"caf.$", "caf\xc3\xa9", true},
    {"[^a]$", "\xc3\xa9", true},
    {"[\xc3\xa0-\xc3\xbf]", "\xc3\xa9", true},
    {"\\w", "\xc3\xa9", false},  // the default (Unicode) re.match says true: \w is ASCII here
    {".{2}$", "\xc3\xa9\xc3\xa9", true},
};

TEST(ModulePattern, AgreesWithPythonReMatchOnEachConstruct) {
  for (const ConstructCase& c : kConstructCases) {
    EXPECT_EQ(python_match(c.pattern, c.name), c.python) << "re.match('" << c.pattern << "', '" << c.name << "')";
  }
}

// Python's re.compile refuses each of these (its message in the comment); so does compile, with
// Error(format).
TEST(ModulePattern, RefusesWhatPythonRefuses) {
  const std::pair<const char*, const char*> cases[] = {
      {"(abc", "missing )"},                      // missing ), unterminated subpattern
      {"abc)", "unbalanced parenthesis"},         // unbalanced parenthesis
      {"a**", "multiple repeat"},                 // multiple repeat
      {"a{2}{3}", "multiple repeat"},             // multiple repeat
      {"*a", "nothing to repeat"},                // nothing to repeat
      {"a|*", "nothing to repeat"},               // nothing to repeat
      {"^*", "nothing to repeat"},                // nothing to repeat
      {"\\b+", "nothing to repeat"},              // nothing to repeat
      {"{2}", "nothing to repeat"},               // nothing to repeat
      {"a{3,2}", "min repeat greater than max"},  // min repeat greater than max repeat
      {"[abc", "unterminated character set"},     // unterminated character set
      {"[]", "unterminated character set"},       // unterminated character set
      {"[z-a]", "bad character range"},           // bad character range z-a
      {"[\\d-z]", "bad character range"},         // bad character range \d-z
      {"[a-\\d]", "bad character range"},         // bad character range a-\d
      {"\\q", "bad escape"},                      // bad escape \q
      {"a\\", "bad escape"},                      // bad escape (end of pattern)
      {"\\x4", "incomplete escape"},              // incomplete escape \x4
      {"(?P<1a>x)", "bad group name"},            // bad character in group name '1a'
      {"(?P<a", "bad group name"},                // missing >, unterminated name
      {"(?Q)", "unknown extension"},              // unknown extension ?Q
      {"[\\A]", "bad escape"},                    // bad escape \A
  };
  for (const auto& [pattern, message] : cases) {
    SCOPED_TRACE(pattern);
    expect_error([&] { ModulePattern::compile(pattern); }, ErrorCode::format, message);
  }
}

// Python accepts these; module-name patterns do not support them, and say which construct it is.
TEST(ModulePattern, RefusesUnsupportedConstructsByName) {
  const std::pair<const char*, const char*> cases[] = {
      {"(a)\\1", "backreference"},
      {"(?P<n>a)(?P=n)", "backreference"},
      {"a(?=b)", "lookahead"},
      {"a(?!b)", "negative lookahead"},
      {"(?<=a)b", "lookbehind"},
      {"(?<!a)b", "negative lookbehind"},
      {"(?>a)", "atomic group"},
      {"(?(1)a|b)", "conditional group"},
      {"(?#note)a", "comment"},
      {"(?i)abc", "inline flag"},
      {"(?i:a)", "inline flag"},
      {"(?-i:a)", "inline flag"},
      {"a*+", "possessive"},
      {"a{1,2}+", "possessive"},
      {"\\u0041", "\\u"},
      {"\\N{DIGIT ONE}", "\\N"},
      {"\\0", "octal"},
      {"[\\1]", "octal"},
  };
  for (const auto& [pattern, construct] : cases) {
    SCOPED_TRACE(pattern);
    expect_error([&] { ModulePattern::compile(pattern); }, ErrorCode::format, construct);
    expect_error([&] { ModulePattern::compile(pattern); }, ErrorCode::format, "is not supported");
  }
}

// std::regex recursed once per character here: a 50,000-character name overflowed the stack
// (SIGSEGV). The Pike VM keeps its threads in vectors and its closure stack on the heap.
TEST(ModulePattern, MatchingTimeIsLinearInTheName) {
  const ModulePattern p = ModulePattern::compile(".*q_proj$");
  std::string name(50000, 'x');
  EXPECT_FALSE(p.matches(name));
  name += ".q_proj";
  EXPECT_TRUE(p.matches(name));
  const std::string at_limit(ModulePattern::kMaxNameBytes, 'y');
  EXPECT_FALSE(p.matches(at_limit));
  // 1,000,000 characters is over the name limit: an error that names it, not a crash.
  expect_error([&] { p.matches(std::string(1000000, 'x')); }, ErrorCode::format, "kMaxNameBytes");
  expect_error([&] { p.matches(std::string(ModulePattern::kMaxNameBytes + 1, 'x')); }, ErrorCode::format,
               "longer than the limit of 65536 bytes");
}

// std::regex tried every way to split the a's among the two loops: 21 characters ran past 100 s.
// The Pike VM holds each program counter once per position. No timing assertion: the ctest
// timeout is the guard.
TEST(ModulePattern, NestedLoopsDoNotBacktrack) {
  const ModulePattern p = ModulePattern::compile("(a*)*$");
  for (const size_t n : {size_t(21), size_t(10000)}) {
    EXPECT_FALSE(p.matches(std::string(n, 'a') + "b")) << n;
    EXPECT_TRUE(p.matches(std::string(n, 'a'))) << n;
  }
  const ModulePattern q = ModulePattern::compile("(a|a)*(a|aa)*(a+)+c");
  EXPECT_FALSE(q.matches(std::string(10000, 'a')));
  EXPECT_TRUE(q.matches(std::string(10000, 'a') + "c"));
}

// The parser recurses once per open group, up to kMaxNesting; a deeper pattern is an error, as
// is a longer one, never a stack overflow.
TEST(ModulePattern, ParsingDepthIsBounded) {
  expect_error([&] { ModulePattern::compile(std::string(100000, '(')); }, ErrorCode::format, "kMaxPatternBytes");
  const auto nested = [](int depth) { return std::string(size_t(depth), '(') + "a" + std::string(size_t(depth), ')'); };
  EXPECT_TRUE(ModulePattern::compile(nested(ModulePattern::kMaxNesting)).matches("a"));
  expect_error([&] { ModulePattern::compile(nested(ModulePattern::kMaxNesting + 1)); }, ErrorCode::format,
               "nested deeper than the limit of 256 (ModulePattern::kMaxNesting)");
  expect_error([&] { ModulePattern::compile(std::string(500, '(')); }, ErrorCode::format, "kMaxNesting");
}

TEST(ModulePattern, LimitsAreErrorsThatNameTheLimit) {
  const std::string longest(ModulePattern::kMaxPatternBytes, 'a');
  EXPECT_TRUE(ModulePattern::compile(longest).matches(longest));
  expect_error([&] { ModulePattern::compile(longest + "a"); }, ErrorCode::format,
               "longer than the limit of 1024 bytes (ModulePattern::kMaxPatternBytes)");
  // {m,n} expands its operand: the program size is capped before the copies are made.
  EXPECT_LE(ModulePattern::compile("a{1000}").program_size(), ModulePattern::kMaxProgramSize);
  expect_error([&] { ModulePattern::compile("a{5000}"); }, ErrorCode::format, "ModulePattern::kMaxProgramSize");
  expect_error([&] { ModulePattern::compile("((a{100}){100}){100}"); }, ErrorCode::format, "kMaxProgramSize");
  expect_error([&] { ModulePattern::compile("a{4294967295}"); }, ErrorCode::format, "kMaxProgramSize");
  expect_error([&] { ModulePattern::compile("(a|b){99999999999999999999,}"); }, ErrorCode::format, "kMaxProgramSize");
}

// compressed-tensors targets: a regex is compiled when the config is read, and its error names
// where the config holds it.
TEST(CtTarget, RegexErrorsNameTheTarget) {
  expect_error([] { io::CtTarget target("re:a(?=b)"); }, ErrorCode::format, "target 're:a(?=b)'");
  const std::string config = test::ct_config_json("group", 128, true, "null", R"json(["re:model\\.(?<!x)"])json");
  expect_error([&] { io::parse_quant_config(config); }, ErrorCode::format, "ignore: target 're:model\\.(?<!x)'");
  // Not a regex: class names and module names are compared, never compiled.
  EXPECT_TRUE(io::CtTarget("Linear").matches("model.layers.0.mlp.up_proj"));
  EXPECT_TRUE(io::CtTarget("lm_head(").matches("lm_head("));
}

// The review's configs: a target that made std::regex backtrack for minutes, and 1,000 ignore
// regexes (a 22 KB config.json) that were compiled three times per module.
TEST(CtTarget, HostileTargetMatchesPromptly) {
  const std::string config =
      R"({"quantization_config": {"quant_method": "compressed-tensors", "format": "pack-quantized",
          "config_groups": {"group_0": {"targets": ["re:(a*)*$"], "weights": {"num_bits": 4, "type": "int",
                                        "symmetric": true, "strategy": "channel"}},
                            "group_1": {"targets": ["Linear"], "weights": {"num_bits": 4, "type": "int",
                                        "symmetric": true, "strategy": "group", "group_size": 128}}}}})";
  const auto c = std::get<io::CompressedTensorsConfig>(*io::parse_quant_config(config));
  EXPECT_EQ(io::ct_scheme_for(c, std::string(21, 'a') + "b").name, "group_1");
  EXPECT_EQ(io::ct_scheme_for(c, std::string(10000, 'a') + "b").name, "group_1");
  EXPECT_EQ(io::ct_scheme_for(c, std::string(21, 'a')).name, "group_0");
}

TEST(CtTarget, ThousandIgnoreRegexesAreCompiledOnceWhenTheConfigIsRead) {
  std::string ignore = "[\"lm_head\"";
  for (int i = 0; i < 1000; ++i) ignore += fmt::format(R"(, "re:.*layers\\.{}\\.mlp\\.gate$")", i);
  ignore += "]";
  const std::string config = test::ct_config_json("group", 128, true, "null", ignore);
  EXPECT_GT(config.size(), 20000u);

  const uint64_t before_parse = ModulePattern::compile_count();
  const auto c = std::get<io::CompressedTensorsConfig>(*io::parse_quant_config(config));
  EXPECT_EQ(ModulePattern::compile_count() - before_parse, 1000u);  // "lm_head" and "Linear" are no regexes
  ASSERT_EQ(c.ignore.size(), 1001u);

  const uint64_t before_match = ModulePattern::compile_count();
  for (int layer = 0; layer < 32; ++layer) {
    const std::string prefix = fmt::format("model.layers.{}.", layer);
    EXPECT_EQ(io::ct_scheme_for(c, prefix + "self_attn.q_proj").name, "group_0");
    EXPECT_EQ(io::ct_scheme_for(c, prefix + "mlp.down_proj").name, "group_0");
    expect_error([&] { io::ct_scheme_for(c, prefix + "mlp.gate"); }, ErrorCode::format, "ignore list names it");
  }
  expect_error([&] { io::ct_scheme_for(c, "lm_head"); }, ErrorCode::format, "ignore list names it");
  EXPECT_EQ(ModulePattern::compile_count(), before_match);  // matching compiled nothing
}

}  // namespace
}  // namespace w4a16

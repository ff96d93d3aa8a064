// The registry of import formats (src/io/import_registry.hpp): every format has a name, a config
// parser, its tensor suffixes, an importer and a description, and config.json's quant_method
// reaches exactly that format's entry.
#include "io/import_registry.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "io/quant_config.hpp"

namespace w4a16 {
namespace {

TEST(ImportRegistry, EveryFormatHasANameAParserSuffixesAndAnImporter) {
  std::set<std::string_view> names;
  size_t count = 0;
  io::for_each_import_format([&](const auto& format) {
    ++count;
    SCOPED_TRACE(std::string(format.name));
    EXPECT_FALSE(format.name.empty());
    EXPECT_TRUE(names.insert(format.name).second) << "two formats named " << format.name;
    EXPECT_NE(format.parse, nullptr);
    EXPECT_NE(format.import, nullptr);
    EXPECT_NE(format.describe, nullptr);
    ASSERT_FALSE(format.tensor_suffixes.empty()) << "no tensor marks a module as quantized";
    for (const std::string_view suffix : format.tensor_suffixes) {
      EXPECT_TRUE(suffix.size() > 1 && suffix[0] == '.') << "suffix '" << suffix << "'";
    }
  });
  EXPECT_EQ(count, io::kImportFormatCount);
  EXPECT_EQ(names, (std::set<std::string_view>{"gptq", "awq", "compressed-tensors"}));
}

// A config of each format is named, described and given its suffixes by that format's entry.
TEST(ImportRegistry, AConfigReachesItsOwnEntry) {
  io::for_each_import_format([]<class Config>(const io::ImportFormat<Config>& format) {
    SCOPED_TRACE(std::string(format.name));
    const io::QuantConfig config = Config{};
    EXPECT_EQ(io::quant_method(config), format.name);
    EXPECT_TRUE(io::describe(config).starts_with(format.name)) << io::describe(config);
    EXPECT_EQ(io::tensor_suffixes(config).data(), format.tensor_suffixes.data());
  });
}

// quant_method picks the format's own parser: with every other field missing, the refusal is that
// parser's (a missing field), never "not supported".
TEST(ImportRegistry, QuantMethodReachesTheFormatsParser) {
  io::for_each_import_format([]<class Config>(const io::ImportFormat<Config>& format) {
    SCOPED_TRACE(std::string(format.name));
    const nlohmann::json q = {{"quant_method", std::string(format.name)}};
    try {
      const io::QuantConfig config = io::parse_quantization_config(q, "config.json");
      EXPECT_TRUE(std::holds_alternative<Config>(config));
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::format) << e.what();
      EXPECT_NE(std::string(e.what()).find("missing field"), std::string::npos) << e.what();
    }
  });
}

TEST(ImportRegistry, AnUnknownMethodListsEveryFormat) {
  try {
    io::parse_quantization_config({{"quant_method", "bitsandbytes"}}, "config.json");
    ADD_FAILURE() << "bitsandbytes was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::unsupported);
    EXPECT_NE(std::string(e.what()).find("(gptq, awq or compressed-tensors)"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace w4a16

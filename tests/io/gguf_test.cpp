// The GGUF reader and importers (src/io/gguf.*, src/io/import_gguf.*; docs/formats.md, "GGUF import"):
//   - hand-computed block vectors for every type dequantize_gguf_tensor reads;
//   - files written by an independent producer (gguf-py 0.19.0, scripts/make_gguf_test_files.py)
//     compared element by element with gguf-py's own dequantization;
//   - one test per malformed input, each expecting Error(format) and a message naming the entry;
//   - cost: 100k tensors / keys parse, length bombs are refused without allocating.
#include "io/gguf.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "io/import_gguf.hpp"
#include "support/gguf_builder.hpp"
#include "support/io_test_util.hpp"
#include "support/peak_memory.hpp"

namespace w4a16::io {
namespace {

using Bytes = std::vector<std::byte>;

using test::GgufBuilder;

Bytes hex(std::initializer_list<int> values) {
  Bytes out;
  for (const int v : values) out.push_back(std::byte(uint8_t(v)));
  return out;
}

// One tensor named "w" of `type` with dims {k, n}, its bytes at offset 0.
Bytes one_tensor(uint32_t type, std::vector<uint64_t> dims, const Bytes& data) {
  return GgufBuilder().tensor("w", std::move(dims), type, 0).data(data).build();
}

void expect_format_error(const Bytes& bytes, const std::string& substring) {
  test::expect_error([&] { GgufFile::parse(bytes); }, ErrorCode::format, substring);
}

Bytes read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Bytes out(chars.size());
  if (!chars.empty()) std::memcpy(out.data(), chars.data(), chars.size());
  return out;
}

std::string data_path(std::string_view name) {
  return std::string(W4A16_SOURCE_DIR) + "/tests/data/gguf/" + std::string(name);
}

// Spacing of fp32 numbers at |x| (2^(e - 23), subnormals 2^-149).
double ulp_f32(float x) {
  const float a = std::fabs(x);
  if (a < std::numeric_limits<float>::min()) return std::ldexp(1.0, -149);
  return std::ldexp(1.0, std::ilogb(a) - 23);
}

// ---------------------------------------------------------------------------------------------
// Hand-computed block vectors (FORMATS.md, "GGUF")
// ---------------------------------------------------------------------------------------------

// qs[j] = (15 - j) << 4 | j: value j (low nibble) = j, value j + 16 (high nibble) = 15 - j.
const Bytes kQs = hex({0xf0, 0xe1, 0xd2, 0xc3, 0xb4, 0xa5, 0x96, 0x87, 0x78, 0x69, 0x5a, 0x4b, 0x3c, 0x2d, 0x1e, 0x0f});
int q_of(int j) { return j < 16 ? j : 31 - j; }

TEST(GgufVectors, Q4_0OneBlock) {
  Bytes block = hex({0x00, 0x3c});  // fp16 d = 1.0
  block.insert(block.end(), kQs.begin(), kQs.end());
  const Bytes bytes = one_tensor(2, {32, 1}, block);
  const GgufFile file = GgufFile::parse(bytes);
  const GgufTensor& t = file.tensors().at(0);
  EXPECT_EQ(t.type, GgmlType::Q4_0);
  EXPECT_EQ(t.nbytes, 18u);
  const std::vector<float> v = dequantize_gguf_tensor(t);
  ASSERT_EQ(v.size(), 32u);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(v[size_t(j)], float(q_of(j) - 8)) << j;  // -8..7, then 7..-8

  const QuantizedWeight w = import_gguf_weight(file, t);
  EXPECT_EQ(w.n(), 1);
  EXPECT_EQ(w.k(), 32);
  EXPECT_EQ(w.group_size(), 32);
  EXPECT_EQ(w.zero_mode(), ZeroMode::sym);
  EXPECT_EQ(w.scale_dtype(), DType::f16);
  for (int j = 0; j < 32; ++j) {
    EXPECT_EQ(w.code(0, j), q_of(j)) << j;
    EXPECT_EQ(w.value(0, j), v[size_t(j)]) << j;
  }
  EXPECT_EQ(w.codes()[0], 0x10);  // k = 0, 1 -> codes 0, 1
  EXPECT_EQ(w.codes()[8], 0xef);  // k = 16, 17 -> codes 15, 14
}

TEST(GgufVectors, Q4_1OneBlock) {
  Bytes block = hex({0x00, 0x38, 0x00, 0xbc});  // d = 0.5, m = -1.0
  block.insert(block.end(), kQs.begin(), kQs.end());
  const Bytes bytes = one_tensor(3, {32, 1}, block);
  const GgufFile file = GgufFile::parse(bytes);
  const std::vector<float> v = dequantize_gguf_tensor(file.tensors()[0]);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(v[size_t(j)], 0.5f * float(q_of(j)) - 1.0f) << j;
  const QuantizedWeight w = import_gguf_weight(file, file.tensors()[0]);
  EXPECT_EQ(w.zero_mode(), ZeroMode::float_zero);
  EXPECT_EQ(w.scale_dtype(), DType::f32);
  EXPECT_EQ(w.scale(0, 0), 0.5f);
  EXPECT_EQ(w.zero_float(0, 0), 3.0f);  // 8 * 0.5 - 1
  for (int j = 0; j < 32; ++j) EXPECT_EQ(w.value(0, j), v[size_t(j)]) << j;
}

TEST(GgufVectors, Q8_0OneBlock) {
  Bytes block = hex({0x00, 0x34});                                                        // d = 0.25
  for (int j = 0; j < 32; ++j) block.push_back(std::byte(uint8_t(int8_t(j * 8 - 128))));  // -128, -120, ..., 120
  const Bytes bytes = one_tensor(8, {32}, block);
  const std::vector<float> v = dequantize_gguf_tensor(GgufFile::parse(bytes).tensors()[0]);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(v[size_t(j)], 0.25f * float(j * 8 - 128)) << j;
  test::expect_error([&] { import_gguf_weight(GgufFile::parse(bytes), GgufFile::parse(bytes).tensors()[0]); },
                     ErrorCode::unsupported, "Q8_0 cannot be imported");
}

TEST(GgufVectors, Q4_KOneSuperBlock) {
  // d = 1.0, dmin = 0.5; sub-block scales sc = {1, 2, 3, 4, 17, 34, 51, 63}, mins m = {0, 1, 2, 3,
  // 20, 40, 60, 33}, packed as get_scale_min_k4 reads them (the high 2 bits of sc/m[4..7] in bits
  // 6-7 of bytes 0-7, their low 4 bits in bytes 8-11).
  const int sc[8] = {1, 2, 3, 4, 17, 34, 51, 63};
  const int mn[8] = {0, 1, 2, 3, 20, 40, 60, 33};
  Bytes block = hex({0x00, 0x3c, 0x00, 0x38, 0x41, 0x82, 0xc3, 0xc4, 0x40, 0x81, 0xc2, 0x83, 0x41, 0x82, 0xc3, 0x1f});
  // qs chunk c, byte l: low nibble = l % 16 (sub-block 2c), high nibble = (l + c) % 16 (sub-block 2c + 1).
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) block.push_back(std::byte(uint8_t((l % 16) | (((l + c) % 16) << 4))));
  }
  ASSERT_EQ(block.size(), 144u);
  const Bytes bytes = one_tensor(12, {256, 1}, block);
  const GgufFile file = GgufFile::parse(bytes);
  const std::vector<float> v = dequantize_gguf_tensor(file.tensors()[0]);
  const QuantizedWeight w = import_gguf_weight(file, file.tensors()[0]);
  EXPECT_EQ(w.groups(), 8);
  for (int j = 0; j < 8; ++j) {
    for (int l = 0; l < 32; ++l) {
      const int c = j / 2;
      const int q = j % 2 == 0 ? l % 16 : (l + c) % 16;
      const float expected = float(sc[j]) * float(q) - 0.5f * float(mn[j]);  // d*sc*q - dmin*m, exact here
      EXPECT_EQ(v[size_t(j * 32 + l)], expected) << j << " " << l;
      EXPECT_EQ(w.code(0, j * 32 + l), q);
      EXPECT_EQ(w.value(0, j * 32 + l), expected) << j << " " << l;
    }
    EXPECT_EQ(w.scale(0, j), float(sc[j]));
  }
}

TEST(GgufVectors, PlainTypes) {
  {
    const Bytes bytes = one_tensor(1, {3}, hex({0x00, 0x3c, 0x00, 0xc0, 0x01, 0x00}));  // F16 1, -2, 2^-24
    const auto v = dequantize_gguf_tensor(GgufFile::parse(bytes).tensors()[0]);
    EXPECT_EQ(v, (std::vector<float>{1.0f, -2.0f, std::ldexp(1.0f, -24)}));
  }
  {
    const Bytes bytes = one_tensor(30, {2}, hex({0x80, 0x3f, 0x49, 0x40}));  // BF16 1.0, 3.140625
    const auto v = dequantize_gguf_tensor(GgufFile::parse(bytes).tensors()[0]);
    EXPECT_EQ(v, (std::vector<float>{1.0f, 3.140625f}));
  }
  {
    const Bytes bytes = one_tensor(0, {1}, hex({0x00, 0x00, 0xc0, 0x7f}));  // F32 NaN passes through
    EXPECT_TRUE(std::isnan(dequantize_gguf_tensor(GgufFile::parse(bytes).tensors()[0])[0]));
  }
  const Bytes q5 = one_tensor(6, {32}, Bytes(22));
  test::expect_error([&] { dequantize_gguf_tensor(GgufFile::parse(q5).tensors()[0]); }, ErrorCode::unsupported,
                     "dequantizing Q5_0 is not supported");
}

// Q4_1 and Q4_K with 8s + add not representable in fp32: the importer stays within its bound.
TEST(GgufVectors, FloatZeroInexactWithinBound) {
  // Q4_1: d = 2^-24 (smallest fp16 subnormal), m = 1000: 8d + m needs 35 significant bits.
  Bytes block = hex({0x01, 0x00, 0xd0, 0x63});
  block.insert(block.end(), kQs.begin(), kQs.end());
  const Bytes bytes = one_tensor(3, {32, 1}, block);
  const GgufFile file = GgufFile::parse(bytes);
  const auto ref = dequantize_gguf_tensor(file.tensors()[0]);
  const QuantizedWeight w = import_gguf_weight(file, file.tensors()[0]);
  const float zf = w.zero_float(0, 0);
  for (int j = 0; j < 32; ++j) {
    const float ours = w.value(0, j);
    EXPECT_LE(std::fabs(double(ours) - double(ref[size_t(j)])),
              ulp_f32(zf) / 2 + ulp_f32(ours) / 2 + ulp_f32(ref[size_t(j)]) / 2)
        << j;
  }
}

// ---------------------------------------------------------------------------------------------
// Files written by gguf-py 0.19.0 (scripts/make_gguf_test_files.py)
// ---------------------------------------------------------------------------------------------

struct Reference {
  std::string name, type;
  size_t count;
  std::vector<float> values;
};

std::vector<Reference> read_reference(const std::string& stem) {
  std::ifstream txt(data_path(stem + ".ref.txt"));
  const Bytes f32 = read_bytes(data_path(stem + ".ref.f32"));
  std::vector<Reference> out;
  size_t at = 0;
  Reference r;
  while (txt >> r.name >> r.type >> r.count) {
    EXPECT_LE((at + r.count) * 4, f32.size());
    r.values.resize(r.count);
    std::memcpy(r.values.data(), f32.data() + at * 4, r.count * 4);
    at += r.count;
    out.push_back(r);
  }
  EXPECT_EQ(at * 4, f32.size());
  return out;
}

// Compares every tensor with gguf-py's dequantization: dequantize_gguf_tensor bit for bit (same
// formulas, same fp32 operations); import_gguf_weight's value() bit for bit for Q4_0 and within
// the documented bound for Q4_1 / Q4_K. Adds the number of inexact weight elements to `inexact`.
void check_against_reference(const GgufFile& file, const std::vector<Reference>& refs, size_t& inexact) {
  EXPECT_EQ(file.tensors().size(), refs.size());
  for (size_t i = 0; i < refs.size() && i < file.tensors().size(); ++i) {
    const GgufTensor& t = file.tensors()[i];
    const Reference& ref = refs[i];
    SCOPED_TRACE(ref.name);
    EXPECT_EQ(t.name, ref.name);
    EXPECT_EQ(ggml_type_name(t.type), ref.type);
    ASSERT_EQ(size_t(t.numel()), ref.count);
    const std::vector<float> ours = dequantize_gguf_tensor(t);
    for (size_t e = 0; e < ref.count; ++e) {
      ASSERT_EQ(std::bit_cast<uint32_t>(ours[e]), std::bit_cast<uint32_t>(ref.values[e])) << "element " << e;
    }
    if (!gguf_weight_importable(t.type)) continue;
    const QuantizedWeight w = import_gguf_weight(file, t);
    ASSERT_EQ(w.n(), t.dims[1]);
    ASSERT_EQ(w.k(), t.dims[0]);
    size_t tensor_inexact = 0;
    double worst_zf_ulps = 0, worst_of_bound = 0;
    for (int64_t row = 0; row < w.n(); ++row) {
      for (int64_t col = 0; col < w.k(); ++col) {
        const float value = w.value(row, col);
        const float expected = ref.values[size_t(row * w.k() + col)];
        // == rather than bits: value() adds the float zero 0.0f in sym mode, so ggml's -0 (q = 8 under a
        // negative d) reads +0. Every other value is compared bit for bit by ==.
        if (value == expected) continue;
        ++tensor_inexact;
        ASSERT_NE(t.type, GgmlType::Q4_0) << "Q4_0 must be bit-exact at " << row << ", " << col;
        const float zf = w.zero_float(row, col / 32);
        const double deviation = std::fabs(double(value) - double(expected));
        const double bound = ulp_f32(zf) / 2 + ulp_f32(value) / 2 + ulp_f32(expected) / 2;
        ASSERT_LE(deviation, bound) << row << ", " << col << ": ours " << value << " gguf-py " << expected;
        worst_zf_ulps = std::max(worst_zf_ulps, deviation / ulp_f32(zf));
        worst_of_bound = std::max(worst_of_bound, deviation / bound);
      }
    }
    std::printf("%-24s %-5s %6zu elements, %4zu not bit-exact (worst: %.3f ulp(zf), %.3f of the bound)\n",
                t.name.c_str(), ref.type.c_str(), ref.count, tensor_inexact, worst_zf_ulps, worst_of_bound);
    inexact += tensor_inexact;
  }
}

TEST(GgufFiles, GgufPyModelMatchesItsDequantization) {
  const GgufFile file = GgufFile::open(data_path("model.gguf"));
  EXPECT_EQ(file.version(), 3u);
  EXPECT_EQ(file.alignment(), 32u);
  EXPECT_EQ(file.data_offset() % 32, 0u);
  size_t inexact = 0;
  check_against_reference(file, read_reference("model"), inexact);
  // Realistic blocks (d and dmin of similar magnitude) are bit-exact; only the adversarial
  // "wide" tensors may differ, within the bound.
  for (const char* name : {"blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.ffn_up.weight"}) {
    const QuantizedWeight w = import_gguf_weight(file, *file.find(name));
    const auto ref = dequantize_gguf_tensor(*file.find(name));
    EXPECT_EQ(dequantize(w), ref) << name;
  }
  std::printf("model.gguf: %zu weight elements not bit-exact in total\n", inexact);
}

TEST(GgufFiles, GgufPyMetadataTyped) {
  const GgufFile file = GgufFile::open(data_path("model.gguf"));
  const auto get = [&](std::string_view key) -> const GgufValue& {
    const GgufValue* v = file.find_metadata(key);
    EXPECT_NE(v, nullptr) << key;
    static const GgufValue missing;
    return v != nullptr ? *v : missing;
  };
  EXPECT_EQ(get("general.architecture").as_string(), "llama");
  EXPECT_EQ(get("general.name").as_string(), "w4a16 gguf test");
  EXPECT_EQ(get("test.u8").as_uint64(), 200u);
  EXPECT_EQ(get("test.i8").as_int64(), -100);
  EXPECT_EQ(get("test.i8").as_uint64(), std::nullopt);
  EXPECT_EQ(get("test.u16").as_uint64(), 65535u);
  EXPECT_EQ(get("test.i16").as_int64(), -32768);
  EXPECT_EQ(get("test.u32").as_uint64(), 4000000000u);
  EXPECT_EQ(get("test.i32").as_int64(), -2000000000);
  EXPECT_EQ(get("test.u64").as_uint64(), UINT64_MAX);
  EXPECT_EQ(get("test.u64").as_int64(), std::nullopt);
  EXPECT_EQ(get("test.i64").as_int64(), INT64_MIN);
  EXPECT_EQ(get("test.f32").type, GgufValueType::float32);
  EXPECT_EQ(get("test.f32").as_double(), double(0.1f));
  EXPECT_EQ(get("test.f64").as_double(), -2.5e-300);
  EXPECT_EQ(get("test.bool").as_bool(), true);
  EXPECT_EQ(get("test.string").as_string(), "h\u00e9llo \"w\u00f6rld\"\n");
  const GgufValue& tokens = get("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens.is_array());
  EXPECT_EQ(tokens.element_type, GgufValueType::string);
  ASSERT_EQ(tokens.count, 208u);
  EXPECT_EQ(tokens.element(0).as_string(), "tok0");
  EXPECT_EQ(tokens.element(207).as_string(), "\U0001f600");
  const GgufValue& scores = get("tokenizer.ggml.scores");
  EXPECT_EQ(scores.element_type, GgufValueType::float32);
  EXPECT_EQ(scores.element(5).as_double(), -1.25);
  const GgufValue& ints = get("test.int_array");
  EXPECT_EQ(ints.element(1).as_int64(), -2);
  EXPECT_EQ(get("test.bool_array").element(1).as_bool(), false);
  const GgufValue& nested = get("test.nested");
  ASSERT_EQ(nested.element_type, GgufValueType::array);
  ASSERT_EQ(nested.arrays.size(), 2u);
  EXPECT_EQ(nested.arrays[1].count, 3u);
  EXPECT_EQ(nested.arrays[1].element(2).as_int64(), 5);
  EXPECT_EQ(file.find_metadata("absent"), nullptr);
}

TEST(GgufFiles, MetadataJsonIsCompleteAndValid) {
  const GgufFile file = GgufFile::open(data_path("model.gguf"));
  const std::string text = file.metadata_json();
  const nlohmann::json j = nlohmann::json::parse(text);  // throws when not valid JSON
  EXPECT_EQ(j.size(), file.metadata().size());
  EXPECT_EQ(j["general.architecture"], "llama");
  EXPECT_EQ(j["test.u64"].get<uint64_t>(), UINT64_MAX);
  EXPECT_EQ(j["test.i64"].get<int64_t>(), INT64_MIN);
  EXPECT_EQ(j["test.f32"].get<float>(), 0.1f);  // shortest form round-trips
  EXPECT_EQ(j["test.f64"].get<double>(), -2.5e-300);
  EXPECT_EQ(j["test.bool"], true);
  EXPECT_EQ(j["test.string"], "h\u00e9llo \"w\u00f6rld\"\n");
  EXPECT_EQ(j["tokenizer.ggml.tokens"].size(), 208u);
  EXPECT_EQ(j["tokenizer.ggml.tokens"][206], "tab\tnewline\n");
  EXPECT_EQ(j["test.nested"], nlohmann::json::parse("[[1,2],[3,4,5]]"));
  EXPECT_EQ(j["test.bool_array"], nlohmann::json::parse("[true,false,true]"));
  // File order is kept.
  EXPECT_EQ(text.rfind("{\"general.architecture\":\"llama\",", 0), 0u);
}

TEST(GgufFiles, Alignment64) {
  const GgufFile file = GgufFile::open(data_path("aligned64.gguf"));
  EXPECT_EQ(file.alignment(), 64u);
  EXPECT_EQ(file.data_offset() % 64, 0u);
  for (const GgufTensor& t : file.tensors()) EXPECT_EQ(t.offset % 64, 0u) << t.name;
  size_t inexact = 0;
  check_against_reference(file, read_reference("aligned64"), inexact);
  EXPECT_EQ(inexact, 0u);
}

TEST(GgufFiles, Version2IsRead) {
  Bytes bytes = read_bytes(data_path("aligned64.gguf"));
  bytes[4] = std::byte(2);
  EXPECT_EQ(GgufFile::parse(bytes).version(), 2u);
}

// ---------------------------------------------------------------------------------------------
// Malformed input: one test per case
// ---------------------------------------------------------------------------------------------

// A valid file with one Q4_0 tensor [K = 32, N = 1] and one key, to corrupt.
GgufBuilder valid_builder() { return GgufBuilder().kv_u32("a.key", 1).tensor("w", {32, 1}, 2, 0).data(Bytes(18)); }

TEST(GgufBadInput, ValidBaselineParses) { EXPECT_EQ(GgufFile::parse(valid_builder().build()).tensors().size(), 1u); }

TEST(GgufBadInput, BadMagic) {
  Bytes bytes = valid_builder().build();
  bytes[3] = std::byte('G');
  expect_format_error(bytes, "not a GGUF file (magic bytes 47 47 55 47");
  expect_format_error(hex({'G', 'G'}), "too short for the magic");
}

TEST(GgufBadInput, Versions) {
  expect_format_error(valid_builder().version(1).build(), "GGUF version 1 (32-bit counts) is not supported");
  expect_format_error(valid_builder().version(4).build(), "unsupported GGUF version 4");
  expect_format_error(valid_builder().version(0).build(), "unsupported GGUF version 0");
  expect_format_error(valid_builder().version(0x03000000).build(), "big-endian GGUF");
}

TEST(GgufBadInput, TruncatedEverywhere) {
  // Every prefix of a real file that cuts into the header or a tensor's bytes is refused.
  const Bytes bytes = read_bytes(data_path("model.gguf"));
  const GgufFile file = GgufFile::parse(bytes);
  uint64_t end = file.data_offset();
  for (const GgufTensor& t : file.tensors()) end = std::max(end, file.data_offset() + t.offset + t.nbytes);
  for (size_t size = 0; size < end; ++size) {
    try {
      GgufFile::parse(std::span(bytes.data(), size));
      ADD_FAILURE() << "prefix of " << size << " bytes parsed";
    } catch (const Error& e) {
      ASSERT_EQ(e.code(), ErrorCode::format) << size << ": " << e.what();
    }
  }
  test::expect_error([&] { GgufFile::parse(std::span(bytes.data(), 350)); }, ErrorCode::format,
                     "key #11 'test.f64': truncated: value needs 8 bytes at offset 348 but the file ends at 350");
}

TEST(GgufBadInput, KeyCountLargerThanFile) {
  expect_format_error(valid_builder().counts(1, 1000).build(),
                      "1000 metadata keys (at least 14 bytes each) cannot fit");
  expect_format_error(valid_builder().counts(1, uint64_t(1) << 62).build(), "exceed the limit");
}

TEST(GgufBadInput, TensorCountLargerThanFile) {
  expect_format_error(valid_builder().counts(1000, 1).build(), "1000 tensor infos (at least 25 bytes each) cannot fit");
  expect_format_error(valid_builder().counts(~uint64_t(0), 1).build(), "exceed the limit");
}

TEST(GgufBadInput, StringLengthPastEnd) {
  Bytes value;
  GgufBuilder::u64(value, 1000);  // string length 1000, no bytes follow
  expect_format_error(GgufBuilder().kv("k.str", 8, value).build(),
                      "key #0 'k.str': string value length 1000 runs past the end");
  Bytes kv;
  GgufBuilder::u64(kv, uint64_t(1) << 40);  // key length
  Bytes bytes = GgufBuilder().counts(0, 1).build();
  bytes.resize(24);
  bytes.insert(bytes.end(), kv.begin(), kv.end());
  bytes.resize(bytes.size() + 32);
  expect_format_error(bytes, "key #0: key length 1099511627776 runs past the end");
  expect_format_error(GgufBuilder().tensor(std::string(70000, 'x'), {32}, 0, 0).data(Bytes(128)).build(),
                      "tensor #0: tensor name is 70000 bytes");
  expect_format_error(GgufBuilder().kv_u32("", 1).build(), "key #0: key is empty");
}

TEST(GgufBadInput, HugeNDims) {
  expect_format_error(GgufBuilder().tensor("big", {1, 1, 1, 1, 1}, 0, 0).data(Bytes(4)).build(),
                      "tensor #0 'big': n_dims 5 exceeds 4");
}

TEST(GgufBadInput, DimsProductOverflow) {
  expect_format_error(GgufBuilder().tensor("ovf", {uint64_t(1) << 32, uint64_t(1) << 32}, 0, 0).build(),
                      "tensor #0 'ovf': dims[1] = 4294967296 makes the element count overflow");
  expect_format_error(GgufBuilder().tensor("neg", {uint64_t(1) << 63}, 0, 0).build(), "tensor #0 'neg': dims[0]");
  // numel fits but the byte count does not: 2^62 F32 elements = 2^64 bytes.
  expect_format_error(GgufBuilder().tensor("bytes", {uint64_t(1) << 62}, 0, 0).build(),
                      "tensor #0 'bytes': byte size of 4611686018427387904 elements of F32 overflows");
}

TEST(GgufBadInput, BlockSizeMismatch) {
  expect_format_error(GgufBuilder().tensor("q", {33, 1}, 2, 0).data(Bytes(64)).build(),
                      "tensor #0 'q': dims[0] = 33 is not a multiple of the 32-element blocks of Q4_0");
  expect_format_error(GgufBuilder().tensor("k", {128, 2}, 12, 0).data(Bytes(512)).build(),
                      "tensor #0 'k': dims[0] = 128 is not a multiple of the 256-element blocks of Q4_K");
}

TEST(GgufBadInput, MisalignedOffset) {
  expect_format_error(GgufBuilder().tensor("a", {4}, 0, 16).data(Bytes(64)).build(),
                      "tensor #0 'a': data offset 16 is not a multiple of the alignment 32");
}

TEST(GgufBadInput, OverlappingTensors) {
  expect_format_error(GgufBuilder().tensor("first", {16}, 0, 0).tensor("second", {4}, 0, 32).data(Bytes(64)).build(),
                      "tensor #1 'second': bytes [32, 48) overlap tensor 'first' [0, 64)");
  expect_format_error(GgufBuilder().tensor("x", {4}, 0, 0).tensor("y", {4}, 0, 0).data(Bytes(32)).build(),
                      "overlap tensor 'x'");
  // An empty tensor between two overlapping ones does not hide the overlap.
  expect_format_error(GgufBuilder()
                          .tensor("big", {16}, 0, 0)
                          .tensor("empty", {0}, 0, 32)
                          .tensor("inside", {4}, 0, 32)
                          .data(Bytes(64))
                          .build(),
                      "tensor #2 'inside': bytes [32, 48) overlap tensor 'big' [0, 64)");
}

TEST(GgufBadInput, OffsetPastEnd) {
  expect_format_error(GgufBuilder().tensor("late", {4}, 0, 64).data(Bytes(64)).build(),
                      "tensor #0 'late': 16 bytes at data offset 64 run past the 64-byte data section");
  expect_format_error(GgufBuilder().tensor("far", {4}, 0, uint64_t(1) << 63).data(Bytes(64)).build(),
                      "tensor #0 'far': 16 bytes at data offset 9223372036854775808 run past");
  // The header's padding itself is missing.
  Bytes bytes = GgufBuilder().tensor("t", {0}, 0, 0).build();
  bytes.resize(bytes.size() - 4);
  expect_format_error(bytes, "data section would start at");
}

TEST(GgufBadInput, UnknownTypes) {
  expect_format_error(GgufBuilder().tensor("q4_2", {32}, 4, 0).data(Bytes(64)).build(),
                      "tensor #0 'q4_2': unknown or unsupported ggml type id 4");
  expect_format_error(GgufBuilder().tensor("iq", {256}, 16, 0).data(Bytes(128)).build(),
                      "tensor #0 'iq': unknown or unsupported ggml type id 16");
  expect_format_error(GgufBuilder().kv("k.t", 13, Bytes(8)).build(), "key #0 'k.t': unknown value type 13");
  Bytes array;
  GgufBuilder::u32(array, 99);
  GgufBuilder::u64(array, 0);
  expect_format_error(GgufBuilder().kv("k.a", 9, array).build(), "key #0 'k.a': array of unknown value type 99");
}

TEST(GgufBadInput, DuplicateNamesAndKeys) {
  expect_format_error(GgufBuilder().tensor("dup", {4}, 0, 0).tensor("dup", {4}, 0, 32).data(Bytes(64)).build(),
                      "tensor #1 'dup': repeats the name of tensor #0");
  expect_format_error(GgufBuilder().kv_u32("b", 1).kv_u32("a", 1).kv_string("b", "x").build(),
                      "key #2 'b': repeats key #0");
}

TEST(GgufBadInput, BadAlignment) {
  expect_format_error(GgufBuilder().kv_u32("general.alignment", 0).build(),
                      "general.alignment 0 is not a power of two");
  expect_format_error(GgufBuilder().kv_u32("general.alignment", 48).build(),
                      "general.alignment 48 is not a power of two");
  expect_format_error(GgufBuilder().kv_string("general.alignment", "32").build(),
                      "general.alignment must be an unsigned integer, got string");
  // A valid alignment moves the data section.
  const Bytes bytes = GgufBuilder().kv_u32("general.alignment", 256).tensor("t", {4}, 0, 0).data(Bytes(16)).build(256);
  EXPECT_EQ(GgufFile::parse(bytes).data_offset(), 256u);
}

TEST(GgufBadInput, BoolOutOfRange) {
  expect_format_error(GgufBuilder().kv("b", 7, hex({2})).build(), "key #0 'b': bool value 2 is not 0 or 1");
  Bytes array;
  GgufBuilder::u32(array, 7);
  GgufBuilder::u64(array, 3);
  array.insert(array.end(), {std::byte(0), std::byte(1), std::byte(5)});
  expect_format_error(GgufBuilder().kv("ba", 9, array).build(), "bool array element 2 is 5");
}

TEST(GgufBadInput, NestingBomb) {
  // 1000 arrays, each holding the next (after the key's type 9: element type 9, count 1, ...):
  // refused at depth 8 before recursing further.
  Bytes value;
  for (int i = 0; i < 1000; ++i) {
    GgufBuilder::u32(value, 9);
    GgufBuilder::u64(value, 1);
  }
  GgufBuilder::u32(value, 0);
  GgufBuilder::u64(value, 0);
  expect_format_error(GgufBuilder().kv("deep", 9, value).build(), "key #0 'deep': arrays nest deeper than 8 levels");
  // Depth 8 exactly is read.
  Bytes ok;
  for (int i = 0; i < 7; ++i) {
    GgufBuilder::u32(ok, 9);
    GgufBuilder::u64(ok, 1);
  }
  GgufBuilder::u32(ok, 0);
  GgufBuilder::u64(ok, 0);
  EXPECT_EQ(GgufFile::parse(GgufBuilder().kv("deep", 9, ok).build()).metadata_json(), "{\"deep\":[[[[[[[[]]]]]]]]}");
}

TEST(GgufBadInput, ArrayLengthBomb) {
  for (const uint32_t element : {0u, 8u, 9u, 12u}) {  // u8, string, array, f64
    Bytes array;
    GgufBuilder::u32(array, element);
    GgufBuilder::u64(array, uint64_t(1) << 60);
    expect_format_error(GgufBuilder().kv("bomb", 9, array).build(),
                        "key #0 'bomb': array claims 1152921504606846976 elements");
  }
}

TEST(GgufBadInput, ImportRefusals) {
  Bytes block = hex({0x00, 0x7c});  // fp16 d = +inf
  block.resize(18);
  const Bytes bytes = one_tensor(2, {32, 1}, block);
  const GgufFile file = GgufFile::parse(bytes);
  test::expect_error([&] { import_gguf_weight(file, file.tensors()[0]); }, ErrorCode::format,
                     "tensor 'w': row 0 block 0: fp16 d 0x7c00 is not finite");
  EXPECT_TRUE(std::isinf(dequantize_gguf_tensor(file.tensors()[0])[1]));  // ggml's formula, as is

  const Bytes flat = one_tensor(2, {32}, Bytes(18));
  const GgufFile flat_file = GgufFile::parse(flat);
  test::expect_error([&] { import_gguf_weight(flat_file, flat_file.tensors()[0]); }, ErrorCode::format,
                     "tensor 'w': a weight is 2-D");
  const Bytes f32 = one_tensor(0, {2, 2}, Bytes(16));
  const GgufFile f32_file = GgufFile::parse(f32);
  test::expect_error([&] { import_gguf_weight(f32_file, f32_file.tensors()[0]); }, ErrorCode::unsupported,
                     "tensor 'w': F32 cannot be imported");
}

TEST(GgufBadInput, OpenErrors) {
  test::expect_error([] { GgufFile::open("/nonexistent/x.gguf"); }, ErrorCode::io, "cannot open");
  test::TempDir dir;
  { std::ofstream(dir / "short.gguf") << "GG"; }
  test::expect_error([&] { GgufFile::open(dir / "short.gguf"); }, ErrorCode::format, "too short for the magic");
}

// ---------------------------------------------------------------------------------------------
// Cost: linear time, bounded memory (the ctest TIMEOUT is the time assertion)
// ---------------------------------------------------------------------------------------------

TEST(GgufCost, HundredThousandTensors) {
  constexpr int kTensors = 100'000;
  GgufBuilder b;
  for (int i = 0; i < kTensors; ++i) b.tensor("blk." + std::to_string(i) + ".weight", {8}, 0, uint64_t(i) * 32);
  b.data(Bytes(size_t(kTensors) * 32));
  const Bytes bytes = b.build();
  const GgufFile file = GgufFile::parse(bytes);
  EXPECT_EQ(file.tensors().size(), size_t(kTensors));
  ASSERT_NE(file.find("blk.99999.weight"), nullptr);
  EXPECT_EQ(file.find("blk.99999.weight")->offset, 99999u * 32);
  EXPECT_EQ(file.find("blk.100000.weight"), nullptr);
}

TEST(GgufCost, HundredThousandKeys) {
  constexpr int kKeys = 100'000;
  GgufBuilder b;
  for (int i = 0; i < kKeys; ++i) b.kv_u32("key." + std::to_string(i), uint32_t(i));
  const Bytes bytes = b.build();
  const GgufFile file = GgufFile::parse(bytes);
  EXPECT_EQ(file.metadata().size(), size_t(kKeys));
  EXPECT_EQ(file.find_metadata("key.77777")->as_uint64(), 77777u);
  EXPECT_EQ(nlohmann::json::parse(file.metadata_json()).size(), size_t(kKeys));
}

using test::peak_growth;

TEST(GgufCost, LengthBombsRefusedWithoutAllocating) {
  Bytes array;
  GgufBuilder::u32(array, 8);  // strings: a reserve() of 2^60 views would be the bomb
  GgufBuilder::u64(array, uint64_t(1) << 60);
  const Bytes bytes = GgufBuilder().kv("vocab", 9, array).build();
  const long long growth = peak_growth([&] { expect_format_error(bytes, "array claims"); });
  if (!test::kSanitized && growth >= 0) {
    EXPECT_LT(growth, 4 << 20);  // nothing near the claimed size was touched
  }
}

TEST(GgufCost, ArraysOfArraysBoundedMemory) {
  // The densest structure the reader keeps one value per element of: 1M empty arrays (12 bytes
  // each in the file). What it holds stays a small multiple of the header.
  constexpr uint64_t kCount = 1'000'000;
  Bytes array;
  GgufBuilder::u32(array, 9);
  GgufBuilder::u64(array, kCount);
  for (uint64_t i = 0; i < kCount; ++i) {
    GgufBuilder::u32(array, 0);
    GgufBuilder::u64(array, 0);
  }
  const Bytes bytes = GgufBuilder().kv("arrays", 9, array).build();
  const long long growth = peak_growth([&] {
    const GgufFile file = GgufFile::parse(bytes);
    EXPECT_EQ(file.metadata()[0].value.arrays.size(), kCount);
  });
  std::printf("1M nested arrays, header %zu bytes: peak resident growth %.1f MB\n", bytes.size(), double(growth) / 1e6);
  if (!test::kSanitized && growth >= 0) {
    EXPECT_LT(double(growth), 10.0 * double(bytes.size()) + 16e6);
  }
}

// Rendering the metadata to JSON (what convert keeps) is bounded before it is done: a 50 MB bool
// array (300 MB as JSON) peaked at 1.41 GB and 50 MB of control bytes (6 bytes each escaped) at
// 1.51 GB before a safetensors-writer error; now both stop at kGgufMaxMetadataJsonBytes with an
// error naming the key, and memory stays within a small multiple of the cap.
TEST(GgufCost, MetadataJsonIsBoundedAndNamesTheKey) {
  constexpr uint64_t kCount = 50'000'000;
  Bytes bools;
  GgufBuilder::u32(bools, 7);  // array of bool
  GgufBuilder::u64(bools, kCount);
  bools.resize(bools.size() + kCount, std::byte{1});
  const Bytes bool_file = GgufBuilder().kv_u32("general.alignment", 32).kv("huge.bools", 9, bools).build();
  Bytes controls;
  GgufBuilder::str(controls, std::string(kCount, '\x01'));
  const Bytes control_file = GgufBuilder().kv("huge.controls", 8, controls).build();
  for (const auto& [bytes, key] : {std::pair{&bool_file, "huge.bools"}, std::pair{&control_file, "huge.controls"}}) {
    const GgufFile file = GgufFile::parse(*bytes);
    const long long growth =
        peak_growth([&] { test::expect_error([&] { (void)file.metadata_json(); }, ErrorCode::format, key); });
    std::printf("%s: peak resident growth %.1f MB (cap %llu MB)\n", key, double(growth) / 1e6,
                (unsigned long long)(kGgufMaxMetadataJsonBytes >> 20));
    if (!test::kSanitized && growth >= 0) {
      EXPECT_LT(double(growth), 4.0 * double(kGgufMaxMetadataJsonBytes));
    }
  }
  // Below the cap nothing changes: the same keys, small, render.
  EXPECT_EQ(GgufFile::parse(GgufBuilder().kv_string("k", "\x01").build()).metadata_json(), "{\"k\":\"\\u0001\"}");
  const GgufFile small = GgufFile::parse(bool_file);
  test::expect_error([&] { (void)small.metadata_json(40); }, ErrorCode::format, "huge.bools");
}

}  // namespace
}  // namespace w4a16::io

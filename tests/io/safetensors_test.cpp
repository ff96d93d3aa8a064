// safetensors reader/writer: round trips, the exact bytes the writer produces, and one test per
// malformed-file case the reader must reject (error code + a message substring).
#include "io/safetensors.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <string>
#include <vector>

#include "support/io_test_util.hpp"

namespace w4a16::io {
namespace {

using test::expect_error;
using test::filled_bytes;
using test::make_safetensors;
using test::read_bytes;
using test::TempDir;
using test::write_bytes;

std::string as_text(std::span<const std::byte> bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

uint64_t header_length_of(const std::vector<std::byte>& file) {
  uint64_t length = 0;
  std::memcpy(&length, file.data(), 8);
  return length;
}

// The bytes must be rejected as a format error mentioning `substring`, both when parsed from
// memory and when opened from a file (where the message must also name the file).
void expect_format_error(const std::vector<std::byte>& bytes, const std::string& substring) {
  SCOPED_TRACE(substring);
  expect_error([&] { SafetensorsFile::parse(bytes); }, ErrorCode::format, substring);
  TempDir dir;
  const auto path = dir / "bad.safetensors";
  write_bytes(path, bytes);
  expect_error([&] { SafetensorsFile::open(path); }, ErrorCode::format, substring);
  expect_error([&] { SafetensorsFile::open(path); }, ErrorCode::format, path.string());
}

// A file with one tensor "t" described by `entry` (the JSON object text) and `data`.
std::vector<std::byte> one_tensor(const std::string& entry, size_t data_bytes) {
  return make_safetensors("{\"t\":" + entry + "}", filled_bytes(data_bytes));
}

// ---------------------------------------------------------------------------------------------
// Round trips and writer output
// ---------------------------------------------------------------------------------------------

TEST(SafetensorsRoundTrip, MultipleDtypesAndMetadata) {
  struct Spec {
    std::string name;
    StDType dtype;
    std::vector<int64_t> shape;
  };
  const std::vector<Spec> specs = {
      {"f16", StDType::F16, {2, 3}}, {"bf16", StDType::BF16, {3}},  {"f32", StDType::F32, {1, 2, 2}},
      {"i32", StDType::I32, {5}},    {"u8", StDType::U8, {7}},      {"i64", StDType::I64, {2}},
      {"f64", StDType::F64, {1}},    {"bool", StDType::BOOL, {3}},  {"scalar", StDType::F32, {}},
      {"f8", StDType::F8_E4M3, {4}}, {"u16", StDType::U16, {2, 1}}, {"name with \"quotes\" and ü", StDType::U8, {1}},
  };
  TempDir dir;
  SafetensorsWriter writer;
  std::vector<std::vector<std::byte>> payloads;
  for (size_t i = 0; i < specs.size(); ++i) {
    int64_t numel = 1;
    for (int64_t d : specs[i].shape) numel *= d;
    payloads.push_back(filled_bytes(size_t(numel) * st_dtype_size(specs[i].dtype), uint8_t(17 * i + 1)));
  }
  for (size_t i = 0; i < specs.size(); ++i) writer.add(specs[i].name, specs[i].dtype, specs[i].shape, payloads[i]);
  writer.set_metadata("format", "pt");
  writer.set_metadata("note", "\"quoted\"\nnewline");
  const auto path = dir / "multi.safetensors";
  writer.write(path);

  const auto file = SafetensorsFile::open(path);
  ASSERT_EQ(file.tensors().size(), specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    SCOPED_TRACE(specs[i].name);
    const TensorInfo& t = file.tensors()[i];  // offset order == insertion order
    EXPECT_EQ(t.name, specs[i].name);
    EXPECT_EQ(t.dtype, specs[i].dtype);
    EXPECT_EQ(t.shape, specs[i].shape);
    EXPECT_EQ(file.find(specs[i].name), &t);
    const auto data = file.data(t);
    ASSERT_EQ(data.size(), payloads[i].size());
    EXPECT_TRUE(std::equal(data.begin(), data.end(), payloads[i].begin()));
  }
  EXPECT_EQ(file.find("absent"), nullptr);
  EXPECT_EQ(file.metadata().size(), 2u);
  EXPECT_EQ(file.metadata().at("format"), "pt");
  EXPECT_EQ(file.metadata().at("note"), "\"quoted\"\nnewline");

  // Parsing the same bytes from memory gives the same result.
  const auto bytes = read_bytes(path);
  const auto parsed = SafetensorsFile::parse(bytes);
  ASSERT_EQ(parsed.tensors().size(), specs.size());
  EXPECT_EQ(parsed.tensors().back().end, file.tensors().back().end);
}

TEST(SafetensorsRoundTrip, ZeroSizeTensor) {
  TempDir dir;
  SafetensorsWriter writer;
  const auto a = filled_bytes(4);
  const auto b = filled_bytes(6, 50);
  writer.add("a", StDType::F16, {2}, a);
  writer.add("empty", StDType::F32, {0, 4}, {});
  writer.add("b", StDType::U8, {6}, b);
  writer.write(dir / "z.safetensors");
  const auto file = SafetensorsFile::open(dir / "z.safetensors");
  const TensorInfo* empty = file.find("empty");
  ASSERT_NE(empty, nullptr);
  EXPECT_EQ(empty->numel(), 0);
  EXPECT_EQ(empty->begin, 4u);
  EXPECT_EQ(empty->end, 4u);
  EXPECT_TRUE(file.data(*empty).empty());
  EXPECT_EQ(empty->shape, (std::vector<int64_t>{0, 4}));
  EXPECT_EQ(as_text(file.data(*file.find("b"))), as_text(b));
}

TEST(SafetensorsRoundTrip, ZeroSizeTensorOnlyFile) {
  const auto bytes = make_safetensors(R"({"e":{"dtype":"I64","shape":[3,0],"data_offsets":[0,0]}})");
  const auto file = SafetensorsFile::parse(bytes);
  ASSERT_EQ(file.tensors().size(), 1u);
  EXPECT_EQ(file.tensors()[0].nbytes(), 0u);
}

TEST(SafetensorsRoundTrip, EmptyFileWithNoTensors) {
  TempDir dir;
  SafetensorsWriter writer;
  writer.write(dir / "empty.safetensors");
  const auto bytes = read_bytes(dir / "empty.safetensors");
  ASSERT_EQ(bytes.size(), 16u);
  EXPECT_EQ(header_length_of(bytes), 8u);
  EXPECT_EQ(as_text(std::span(bytes).subspan(8)), "{}      ");
  const auto file = SafetensorsFile::open(dir / "empty.safetensors");
  EXPECT_TRUE(file.tensors().empty());
  EXPECT_TRUE(file.metadata().empty());

  // An unpadded "{}" header is valid too.
  EXPECT_TRUE(SafetensorsFile::parse(make_safetensors("{}")).tensors().empty());
}

TEST(SafetensorsRoundTrip, MetadataOnlyFile) {
  const auto file = SafetensorsFile::parse(make_safetensors(R"({"__metadata__":{"a":"1","b":""}})"));
  EXPECT_TRUE(file.tensors().empty());
  EXPECT_EQ(file.metadata().at("a"), "1");
  EXPECT_EQ(file.metadata().at("b"), "");
}

TEST(SafetensorsWriter, PadsHeaderToMultipleOf8) {
  TempDir dir;
  for (size_t name_length = 1; name_length <= 9; ++name_length) {
    SCOPED_TRACE(name_length);
    SafetensorsWriter writer;
    const auto data = filled_bytes(3);
    writer.add(std::string(name_length, 'x'), StDType::U8, {3}, data);
    const auto path = dir / "pad.safetensors";
    writer.write(path);
    const auto bytes = read_bytes(path);
    const uint64_t length = header_length_of(bytes);
    EXPECT_EQ(length % 8, 0u);
    ASSERT_EQ(bytes.size(), 8 + length + 3);
    const std::string header = as_text(std::span(bytes).subspan(8, size_t(length)));
    const size_t close = header.rfind('}');
    ASSERT_NE(close, std::string::npos);
    EXPECT_LT(header.size() - close - 1, 8u);
    EXPECT_EQ(header.find_first_not_of(' ', close + 1), std::string::npos) << "padding must be spaces";
    EXPECT_EQ(as_text(std::span(bytes).subspan(size_t(8 + length))), as_text(data));
  }
}

// The example of FORMATS.md: a 54-byte header padded to 56.
TEST(SafetensorsWriter, MatchesReferenceVector) {
  TempDir dir;
  SafetensorsWriter writer;
  const auto data = filled_bytes(4);
  writer.add("w", StDType::F16, {2}, data);
  writer.write(dir / "w.safetensors");
  const auto bytes = read_bytes(dir / "w.safetensors");
  ASSERT_EQ(bytes.size(), 8u + 56u + 4u);
  const std::vector<std::byte> length_field = {std::byte(0x38), std::byte(0), std::byte(0), std::byte(0),
                                               std::byte(0),    std::byte(0), std::byte(0), std::byte(0)};
  EXPECT_TRUE(std::equal(length_field.begin(), length_field.end(), bytes.begin()));
  EXPECT_EQ(as_text(std::span(bytes).subspan(8, 56)),
            std::string(R"({"w":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}})") + "  ");
}

TEST(SafetensorsWriter, HeaderListsTensorsInInsertionOrder) {
  TempDir dir;
  SafetensorsWriter writer;
  const auto data = filled_bytes(2);
  writer.add("zeta", StDType::U8, {1}, std::span(data).first(1));
  writer.add("alpha", StDType::U8, {1}, std::span(data).last(1));
  writer.set_metadata("k", "v");
  writer.write(dir / "order.safetensors");
  const auto bytes = read_bytes(dir / "order.safetensors");
  const std::string header = as_text(std::span(bytes).subspan(8, size_t(header_length_of(bytes))));
  EXPECT_EQ(header.rfind(R"({"__metadata__":{"k":"v"},"zeta":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                         R"("alpha":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                         0),
            0u)
      << header;
  const auto file = SafetensorsFile::open(dir / "order.safetensors");
  EXPECT_EQ(file.tensors()[0].name, "zeta");
  EXPECT_EQ(file.data(*file.find("alpha"))[0], data[1]);
}

TEST(SafetensorsWriter, AddOwnedKeepsData) {
  TempDir dir;
  SafetensorsWriter writer;
  {
    auto data = filled_bytes(8, 9);
    writer.add_owned("owned", StDType::I32, {2}, std::move(data));
  }
  EXPECT_TRUE(writer.contains("owned"));
  EXPECT_FALSE(writer.contains("other"));
  writer.write(dir / "owned.safetensors");
  const auto file = SafetensorsFile::open(dir / "owned.safetensors");
  EXPECT_EQ(as_text(file.data(*file.find("owned"))), as_text(filled_bytes(8, 9)));
}

TEST(SafetensorsWriter, ReplacesExistingFileAndLeavesNoTemporary) {
  TempDir dir;
  const auto path = dir / "out.safetensors";
  write_bytes(path, filled_bytes(100));
  SafetensorsWriter writer;
  const auto data = filled_bytes(2);
  writer.add("x", StDType::U8, {2}, data);
  writer.write(path);
  EXPECT_EQ(SafetensorsFile::open(path).tensors().size(), 1u);
  // Nothing but the output is left in the directory.
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++entries;
  EXPECT_EQ(entries, 1u);
}

// Fault 8 of the review: the writer opened `<output>.tmp` with O_CREAT|O_TRUNC and followed a
// symlink planted there. The temporary is now created exclusively under a random name, so no
// name an attacker can plant beside the output redirects the write.
TEST(SafetensorsWriter, PlantedSymlinksDoNotRedirectTheWrite) {
  TempDir dir;
  const auto victim = dir / "victim.txt";
  write_bytes(victim, filled_bytes(16, 3));
  const auto path = dir / "out.safetensors";
  std::filesystem::create_symlink(victim, path.string() + ".tmp");
  SafetensorsWriter writer;
  const auto data = filled_bytes(4);
  writer.add("x", StDType::U8, {4}, data);
  writer.write(path);
  EXPECT_EQ(read_bytes(victim), filled_bytes(16, 3));
  EXPECT_EQ(SafetensorsFile::open(path).tensors().size(), 1u);

  // A symlink at the output itself is replaced by the new file; its target is not written.
  const auto link = dir / "link.safetensors";
  std::filesystem::create_symlink(victim, link);
  writer.write(link);
  EXPECT_FALSE(std::filesystem::is_symlink(link));
  EXPECT_EQ(read_bytes(victim), filled_bytes(16, 3));
  EXPECT_EQ(SafetensorsFile::open(link).tensors().size(), 1u);
}

// Crash safety: a write that fails part-way (here: the file-size limit, as a full disk would)
// leaves the previous output untouched and no temporary behind. Run in a child process so that
// the resource limit does not reach the rest of the suite.
TEST(SafetensorsWriter, WriteFailingMidwayLeavesPreviousOutputIntact) {
  TempDir dir;
  const auto path = dir / "out.safetensors";
  const auto previous = filled_bytes(100, 5);
  write_bytes(path, previous);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::signal(SIGXFSZ, SIG_IGN);  // make the limit an EFBIG error instead of a signal
    const rlimit limit{4096, 4096};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    SafetensorsWriter writer;
    writer.add_owned("big", StDType::U8, {1 << 20}, filled_bytes(1 << 20));
    try {
      writer.write(path);
    } catch (const Error& e) {
      ::_exit(e.code() == ErrorCode::io && std::string(e.what()).find(path.string()) != std::string::npos ? 0 : 2);
    }
    ::_exit(1);  // the write should have failed
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: the oversized write succeeded; 2: wrong error";
  EXPECT_EQ(read_bytes(path), previous);
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++entries;
  EXPECT_EQ(entries, 1u) << "a temporary file was left behind";
}

// Lazy tensors are produced while the file streams out, one at a time, in header order.
TEST(SafetensorsWriter, LazyTensorsAreProducedInOrderAndReleased) {
  TempDir dir;
  SafetensorsWriter writer;
  std::vector<std::string> events;
  std::vector<std::byte> current;
  for (const std::string name : {"a", "b"}) {
    writer.add_lazy(name, StDType::U8, {3},
                    {[&, name] {
                       events.push_back("make " + name);
                       current = filled_bytes(3, name == "a" ? 10 : 20);
                       return std::span<const std::byte>(current);
                     },
                     [&, name] {
                       events.push_back("release " + name);
                       current.clear();
                     }});
  }
  const auto plain = filled_bytes(2, 30);
  writer.add("c", StDType::U8, {2}, plain);
  EXPECT_TRUE(events.empty()) << "nothing is produced before write()";
  writer.write(dir / "lazy.safetensors");
  EXPECT_EQ(events, (std::vector<std::string>{"make a", "release a", "make b", "release b"}));
  const auto file = SafetensorsFile::open(dir / "lazy.safetensors");
  EXPECT_EQ(as_text(file.data(*file.find("a"))), as_text(filled_bytes(3, 10)));
  EXPECT_EQ(as_text(file.data(*file.find("b"))), as_text(filled_bytes(3, 20)));
  EXPECT_EQ(as_text(file.data(*file.find("c"))), as_text(plain));
}

TEST(SafetensorsWriter, LazyTensorOfTheWrongSizeFailsTheWrite) {
  TempDir dir;
  SafetensorsWriter writer;
  std::vector<std::byte> bytes = filled_bytes(5);
  writer.add_lazy("a", StDType::U8, {4}, {[&] { return std::span<const std::byte>(bytes); }, {}});
  expect_error([&] { writer.write(dir / "x.safetensors"); }, ErrorCode::internal, "producer gave 5 bytes, 4 declared");
  EXPECT_FALSE(std::filesystem::exists(dir / "x.safetensors"));
}

TEST(SafetensorsWriter, RejectsDuplicateName) {
  SafetensorsWriter writer;
  const auto data = filled_bytes(2);
  writer.add("x", StDType::U8, {2}, data);
  expect_error([&] { writer.add("x", StDType::U8, {2}, data); }, ErrorCode::invalid_argument, "'x' is added twice");
}

TEST(SafetensorsWriter, RejectsSizeMismatch) {
  SafetensorsWriter writer;
  const auto data = filled_bytes(6);
  expect_error([&] { writer.add("x", StDType::F32, {2}, data); }, ErrorCode::invalid_argument, "need 8 bytes, got 6");
  expect_error([&] { writer.add_owned("y", StDType::U8, {7}, filled_bytes(6)); }, ErrorCode::invalid_argument,
               "need 7 bytes");
  EXPECT_FALSE(writer.contains("x"));
  EXPECT_FALSE(writer.contains("y"));
}

TEST(SafetensorsWriter, RejectsNegativeDimensionAndReservedName) {
  SafetensorsWriter writer;
  expect_error([&] { writer.add("x", StDType::U8, {-1}, {}); }, ErrorCode::invalid_argument, "negative dimension");
  expect_error([&] { writer.add("__metadata__", StDType::U8, {0}, {}); }, ErrorCode::invalid_argument, "reserved");
}

TEST(SafetensorsWriter, RejectsInvalidUtf8Name) {
  TempDir dir;
  SafetensorsWriter writer;
  writer.add("bad\xff", StDType::U8, {0}, {});
  expect_error([&] { writer.write(dir / "x.safetensors"); }, ErrorCode::invalid_argument, "not valid UTF-8");
  EXPECT_FALSE(std::filesystem::exists(dir / "x.safetensors"));
}

TEST(SafetensorsWriter, IoErrorNamesPath) {
  TempDir dir;
  SafetensorsWriter writer;
  const auto path = dir / "no_such_dir" / "x.safetensors";
  expect_error([&] { writer.write(path); }, ErrorCode::io, path.string());
}

// ---------------------------------------------------------------------------------------------
// Accepted variations
// ---------------------------------------------------------------------------------------------

TEST(SafetensorsParse, AcceptsTrailingWhitespaceAndUnknownEntryFields) {
  const auto bytes = make_safetensors(
      "{\"t\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2],\"extra\":[1]}}\n\t  ", filled_bytes(2));
  const auto file = SafetensorsFile::parse(bytes);
  ASSERT_EQ(file.tensors().size(), 1u);
  EXPECT_EQ(file.tensors()[0].shape, std::vector<int64_t>{2});
}

TEST(SafetensorsParse, TensorsAreReturnedInOffsetOrder) {
  const auto bytes = make_safetensors(
      R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[2,3]},"b":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})",
      filled_bytes(3));
  const auto file = SafetensorsFile::parse(bytes);
  ASSERT_EQ(file.tensors().size(), 2u);
  EXPECT_EQ(file.tensors()[0].name, "b");
  EXPECT_EQ(file.tensors()[1].name, "a");
}

// ---------------------------------------------------------------------------------------------
// Malformed files: one test per case
// ---------------------------------------------------------------------------------------------

TEST(SafetensorsMalformed, FileShorterThan8Bytes) {
  for (size_t size = 0; size < 8; ++size) expect_format_error(filled_bytes(size), "too short");
}

TEST(SafetensorsMalformed, HeaderLengthBeyondFile) {
  expect_format_error(make_safetensors("{}", {}, 3), "runs past the end");
  expect_format_error(make_safetensors("{}", {}, UINT64_C(1) << 20), "runs past the end");
}

TEST(SafetensorsMalformed, HeaderLengthAboveLimit) {
  expect_format_error(make_safetensors("{}", {}, kMaxHeaderBytes + 1), "exceeds the 104857600-byte limit");
  expect_format_error(make_safetensors("{}", {}, UINT64_MAX), "exceeds the 104857600-byte limit");
}

TEST(SafetensorsMalformed, InvalidJson) {
  expect_format_error(make_safetensors(R"({"t":{"dtype":"U8",)"), "not valid JSON");
  expect_format_error(make_safetensors(R"({"t":1}x)"), "not valid JSON");
}

TEST(SafetensorsMalformed, EmptyHeader) { expect_format_error(make_safetensors(""), "not valid JSON"); }

TEST(SafetensorsMalformed, InvalidUtf8InHeader) {
  expect_format_error(make_safetensors("{\"t\xff\":{}}"), "not valid JSON");
}

TEST(SafetensorsMalformed, JsonNotAnObject) {
  expect_format_error(make_safetensors("[1,2]"), "not a JSON object");
  expect_format_error(make_safetensors("\"text\""), "not a JSON object");
}

TEST(SafetensorsMalformed, HeaderNotStartingWithBrace) {
  expect_format_error(make_safetensors(" {}"), "does not start with '{'");
}

TEST(SafetensorsMalformed, EntryNotAnObject) {
  expect_format_error(make_safetensors(R"({"t":5})"), "tensor 't': entry is not a JSON object");
  expect_format_error(make_safetensors(R"({"t":[]})"), "tensor 't': entry is not a JSON object");
}

TEST(SafetensorsMalformed, MissingDtype) {
  expect_format_error(one_tensor(R"({"shape":[1],"data_offsets":[0,1]})", 1), "tensor 't': missing \"dtype\"");
}

TEST(SafetensorsMalformed, DtypeNotString) {
  expect_format_error(one_tensor(R"({"dtype":1,"shape":[1],"data_offsets":[0,1]})", 1), "\"dtype\" is not a string");
}

TEST(SafetensorsMalformed, UnknownDtype) {
  expect_format_error(one_tensor(R"({"dtype":"F17","shape":[1],"data_offsets":[0,1]})", 1),
                      "tensor 't': unknown dtype \"F17\"");
  expect_format_error(one_tensor(R"({"dtype":"f16","shape":[1],"data_offsets":[0,2]})", 2), "unknown dtype");
}

TEST(SafetensorsMalformed, MissingShape) {
  expect_format_error(one_tensor(R"({"dtype":"U8","data_offsets":[0,1]})", 1), "tensor 't': missing \"shape\"");
}

TEST(SafetensorsMalformed, ShapeNotArray) {
  expect_format_error(one_tensor(R"({"dtype":"U8","shape":1,"data_offsets":[0,1]})", 1), "\"shape\" is not an array");
}

TEST(SafetensorsMalformed, NegativeShapeDim) {
  expect_format_error(one_tensor(R"({"dtype":"U8","shape":[-1],"data_offsets":[0,0]})", 0), "negative dimension -1");
}

TEST(SafetensorsMalformed, NonIntegerShapeDim) {
  expect_format_error(one_tensor(R"({"dtype":"U8","shape":[1.5],"data_offsets":[0,1]})", 1),
                      "shape dimension 1.5 is not a non-negative integer");
  expect_format_error(one_tensor(R"({"dtype":"U8","shape":[2.0],"data_offsets":[0,2]})", 2), "not a non-negative");
  expect_format_error(one_tensor(R"({"dtype":"U8","shape":["2"],"data_offsets":[0,2]})", 2), "not a non-negative");
  expect_format_error(one_tensor(R"({"dtype":"U8","shape":[null],"data_offsets":[0,0]})", 0), "not a non-negative");
}

TEST(SafetensorsMalformed, ShapeDimTooLarge) {
  expect_format_error(one_tensor(R"({"dtype":"U8","shape":[9223372036854775808],"data_offsets":[0,0]})", 0),
                      "is too large");
  // Beyond uint64 nlohmann yields a float, which is not an integer.
  expect_format_error(one_tensor(R"({"dtype":"U8","shape":[18446744073709551616],"data_offsets":[0,0]})", 0),
                      "not a non-negative integer");
}

TEST(SafetensorsMalformed, ShapeProductOverflow) {
  expect_format_error(one_tensor(R"({"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,0]})", 0),
                      "more elements than fit in 64 bits");
}

TEST(SafetensorsMalformed, ByteCountOverflow) {
  // 2^61 elements fit in int64, 2^61 * 8 bytes do not.
  expect_format_error(one_tensor(R"({"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]})", 0),
                      "overflow a 64-bit byte count");
}

TEST(SafetensorsMalformed, MissingDataOffsets) {
  expect_format_error(one_tensor(R"({"dtype":"U8","shape":[1]})", 1), "tensor 't': missing \"data_offsets\"");
}

TEST(SafetensorsMalformed, DataOffsetsWrongArity) {
  expect_format_error(one_tensor(R"({"dtype":"U8","shape":[1],"data_offsets":[0,1,2]})", 1),
                      "\"data_offsets\" is not an array [begin, end]");
  expect_format_error(one_tensor(R"({"dtype":"U8","shape":[1],"data_offsets":[1]})", 1), "is not an array [begin");
  expect_format_error(one_tensor(R"({"dtype":"U8","shape":[1],"data_offsets":{"a":1}})", 1), "is not an array [begin");
}

TEST(SafetensorsMalformed, DataOffsetsNotIntegers) {
  expect_format_error(one_tensor(R"({"dtype":"U8","shape":[1],"data_offsets":[0,1.0]})", 1),
                      "are not non-negative integers");
  expect_format_error(one_tensor(R"({"dtype":"U8","shape":[1],"data_offsets":[-1,0]})", 1),
                      "are not non-negative integers");
  expect_format_error(one_tensor(R"({"dtype":"U8","shape":[1],"data_offsets":["0","1"]})", 1),
                      "are not non-negative integers");
}

TEST(SafetensorsMalformed, ByteCountMismatch) {
  expect_format_error(one_tensor(R"({"dtype":"F32","shape":[2],"data_offsets":[0,4]})", 4),
                      "needs 8 bytes but data_offsets [0, 4] span 4 bytes");
}

TEST(SafetensorsMalformed, BeginAfterEnd) {
  expect_format_error(one_tensor(R"({"dtype":"U8","shape":[0],"data_offsets":[4,2]})", 4), "begin 4 is after end 2");
}

TEST(SafetensorsMalformed, OffsetsOutOfRange) {
  expect_format_error(one_tensor(R"({"dtype":"U8","shape":[4],"data_offsets":[0,4]})", 3),
                      "run past the 3-byte data buffer");
  expect_format_error(
      one_tensor(R"({"dtype":"U8","shape":[1],"data_offsets":[18446744073709551614,18446744073709551615]})", 3),
      "run past");
}

TEST(SafetensorsMalformed, OverlappingOffsets) {
  expect_format_error(
      make_safetensors(
          R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}})",
          filled_bytes(6)),
      "tensor 'b': data_offsets [2, 6] overlap tensor 'a' [0, 4]");
}

TEST(SafetensorsMalformed, IdenticalOffsets) {
  expect_format_error(
      make_safetensors(
          R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}})",
          filled_bytes(4)),
      "overlap");
}

TEST(SafetensorsMalformed, ZeroSizeTensorInsideAnother) {
  expect_format_error(
      make_safetensors(
          R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[0],"data_offsets":[2,2]}})",
          filled_bytes(4)),
      "overlap");
}

TEST(SafetensorsMalformed, GapBetweenTensors) {
  expect_format_error(
      make_safetensors(
          R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[3,5]}})",
          filled_bytes(5)),
      "tensor 'b': data_offsets [3, 5] leave a gap of 1 unused bytes at 2");
}

TEST(SafetensorsMalformed, GapAtStartOfBuffer) {
  expect_format_error(one_tensor(R"({"dtype":"U8","shape":[2],"data_offsets":[1,3]})", 3),
                      "leave a gap of 1 unused bytes at 0");
}

TEST(SafetensorsMalformed, TrailingBytes) {
  expect_format_error(one_tensor(R"({"dtype":"U8","shape":[2],"data_offsets":[0,2]})", 5), "3 trailing bytes");
  expect_format_error(make_safetensors("{}", filled_bytes(1)), "1 trailing bytes");
}

TEST(SafetensorsMalformed, DuplicateTensorNames) {
  expect_format_error(
      make_safetensors(
          R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"a":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})",
          filled_bytes(4)),
      "repeats the key 'a'");
}

TEST(SafetensorsMalformed, DuplicateFieldInEntry) {
  expect_format_error(one_tensor(R"({"dtype":"U8","dtype":"I8","shape":[1],"data_offsets":[0,1]})", 1),
                      "repeats the key 'dtype'");
}

TEST(SafetensorsMalformed, DuplicateMetadataKey) {
  expect_format_error(make_safetensors(R"({"__metadata__":{"k":"1","k":"2"}})"), "repeats the key 'k'");
  expect_format_error(make_safetensors(R"({"__metadata__":{},"__metadata__":{}})"), "repeats the key '__metadata__'");
}

TEST(SafetensorsMalformed, MetadataNotAnObject) {
  expect_format_error(make_safetensors(R"({"__metadata__":"x"})"), "__metadata__ is not a JSON object");
  expect_format_error(make_safetensors(R"({"__metadata__":["a","b"]})"), "__metadata__ is not a JSON object");
}

TEST(SafetensorsMalformed, MetadataValueNotString) {
  expect_format_error(make_safetensors(R"({"__metadata__":{"k":1}})"), "__metadata__ value of 'k' is not a string");
  expect_format_error(make_safetensors(R"({"__metadata__":{"k":{"a":"b"}}})"), "value of 'k' is not a string");
  expect_format_error(make_safetensors(R"({"__metadata__":{"k":null}})"), "value of 'k' is not a string");
}

// Nesting is bounded everywhere, in ignored values too: a hostile header nested millions deep is
// refused at level kMaxJsonDepth, before anything recurses or allocates per level.
TEST(SafetensorsMalformed, DeeplyNestedValues) {
  constexpr size_t kDepth = 200'000;
  const std::string deep = std::string(kDepth, '[') + std::string(kDepth, ']');
  const auto expect_parse_error = [](const std::vector<std::byte>& bytes, const std::string& substring) {
    expect_error([&] { SafetensorsFile::parse(bytes); }, ErrorCode::format, substring);
  };
  expect_parse_error(make_safetensors("{\"t\":" + deep + "}"), "entry is not a JSON object (got an array)");
  expect_parse_error(one_tensor("{\"dtype\":\"U8\",\"extra\":" + deep + ",\"shape\":[0],\"data_offsets\":[0,0]}", 0),
                     "deeper than 64 levels");
  expect_parse_error(make_safetensors("{\"__metadata__\":{\"k\":" + deep + "}}"), "value of 'k' is not a string");
  // Just within the limit: accepted and skipped.
  const std::string ok = std::string(kMaxJsonDepth - 2, '[') + std::string(kMaxJsonDepth - 2, ']');
  EXPECT_EQ(
      SafetensorsFile::parse(one_tensor("{\"dtype\":\"U8\",\"x\":" + ok + ",\"shape\":[0],\"data_offsets\":[0,0]}", 0))
          .tensors()
          .size(),
      1u);
}

TEST(SafetensorsMalformed, RankAboveLimit) {
  std::string shape = "[1";
  for (size_t i = 1; i <= kMaxRank; ++i) shape += ",1";
  expect_format_error(one_tensor("{\"dtype\":\"U8\",\"shape\":" + shape + "],\"data_offsets\":[0,1]}", 1),
                      "more than 64 dimensions");
}

// A syntax error anywhere wins over a misplaced value before it, as with a document parser.
TEST(SafetensorsMalformed, SyntaxErrorReportedBeforeEarlierSemanticError) {
  expect_format_error(make_safetensors(R"({"t":5,"u":)"), "not valid JSON");
}

// ---------------------------------------------------------------------------------------------
// I/O errors
// ---------------------------------------------------------------------------------------------

TEST(SafetensorsIo, MissingFile) {
  TempDir dir;
  const auto path = dir / "missing.safetensors";
  expect_error([&] { SafetensorsFile::open(path); }, ErrorCode::io, path.string());
  expect_error([&] { SafetensorsFile::open(path); }, ErrorCode::io, "No such file");
}

TEST(SafetensorsIo, Directory) {
  TempDir dir;
  expect_error([&] { SafetensorsFile::open(dir.path()); }, ErrorCode::io, "not a regular file");
}

TEST(SafetensorsIo, PermissionDenied) {
  if (::geteuid() == 0) GTEST_SKIP() << "running as root: file permissions do not restrict reads";
  TempDir dir;
  const auto path = dir / "locked.safetensors";
  write_bytes(path, make_safetensors("{}      "));
  ASSERT_EQ(::chmod(path.c_str(), 0), 0);
  expect_error([&] { SafetensorsFile::open(path); }, ErrorCode::io, path.string());
  expect_error([&] { SafetensorsFile::open(path); }, ErrorCode::io, "Permission denied");
}

// A moved-from-and-into file keeps its mapping alive and its spans valid.
TEST(SafetensorsFileTest, MoveKeepsMappingAlive) {
  TempDir dir;
  SafetensorsWriter writer;
  const auto data = filled_bytes(16);
  writer.add("x", StDType::U8, {16}, data);
  writer.write(dir / "m.safetensors");
  auto file = SafetensorsFile::open(dir / "m.safetensors");
  SafetensorsFile moved = std::move(file);
  auto other = SafetensorsFile::parse(make_safetensors("{}"));
  other = std::move(moved);
  EXPECT_EQ(as_text(other.data(*other.find("x"))), as_text(data));
}

TEST(SafetensorsDtype, NamesSizesAndConversions) {
  EXPECT_EQ(st_dtype_size(StDType::F8_E5M2), 1u);
  EXPECT_EQ(st_dtype_size(StDType::U64), 8u);
  EXPECT_EQ(st_dtype_name(StDType::BF16), "BF16");
  EXPECT_EQ(parse_st_dtype("F8_E4M3"), StDType::F8_E4M3);
  EXPECT_EQ(parse_st_dtype("bf16"), std::nullopt);
  EXPECT_EQ(to_dtype(StDType::BF16), DType::bf16);
  EXPECT_EQ(to_dtype(StDType::I32), std::nullopt);
  EXPECT_EQ(to_st_dtype(DType::f32), StDType::F32);
}

}  // namespace
}  // namespace w4a16::io

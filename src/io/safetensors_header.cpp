// The safetensors header as a stream of SAX events (see safetensors_header.hpp for why).
//
// The accepted shape of the header, with the depth of each level:
//   {                                          depth 1: the root object
//     "__metadata__": { "key": "value", ... }, depth 2: string values only
//     "<tensor>": {                            depth 2: one entry per tensor
//       "dtype": "F16",
//       "shape": [d0, d1, ...],                depth 3: non-negative integers, at most kMaxRank
//       "data_offsets": [begin, end],          depth 3: exactly two non-negative integers
//       "<anything else>": <any JSON>          skipped, never stored, nesting <= kMaxJsonDepth
//     }, ...
//   }
// A value in the wrong place is a semantic error. The first one is remembered and parsing goes
// on (storing nothing more), so that a syntax error anywhere in the header is what gets reported,
// as a document parser would. Resource limits (depth, entry counts) stop the parse at once.
#include "io/safetensors_header.hpp"

#include <fmt/ranges.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "common/check.hpp"

namespace w4a16::io {

namespace {

using nlohmann::json;

// A scalar JSON value as the parser reports it: enough to check it and to quote it in a message.
struct Scalar {
  enum class Kind : uint8_t { null, boolean, integer, unsigned_integer, floating, string } kind;
  int64_t integer = 0;
  uint64_t unsigned_integer = 0;
  std::string_view text;  // string content, or a float's source text
  bool boolean = false;

  // Non-negative integers (JSON writes them as unsigned or signed depending on the producer).
  std::optional<uint64_t> as_uint64() const {
    if (kind == Kind::unsigned_integer) return unsigned_integer;
    if (kind == Kind::integer && integer >= 0) return uint64_t(integer);
    return std::nullopt;
  }

  // The value as JSON text, cut to 80 characters (fail() makes it printable).
  std::string describe() const {
    std::string out;
    switch (kind) {
      case Kind::null:
        out = "null";
        break;
      case Kind::boolean:
        out = boolean ? "true" : "false";
        break;
      case Kind::integer:
        out = std::to_string(integer);
        break;
      case Kind::unsigned_integer:
        out = std::to_string(unsigned_integer);
        break;
      case Kind::floating:
        out = std::string(text);
        break;
      case Kind::string:
        out = json(std::string(text.substr(0, 120))).dump(-1, ' ', false, json::error_handler_t::replace);
        break;
    }
    if (out.size() > 80) out = out.substr(0, 77) + "...";
    return out;
  }
};

class HeaderReader {
 public:
  // The types nlohmann's SAX interface is declared with.
  using number_integer_t = json::number_integer_t;
  using number_unsigned_t = json::number_unsigned_t;
  using number_float_t = json::number_float_t;
  using string_t = json::string_t;
  using binary_t = json::binary_t;

  explicit HeaderReader(std::string_view source) : source_(source) {}

  // --- SAX events ----------------------------------------------------------------------------
  bool null() { return scalar({Scalar::Kind::null}); }
  bool boolean(bool value) {
    Scalar s{Scalar::Kind::boolean};
    s.boolean = value;
    return scalar(s);
  }
  bool number_integer(number_integer_t value) {
    Scalar s{Scalar::Kind::integer};
    s.integer = value;
    return scalar(s);
  }
  bool number_unsigned(number_unsigned_t value) {
    Scalar s{Scalar::Kind::unsigned_integer};
    s.unsigned_integer = value;
    return scalar(s);
  }
  bool number_float(number_float_t, const string_t& text) {
    Scalar s{Scalar::Kind::floating};
    s.text = text;
    return scalar(s);
  }
  bool string(string_t& value) {
    Scalar s{Scalar::Kind::string};
    s.text = value;
    return scalar(s);
  }
  bool binary(binary_t&) { return scalar({Scalar::Kind::null}); }  // not produced by the JSON parser
  bool start_object(std::size_t) { return open(true); }
  bool start_array(std::size_t) { return open(false); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }
  bool key(string_t& name);
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) {
    syntax_error_ = e.what();
    return false;
  }

  // After sax_parse(): the header, or the first error (syntax errors first).
  SafetensorsHeader finish();

 private:
  // What the next value is, given the open containers and the last key.
  enum class Slot : uint8_t { root, metadata, entry, metadata_value, dtype, shape, offsets, dim, offset, ignored };
  enum class Container : uint8_t { root, metadata, entry, shape, offsets, skipped };
  enum Field : uint8_t { kDtype = 1, kShape = 2, kOffsets = 4, kOtherField = 8 };
  struct Open {
    Container container;
    uint64_t children = 0;  // values completed directly inside it
  };

  Slot slot() const;
  bool scalar(const Scalar& value);
  bool open(bool is_object);
  bool close();
  void completed_value() {
    if (!stack_.empty()) ++stack_.back().children;
  }
  void entry_done();
  void check_dim(const Scalar& value);
  void check_offset(const Scalar& value);

  // Remembers the first semantic error; everything after it is skipped.
  template <typename... Args>
  void error(fmt::format_string<Args...> format, Args&&... args) {
    if (!error_) error_ = fmt::format(format, std::forward<Args>(args)...);
  }
  std::string tensor_prefix() const { return fmt::format("tensor '{}': ", entry_.name); }

  std::string_view source_;
  std::vector<Open> stack_;  // open containers, outermost first; size() <= kMaxJsonDepth
  std::string key_;          // last key of the root or __metadata__ object
  Field field_ = kOtherField;
  bool seen_metadata_ = false;
  unsigned entry_fields_ = 0;  // Field bits seen in the current entry
  TensorInfo entry_;           // the entry being read
  int64_t entry_numel_ = 1;
  std::vector<uint64_t> offsets_;
  SafetensorsHeader header_;
  std::optional<std::string> error_;
  std::optional<std::string> syntax_error_;
};

HeaderReader::Slot HeaderReader::slot() const {
  if (error_) return Slot::ignored;
  if (stack_.empty()) return Slot::root;
  switch (stack_.back().container) {
    case Container::root:
      return key_ == "__metadata__" ? Slot::metadata : Slot::entry;
    case Container::metadata:
      return Slot::metadata_value;
    case Container::entry:
      return field_ == kDtype     ? Slot::dtype
             : field_ == kShape   ? Slot::shape
             : field_ == kOffsets ? Slot::offsets
                                  : Slot::ignored;
    case Container::shape:
      return Slot::dim;
    case Container::offsets:
      return Slot::offset;
    case Container::skipped:
      return Slot::ignored;
  }
  return Slot::ignored;
}

bool HeaderReader::key(string_t& name) {
  if (error_ || stack_.empty()) return true;
  switch (stack_.back().container) {
    case Container::root:
      if (name == "__metadata__") {
        if (seen_metadata_) error("header repeats the key '__metadata__'");
        seen_metadata_ = true;
      } else if (header_.tensors.size() >= kMaxTensors) {
        fail(ErrorCode::format, "safetensors {}: header has more than {} tensors (the limit of this reader)", source_,
             kMaxTensors);
      }
      key_ = name;
      break;
    case Container::metadata:
      if (header_.metadata.size() >= kMaxMetadataEntries) {
        fail(ErrorCode::format, "safetensors {}: __metadata__ has more than {} keys (the limit of this reader)",
             source_, kMaxMetadataEntries);
      }
      key_ = name;
      break;
    case Container::entry: {
      field_ = name == "dtype" ? kDtype : name == "shape" ? kShape : name == "data_offsets" ? kOffsets : kOtherField;
      if (field_ != kOtherField && (entry_fields_ & field_)) {
        error("{}header repeats the key '{}'", tensor_prefix(), name);
      }
      entry_fields_ |= field_;
      break;
    }
    default:
      break;  // keys of skipped objects are neither stored nor checked
  }
  return true;
}

bool HeaderReader::scalar(const Scalar& value) {
  switch (slot()) {
    case Slot::root:
      error("header is not a JSON object (got {})", value.describe());
      break;
    case Slot::metadata:
      error("__metadata__ is not a JSON object (got {})", value.describe());
      break;
    case Slot::entry:
      error("tensor '{}': entry is not a JSON object (got {})", key_, value.describe());
      break;
    case Slot::metadata_value:
      if (value.kind != Scalar::Kind::string) {
        error("__metadata__ value of '{}' is not a string (got {})", key_, value.describe());
      } else if (!header_.metadata.emplace(key_, std::string(value.text)).second) {
        error("header repeats the key '{}' in __metadata__", key_);
      }
      break;
    case Slot::dtype: {
      const auto dtype = value.kind == Scalar::Kind::string ? parse_st_dtype(value.text) : std::nullopt;
      if (value.kind != Scalar::Kind::string) {
        error("{}\"dtype\" is not a string (got {})", tensor_prefix(), value.describe());
      } else if (!dtype) {
        error("{}unknown dtype {}", tensor_prefix(), value.describe());
      } else {
        entry_.dtype = *dtype;
      }
      break;
    }
    case Slot::shape:
      error("{}\"shape\" is not an array (got {})", tensor_prefix(), value.describe());
      break;
    case Slot::offsets:
      error("{}\"data_offsets\" is not an array [begin, end] (got {})", tensor_prefix(), value.describe());
      break;
    case Slot::dim:
      check_dim(value);
      break;
    case Slot::offset:
      check_offset(value);
      break;
    case Slot::ignored:
      break;
  }
  completed_value();
  return true;
}

void HeaderReader::check_dim(const Scalar& value) {
  if (value.kind == Scalar::Kind::integer && value.integer < 0) {
    return error("{}negative dimension {} in shape", tensor_prefix(), value.integer);
  }
  const auto dim = value.as_uint64();
  if (!dim) return error("{}shape dimension {} is not a non-negative integer", tensor_prefix(), value.describe());
  if (*dim > uint64_t(INT64_MAX)) return error("{}shape dimension {} is too large", tensor_prefix(), *dim);
  if (entry_.shape.size() >= kMaxRank) {
    return error("{}shape has more than {} dimensions (the limit of this reader)", tensor_prefix(), kMaxRank);
  }
  const auto product = checked_mul(entry_numel_, int64_t(*dim));
  if (!product) return error("{}shape has more elements than fit in 64 bits", tensor_prefix());
  entry_numel_ = *product;
  entry_.shape.push_back(int64_t(*dim));
}

void HeaderReader::check_offset(const Scalar& value) {
  const auto offset = value.as_uint64();
  if (!offset) {
    return error("{}data_offsets are not non-negative integers (got {})", tensor_prefix(), value.describe());
  }
  if (offsets_.size() >= 2)
    return error("{}\"data_offsets\" is not an array [begin, end] (more than 2)", tensor_prefix());
  offsets_.push_back(*offset);
}

bool HeaderReader::open(bool is_object) {
  if (stack_.size() >= kMaxJsonDepth) {
    if (error_) return false;  // stop here and report the error already found
    fail(ErrorCode::format, "safetensors {}: header nests JSON deeper than {} levels (the limit of this reader)",
         source_, kMaxJsonDepth);
  }
  const char* got = is_object ? "an object" : "an array";
  Container container = Container::skipped;
  switch (slot()) {
    case Slot::root:
      if (is_object)
        container = Container::root;
      else
        error("header is not a JSON object (got {})", got);
      break;
    case Slot::metadata:
      if (is_object)
        container = Container::metadata;
      else
        error("__metadata__ is not a JSON object (got {})", got);
      break;
    case Slot::entry:
      if (is_object) {
        container = Container::entry;
        entry_ = TensorInfo{};
        entry_.name = key_;
        entry_numel_ = 1;
        entry_fields_ = 0;
        field_ = kOtherField;
        offsets_.clear();
      } else {
        error("tensor '{}': entry is not a JSON object (got {})", key_, got);
      }
      break;
    case Slot::metadata_value:
      error("__metadata__ value of '{}' is not a string (got {})", key_, got);
      break;
    case Slot::dtype:
      error("{}\"dtype\" is not a string (got {})", tensor_prefix(), got);
      break;
    case Slot::shape:
      if (!is_object)
        container = Container::shape;
      else
        error("{}\"shape\" is not an array (got {})", tensor_prefix(), got);
      break;
    case Slot::offsets:
      if (!is_object)
        container = Container::offsets;
      else
        error("{}\"data_offsets\" is not an array [begin, end] (got {})", tensor_prefix(), got);
      break;
    case Slot::dim:
      error("{}shape dimension ({}) is not a non-negative integer", tensor_prefix(), got);
      break;
    case Slot::offset:
      error("{}data_offsets are not non-negative integers (got {})", tensor_prefix(), got);
      break;
    case Slot::ignored:
      break;
  }
  stack_.push_back({error_ ? Container::skipped : container});
  return true;
}

bool HeaderReader::close() {
  const Open closed = stack_.back();
  stack_.pop_back();
  if (!error_) {
    if (closed.container == Container::entry) entry_done();
    if (closed.container == Container::offsets && offsets_.size() != 2) {
      error("{}\"data_offsets\" is not an array [begin, end] (got {} elements)", tensor_prefix(), offsets_.size());
    }
  }
  completed_value();
  return true;
}

void HeaderReader::entry_done() {
  const std::string_view name = entry_.name;
  if (!(entry_fields_ & kDtype)) return error("tensor '{}': missing \"dtype\"", name);
  if (!(entry_fields_ & kShape)) return error("tensor '{}': missing \"shape\"", name);
  if (!(entry_fields_ & kOffsets)) return error("tensor '{}': missing \"data_offsets\"", name);
  entry_.begin = offsets_[0];
  entry_.end = offsets_[1];
  if (entry_.begin > entry_.end) {
    return error("tensor '{}': data_offsets begin {} is after end {}", name, entry_.begin, entry_.end);
  }
  const auto nbytes = checked_mul(entry_numel_, int64_t(st_dtype_size(entry_.dtype)));
  if (!nbytes) {
    return error("tensor '{}': {} elements of {} overflow a 64-bit byte count", name, entry_numel_,
                 st_dtype_name(entry_.dtype));
  }
  if (uint64_t(*nbytes) != entry_.nbytes()) {
    return error("tensor '{}': shape [{}] of {} needs {} bytes but data_offsets [{}, {}] span {} bytes", name,
                 fmt::join(entry_.shape, ", "), st_dtype_name(entry_.dtype), *nbytes, entry_.begin, entry_.end,
                 entry_.nbytes());
  }
  header_.tensors.push_back(std::move(entry_));
}

SafetensorsHeader HeaderReader::finish() {
  if (syntax_error_) fail(ErrorCode::format, "safetensors {}: header is not valid JSON: {}", source_, *syntax_error_);
  if (error_) fail(ErrorCode::format, "safetensors {}: {}", source_, *error_);
  return std::move(header_);
}

}  // namespace

SafetensorsHeader parse_safetensors_header(std::string_view text, std::string_view source) {
  HeaderReader reader(source);
  json::sax_parse(text.begin(), text.end(), &reader, json::input_format_t::json, /*strict=*/true);
  return reader.finish();
}

}  // namespace w4a16::io

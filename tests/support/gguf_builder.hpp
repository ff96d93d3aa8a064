// A GGUF writer for hand-made and malformed files (tests only): every field is written as given,
// counts and version can lie, nothing is checked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace w4a16::test {

class GgufBuilder {
 public:
  using Bytes = std::vector<std::byte>;
  // Raw encoders: append to `out`.
  static void u8(Bytes& out, uint8_t v) { out.push_back(std::byte(v)); }
  static void u32(Bytes& out, uint32_t v) { raw(out, &v, 4); }
  static void u64(Bytes& out, uint64_t v) { raw(out, &v, 8); }
  static void str(Bytes& out, std::string_view s) {
    u64(out, s.size());
    raw(out, s.data(), s.size());
  }
  static void raw(Bytes& out, const void* p, size_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    out.insert(out.end(), b, b + n);
  }

  // A key/value: `value` is everything after the key (u32 type + encoded value).
  GgufBuilder& kv(std::string_view key, uint32_t type, const Bytes& value) {
    str(kvs_, key);
    u32(kvs_, type);
    kvs_.insert(kvs_.end(), value.begin(), value.end());
    ++kv_count_;
    return *this;
  }
  GgufBuilder& kv_u32(std::string_view key, uint32_t v) {
    Bytes b;
    u32(b, v);
    return kv(key, 4, b);
  }
  GgufBuilder& kv_string(std::string_view key, std::string_view v) {
    Bytes b;
    str(b, v);
    return kv(key, 8, b);
  }
  GgufBuilder& tensor(std::string_view name, std::vector<uint64_t> dims, uint32_t type, uint64_t offset) {
    str(infos_, name);
    u32(infos_, uint32_t(dims.size()));
    for (const uint64_t d : dims) u64(infos_, d);
    u32(infos_, type);
    u64(infos_, offset);
    ++tensor_count_;
    return *this;
  }
  GgufBuilder& version(uint32_t v) {
    version_ = v;
    return *this;
  }
  GgufBuilder& counts(uint64_t tensors, uint64_t kvs) {
    tensor_count_override_ = tensors;
    kv_count_override_ = kvs;
    return *this;
  }
  GgufBuilder& data(const Bytes& d) {
    data_ = d;
    return *this;
  }

  // magic, version, counts, kvs, tensor infos, zero padding to `alignment`, data.
  Bytes build(uint64_t alignment = 32) const {
    Bytes out;
    raw(out, "GGUF", 4);
    u32(out, version_);
    u64(out, tensor_count_override_ ? *tensor_count_override_ : tensor_count_);
    u64(out, kv_count_override_ ? *kv_count_override_ : kv_count_);
    out.insert(out.end(), kvs_.begin(), kvs_.end());
    out.insert(out.end(), infos_.begin(), infos_.end());
    out.resize((out.size() + alignment - 1) / alignment * alignment);
    out.insert(out.end(), data_.begin(), data_.end());
    return out;
  }

 private:
  uint32_t version_ = 3;
  uint64_t kv_count_ = 0, tensor_count_ = 0;
  std::optional<uint64_t> kv_count_override_, tensor_count_override_;
  Bytes kvs_, infos_, data_;
};

}  // namespace w4a16::test

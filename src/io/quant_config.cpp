// quantization_config readers: which formats are accepted, with which fields, and what each
// refusal says. The accepted keys and values are listed in docs/formats.md ("Checkpoint import").
#include "io/quant_config.hpp"

#include <fmt/ranges.h>

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>

#include "common/check.hpp"

namespace w4a16::io {

using nlohmann::json;

nlohmann::json parse_bounded_json(std::string_view text, std::string_view source) {
  if (text.size() > kMaxConfigBytes) {
    fail(ErrorCode::format, "{}: {} bytes of JSON (the limit is {})", source, text.size(), kMaxConfigBytes);
  }
  // Nesting depth, counted outside strings, before any parser sees the text.
  size_t depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaxConfigDepth) fail(ErrorCode::format, "{}: JSON nested deeper than {}", source, kMaxConfigDepth);
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  try {
    return json::parse(text.begin(), text.end(), /*cb=*/nullptr, /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const json::exception& e) {
    fail(ErrorCode::format, "{}: invalid JSON: {}", source, e.what());
  }
}

namespace {

// Field access that names the config and the key in every error.
class Fields {
 public:
  Fields(const json& object, std::string source) : object_(object), source_(std::move(source)) {}

  const json* get(std::string_view key) const {
    const auto it = object_.find(key);
    return (it == object_.end() || it->is_null()) ? nullptr : &*it;
  }
  // The first of several spellings present (AutoAWQ writes w_bit where transformers writes bits).
  const json* get_any(std::initializer_list<std::string_view> keys, std::string_view& found) const {
    for (const std::string_view key : keys) {
      if (const json* v = get(key)) {
        found = key;
        return v;
      }
    }
    found = *keys.begin();
    return nullptr;
  }
  int64_t integer(std::initializer_list<std::string_view> keys, int64_t lo, int64_t hi) const {
    std::string_view key;
    const json* v = get_any(keys, key);
    if (v == nullptr) fail(ErrorCode::format, "{}: missing field '{}'", source_, key);
    return integer_value(*v, key, lo, hi);
  }
  int64_t integer_value(const json& v, std::string_view key, int64_t lo, int64_t hi) const {
    if (!v.is_number_integer()) fail(ErrorCode::format, "{}: '{}' must be an integer, not {}", source_, key, v.dump());
    if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max())) {
      fail(ErrorCode::format, "{}: '{}' = {} is out of range", source_, key, v.dump());
    }
    const int64_t x = v.get<int64_t>();
    if (x < lo || x > hi) fail(ErrorCode::format, "{}: '{}' = {} is outside [{}, {}]", source_, key, x, lo, hi);
    return x;
  }
  bool boolean(std::string_view key, bool fallback) const {
    const json* v = get(key);
    if (v == nullptr) return fallback;
    if (!v->is_boolean()) fail(ErrorCode::format, "{}: '{}' must be true or false, not {}", source_, key, v->dump());
    return v->get<bool>();
  }
  std::optional<std::string> string(std::initializer_list<std::string_view> keys) const {
    std::string_view key;
    const json* v = get_any(keys, key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_string()) fail(ErrorCode::format, "{}: '{}' must be a string, not {}", source_, key, v->dump());
    return v->get<std::string>();
  }
  std::vector<std::string> strings(std::string_view key) const {
    std::vector<std::string> out;
    const json* v = get(key);
    if (v == nullptr) return out;
    if (!v->is_array()) fail(ErrorCode::format, "{}: '{}' must be a list of strings", source_, key);
    for (const json& e : *v) {
      if (!e.is_string())
        fail(ErrorCode::format, "{}: '{}' must be a list of strings, holds {}", source_, key, e.dump());
      out.push_back(e.get<std::string>());
    }
    return out;
  }
  const std::string& source() const { return source_; }

 private:
  const json& object_;
  std::string source_;
};

constexpr int64_t kMaxGroupSize = int64_t(1) << 31;

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

void require_4_bits(int64_t bits, std::string_view method, const std::string& source) {
  if (bits != 4)
    fail(ErrorCode::unsupported, "{}: {}-bit {} is not supported (w4a16 imports 4-bit weights only)", source, bits,
         method);
}

int64_t group_size_field(const Fields& f, std::initializer_list<std::string_view> keys) {
  const int64_t g = f.integer(keys, -1, kMaxGroupSize);
  if (g == 0) fail(ErrorCode::format, "{}: group_size 0 (use -1 for per-channel)", f.source());
  return g;
}

GptqConfig parse_gptq(const Fields& f) {
  require_4_bits(f.integer({"bits"}, 0, 64), "GPTQ", f.source());
  GptqConfig c;
  c.group_size = group_size_field(f, {"group_size"});
  c.sym = f.boolean("sym", true);             // AutoGPTQ's default
  c.desc_act = f.boolean("desc_act", false);  // AutoGPTQ's default
  // GPTQModel writes "format"; AutoGPTQ "checkpoint_format"; both absent = the original v1.
  const std::string format = lower(f.string({"checkpoint_format", "format"}).value_or("gptq"));
  if (format == "gptq_v2") {
    c.v2 = true;
  } else if (format != "gptq") {
    fail(ErrorCode::unsupported, "{}: GPTQ checkpoint format '{}' is not supported (gptq or gptq_v2)", f.source(),
         format);
  }
  return c;
}

AwqConfig parse_awq(const Fields& f) {
  require_4_bits(f.integer({"bits", "w_bit"}, 0, 64), "AWQ", f.source());
  AwqConfig c;
  c.group_size = group_size_field(f, {"group_size", "q_group_size"});
  c.zero_point = f.boolean("zero_point", true);
  const std::string version = lower(f.string({"version"}).value_or("gemm"));
  if (version != "gemm") {
    fail(ErrorCode::unsupported,
         "{}: AWQ version '{}' is not supported: only the GEMM layout is imported (gemv, gemv_fast and marlin "
         "store other layouts)",
         f.source(), version);
  }
  // transformers' AwqConfig: backend "llm-awq" is MIT-Han-lab's original packing, not AutoAWQ's.
  const std::string backend = lower(f.string({"backend"}).value_or("autoawq"));
  if (backend != "autoawq") {
    fail(ErrorCode::unsupported, "{}: AWQ backend '{}' is not supported (autoawq only)", f.source(), backend);
  }
  return c;
}

CtScheme parse_ct_scheme(const std::string& name, const json& group, const std::string& source) {
  const std::string where = fmt::format("{}: config_groups.{}", source, name);
  if (!group.is_object()) fail(ErrorCode::format, "{} must be an object", where);
  const Fields f(group, where);
  CtScheme s;
  s.name = name;
  s.targets = f.strings("targets");
  if (s.targets.empty()) fail(ErrorCode::format, "{}: missing field 'targets'", where);
  for (const char* act : {"input_activations", "output_activations"}) {
    if (f.get(act) != nullptr) {
      fail(ErrorCode::unsupported, "{}: '{}' are quantized too (w4a16 imports weight-only schemes)", where, act);
    }
  }
  if (const auto format = f.string({"format"}); format && *format != "pack-quantized") {
    fail(ErrorCode::unsupported, "{}: format '{}' is not supported (pack-quantized only)", where, *format);
  }
  const json* weights = f.get("weights");
  if (weights == nullptr) fail(ErrorCode::format, "{}: missing field 'weights'", where);
  if (!weights->is_object()) fail(ErrorCode::format, "{}.weights must be an object", where);
  const Fields w(*weights, where + ".weights");
  const int64_t bits = w.integer({"num_bits"}, 0, 64);
  const std::string type = w.string({"type"}).value_or("int");
  if (type != "int")
    fail(ErrorCode::unsupported, "{}: {}-bit '{}' weights are not supported (4-bit int only)", w.source(), bits, type);
  require_4_bits(bits, "compressed-tensors", w.source());
  s.symmetric = w.boolean("symmetric", true);
  if (w.boolean("dynamic", false)) fail(ErrorCode::unsupported, "{}: dynamic weight quantization", w.source());
  const std::string strategy = w.string({"strategy"}).value_or("");
  if (strategy == "group") {
    s.group_size = w.integer({"group_size"}, 1, kMaxGroupSize);
  } else if (strategy == "channel") {
    s.group_size = 0;
  } else {
    fail(ErrorCode::unsupported, "{}: strategy '{}' is not supported (group or channel)", w.source(), strategy);
  }
  if (const json* a = w.get("actorder")) {
    if (a->is_boolean()) {
      s.actorder = a->get<bool>() ? "group" : "";  // older releases wrote a boolean
    } else if (a->is_string()) {
      s.actorder = a->get<std::string>();
      if (s.actorder != "group" && s.actorder != "weight" && s.actorder != "static" && s.actorder != "dynamic") {
        fail(ErrorCode::format, "{}: unknown actorder '{}'", w.source(), s.actorder);
      }
    } else {
      fail(ErrorCode::format, "{}: 'actorder' must be a string, a boolean or null, not {}", w.source(), a->dump());
    }
  }
  return s;
}

CompressedTensorsConfig parse_compressed_tensors(const Fields& f, const json& q) {
  const auto format = f.string({"format"});
  if (!format) fail(ErrorCode::format, "{}: missing field 'format'", f.source());
  if (*format != "pack-quantized") {
    fail(ErrorCode::unsupported, "{}: compressed-tensors format '{}' is not supported (pack-quantized only)",
         f.source(), *format);
  }
  if (const auto status = f.string({"quantization_status"}); status && *status != "compressed") {
    fail(ErrorCode::unsupported, "{}: quantization_status '{}' (the weights are not stored packed)", f.source(),
         *status);
  }
  CompressedTensorsConfig c;
  const json* groups = f.get("config_groups");
  if (groups == nullptr) fail(ErrorCode::format, "{}: missing field 'config_groups'", f.source());
  if (!groups->is_object() || groups->empty()) {
    fail(ErrorCode::format, "{}: 'config_groups' must be a non-empty object", f.source());
  }
  for (const auto& [name, group] : groups->items()) c.schemes.push_back(parse_ct_scheme(name, group, f.source()));
  c.ignore = f.strings("ignore");
  (void)q;
  return c;
}

}  // namespace

QuantConfig parse_quantization_config(const json& q, std::string_view source) {
  const std::string where = fmt::format("{}: quantization_config", source);
  if (!q.is_object()) fail(ErrorCode::format, "{} must be an object, not {}", where, q.type_name());
  const Fields f(q, where);
  const auto method = f.string({"quant_method"});
  if (!method) fail(ErrorCode::format, "{}: missing field 'quant_method'", where);
  if (*method == "gptq") return parse_gptq(f);
  if (*method == "awq") return parse_awq(f);
  if (*method == "compressed-tensors") return parse_compressed_tensors(f, q);
  if (*method == "exl2") {
    fail(ErrorCode::unsupported, "{}: EXL2 (exllamav2) checkpoints are not supported (variable bit widths)", where);
  }
  fail(ErrorCode::unsupported, "{}: quant_method '{}' is not supported (gptq, awq or compressed-tensors)", where,
       *method);
}

std::optional<QuantConfig> parse_quant_config(std::string_view config_json, std::string_view source) {
  const json config = parse_bounded_json(config_json, source);
  if (!config.is_object()) fail(ErrorCode::format, "{}: the top level must be an object", source);
  const auto it = config.find("quantization_config");
  if (it == config.end() || it->is_null()) return std::nullopt;
  return parse_quantization_config(*it, source);
}

std::string_view quant_method(const QuantConfig& config) {
  switch (config.index()) {
    case 0:
      return "gptq";
    case 1:
      return "awq";
    default:
      return "compressed-tensors";
  }
}

std::string describe(const QuantConfig& config) {
  const auto g = [](int64_t group_size) {
    return group_size <= 0 ? std::string("per-channel") : fmt::format("g={}", group_size);
  };
  if (const auto* c = std::get_if<GptqConfig>(&config)) {
    return fmt::format("gptq {} {} {}{}", c->v2 ? "v2" : "v1", g(c->group_size), c->sym ? "sym" : "asym",
                       c->desc_act ? " act-order" : "");
  }
  if (const auto* c = std::get_if<AwqConfig>(&config)) {
    return fmt::format("awq gemm {}{}", g(c->group_size), c->zero_point ? " zero-point" : "");
  }
  const auto& c = std::get<CompressedTensorsConfig>(config);
  std::vector<std::string> parts;
  for (const CtScheme& s : c.schemes) {
    parts.push_back(fmt::format("{}: [{}] {} {}{}", s.name, fmt::join(s.targets, ","), g(s.group_size),
                                s.symmetric ? "sym" : "asym", s.actorder.empty() ? "" : " actorder=" + s.actorder));
  }
  return fmt::format("compressed-tensors pack-quantized {}; ignore [{}]", fmt::join(parts, "; "),
                     fmt::join(c.ignore, ","));
}

}  // namespace w4a16::io

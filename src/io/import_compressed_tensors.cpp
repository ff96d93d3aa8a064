// The compressed-tensors format (pack-quantized): its quantization_config with one scheme per
// config group, which scheme covers a module, and the importer: the packed layout already is W's
// [N, K] orientation; only the nibble order along K and the zero points along N need unpacking.
#include "io/import_compressed_tensors.hpp"

#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>

#include "common/check.hpp"
#include "io/config_fields.hpp"

namespace w4a16::io {

namespace {

using nlohmann::json;

// config_groups.<name>.weights: int4 weights, a group or channel strategy, an optional actorder.
void parse_ct_weights(const ConfigFields& w, CtScheme& s) {
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
}

// A list of targets, each regex compiled once here; a refused regex is Error(format) naming where
// it was read.
std::vector<CtTarget> parse_targets(std::vector<std::string> texts, const std::string& where) {
  std::vector<CtTarget> targets;
  targets.reserve(texts.size());
  for (std::string& text : texts) {
    try {
      targets.emplace_back(std::move(text));
    } catch (const Error& e) {
      fail(e.code(), "{}: {}", where, e.what());
    }
  }
  return targets;
}

CtScheme parse_ct_scheme(const std::string& name, const json& group, const std::string& source) {
  const std::string where = fmt::format("{}: config_groups.{}", source, name);
  if (!group.is_object()) fail(ErrorCode::format, "{} must be an object", where);
  const ConfigFields f(group, where);
  CtScheme s;
  s.name = name;
  s.targets = parse_targets(f.strings("targets"), where + ".targets");
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
  parse_ct_weights(ConfigFields(*weights, where + ".weights"), s);
  return s;
}

CompressedTensorsConfig parse_compressed_tensors(const ConfigFields& f) {
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
  c.ignore = parse_targets(f.strings("ignore"), f.source() + ": ignore");
  return c;
}

std::string texts(const std::vector<CtTarget>& targets) {
  std::vector<std::string_view> out;
  for (const CtTarget& t : targets) out.push_back(t.text());
  return fmt::format("{}", fmt::join(out, ","));
}

std::string describe_compressed_tensors(const CompressedTensorsConfig& c) {
  std::vector<std::string> parts;
  for (const CtScheme& s : c.schemes) {
    parts.push_back(fmt::format("{}: [{}] {} {}{}", s.name, texts(s.targets), group_size_text(s.group_size),
                                s.symmetric ? "sym" : "asym", s.actorder.empty() ? "" : " actorder=" + s.actorder));
  }
  return fmt::format("compressed-tensors pack-quantized {}; ignore [{}]", fmt::join(parts, "; "), texts(c.ignore));
}

bool is_class_name(std::string_view target) {
  return !target.empty() && target[0] >= 'A' && target[0] <= 'Z' && target.find('.') == std::string_view::npos;
}

QuantizedWeight import_ct_module(const TensorSource& source, std::string_view module,
                                 const CompressedTensorsConfig& config,
                                 std::vector<std::string>* /*warnings: none questionable*/) {
  return import_compressed_tensors(source, module, ct_scheme_for(config, module));
}

void check_ct_module(const CompressedTensorsConfig& config, std::string_view module) {
  (void)ct_scheme_for(config, module);
}

constexpr std::array<std::string_view, 6> kCtSuffixes = {".weight_packed", ".weight_scale", ".weight_zero_point",
                                                         ".weight_g_idx",  ".weight_shape", ".bias"};

}  // namespace

const ImportFormat<CompressedTensorsConfig> CompressedTensorsConfig::format = {
    .name = "compressed-tensors",
    .parse = parse_compressed_tensors,
    .tensor_suffixes = kCtSuffixes,
    .import = import_ct_module,
    .describe = describe_compressed_tensors,
    .check_module = check_ct_module,
};

CtTarget::CtTarget(std::string text) : text_(std::move(text)) {
  if (text_.starts_with("re:")) {
    try {
      regex_ = ModulePattern::compile(std::string_view(text_).substr(3));
    } catch (const Error& e) {
      fail(e.code(), "target '{}': {}", text_.size() <= 80 ? text_ : text_.substr(0, 80) + "...", e.what());
    }
  }
}

bool CtTarget::matches(std::string_view module) const {
  if (regex_) return regex_->matches(module);
  if (is_class_name(text_)) return text_.ends_with("Linear");
  return text_ == module;
}

const CtScheme& ct_scheme_for(const CompressedTensorsConfig& config, std::string_view module) {
  for (const CtTarget& pattern : config.ignore) {
    if (pattern.matches(module)) {
      fail(ErrorCode::format, "module '{}' is stored packed but the config's ignore list names it ('{}')", module,
           pattern.text());
    }
  }
  for (const CtScheme& scheme : config.schemes) {
    for (const CtTarget& target : scheme.targets) {
      if (target.matches(module)) return scheme;
    }
  }
  fail(ErrorCode::format, "module '{}' is stored packed but no config group targets it", module);
}

QuantizedWeight import_compressed_tensors(const TensorSource& source, std::string_view module, const CtScheme& scheme) {
  const std::string m(module);
  const TensorView& packed = require_tensor(source, m + ".weight_packed");
  const TensorView& scales = require_tensor(source, m + ".weight_scale");
  const TensorView& shape = require_tensor(source, m + ".weight_shape");
  const TensorView* zero_tensor = source.find(m + ".weight_zero_point");
  const TensorView* g_idx_tensor = source.find(m + ".weight_g_idx");

  require_dtype(packed, {StDType::I32});
  const DType scale_dtype = floating_dtype(scales);
  require_rank(packed, 2);
  require_rank(scales, 2);
  require_shape(shape, {2}, "(N, K)");
  const std::vector<int64_t> nk = load_integers(shape);
  const int64_t n = nk[0], k = nk[1];
  if (n <= 0 || k <= 0 || k > (int64_t(1) << 40)) {
    fail(ErrorCode::format, "tensor '{}': (N, K) = ({}, {}) is not a valid shape", shape.name, n, k);
  }
  require_shape(packed, {n, (k + 7) / 8}, fmt::format("[N, ceil(K/8)] with (N, K) = ({}, {})", n, k));
  const int64_t g = scheme.group_size == 0 ? k : scheme.group_size;
  const int64_t groups = (k + g - 1) / g;
  require_shape(scales, {n, groups}, fmt::format("[N, ceil(K/g)] with K = {}, g = {}", k, g));

  std::vector<uint8_t> zeros(size_t(n * groups), 8);  // [N, G]
  if (zero_tensor != nullptr) {
    const TensorView& zt = *zero_tensor;
    require_dtype(zt, {StDType::I32, StDType::I8});
    if (zt.dtype == StDType::I32) {
      require_shape(zt, {(n + 7) / 8, groups}, fmt::format("[ceil(N/8), ceil(K/g)] with N = {}, G = {}", n, groups));
      const std::vector<uint32_t> words = load_words(zt);
      for (int64_t col = 0; col < n; ++col) {
        for (int64_t j = 0; j < groups; ++j) {
          zeros[size_t(col * groups + j)] = nibble(words[size_t(col / 8 * groups + j)], int(col % 8));
        }
      }
    } else {
      require_shape(zt, {n, groups}, fmt::format("[N, ceil(K/g)] with N = {}, G = {}", n, groups));
      for (size_t i = 0; i < zeros.size(); ++i) {
        const int zp = int(static_cast<int8_t>(zt.data[i]));
        if (zp < -8 || zp > 7) fail(ErrorCode::format, "tensor '{}': zero point {} is outside [-8, 7]", zt.name, zp);
        zeros[i] = uint8_t(zp + 8);
      }
    }
    if (scheme.symmetric && std::any_of(zeros.begin(), zeros.end(), [](uint8_t z) { return z != 8; })) {
      fail(ErrorCode::format, "tensor '{}': non-zero zero points in symmetric scheme '{}'", zt.name, scheme.name);
    }
  } else if (!scheme.symmetric) {
    fail(ErrorCode::format, "missing tensor '{}.weight_zero_point' (scheme '{}' is asymmetric)", m, scheme.name);
  }

  std::vector<int32_t> perm;
  if (g_idx_tensor != nullptr) {
    require_shape(*g_idx_tensor, {k}, "[K]");
    perm = act_order_permutation(load_integers(*g_idx_tensor), k, g, groups, g_idx_tensor->name);
  }

  const std::vector<uint32_t> words = load_words(packed);  // [N, ceil(K/8)]
  const int64_t words_k = (k + 7) / 8;
  const int64_t row_bytes = (k + 1) / 2;
  std::vector<uint8_t> codes(size_t(n * row_bytes), 0);  // [N, ceil(K/2)]
  for (int64_t col = 0; col < n; ++col) {
    const uint32_t* row = words.data() + col * words_k;
    uint8_t* out = codes.data() + col * row_bytes;
    for (int64_t j = 0; j < k; ++j) {
      const int64_t feature = perm.empty() ? j : perm[size_t(j)];
      out[j / 2] |= uint8_t(nibble(row[feature / 8], int(feature % 8)) << (4 * (j & 1)));
    }
  }
  std::vector<std::byte> scale_bytes(scales.data.begin(), scales.data.end());
  return assemble_weight(module, n, k, g, scale_dtype, std::move(codes), std::move(scale_bytes), std::move(zeros),
                         std::move(perm), read_bias(source, module, n));
}

}  // namespace w4a16::io

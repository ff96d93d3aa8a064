// Quantized layers inside safetensors files: writing, reading with full cross-checks, listing,
// and the public load/save/list functions of w4a16.hpp. The layout is specified in
// docs/formats.md ("w4a16 layers"); quantized_file.hpp has the one-screen summary.
#include "io/quantized_file.hpp"

#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "common/check.hpp"
#include "common/name_table.hpp"

namespace w4a16 {

std::string module_name(std::string_view tensor_or_module) {
  constexpr std::string_view suffix = ".weight";
  if (tensor_or_module.size() >= suffix.size() && tensor_or_module.ends_with(suffix)) {
    tensor_or_module.remove_suffix(suffix.size());
  }
  return std::string(tensor_or_module);
}

namespace io {

namespace {

constexpr std::string_view kMetadataSuffix = ".w4a16";

// The names of one layer's tensors and metadata key.
struct LayerNames {
  std::string module;
  std::string metadata_key;  // <module>.w4a16
  std::string codes;         // <module>.w4a16.codes
  std::string scales;        // <module>.w4a16.scales
  std::string zeros;         // <module>.w4a16.zeros
  std::string perm;          // <module>.w4a16.perm
  std::string bias;          // <module>.bias

  explicit LayerNames(std::string_view layer, bool strip_weight = true)
      : module(strip_weight ? module_name(layer) : std::string(layer)) {
    metadata_key = module + std::string(kMetadataSuffix);
    codes = metadata_key + ".codes";
    scales = metadata_key + ".scales";
    zeros = metadata_key + ".zeros";
    perm = metadata_key + ".perm";
    bias = module + ".bias";
  }
};

std::span<const std::byte> as_bytes(const void* data, size_t size) {
  return {static_cast<const std::byte*>(data), size};
}

// --- reading helpers: each failure is a format error that names the layer --------------------

using nlohmann::json;

template <typename... Args>
[[noreturn]] void layer_fail(const LayerNames& names, fmt::format_string<Args...> format, Args&&... args) {
  fail(ErrorCode::format, "quantized layer '{}': {}", names.module, fmt::format(format, std::forward<Args>(args)...));
}

std::string shape_text(const std::vector<int64_t>& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

// The layer rules below read a header: a SafetensorsFile being read, or a SafetensorsWriter whose
// declared tensors and metadata are checked before it writes (one set of rules for both, so that
// convert cannot write what load refuses).
template <class Header>
concept LayerHeader = requires(const Header& h, std::string_view name) {
  { h.find(name) } -> std::same_as<const TensorInfo*>;
  { h.metadata() } -> std::same_as<const std::map<std::string, std::string>&>;
};

// The tensor `name`, which must exist (when `required`) with one of `dtypes` and exactly `shape`.
template <LayerHeader Header>
const TensorInfo* expect_tensor(const Header& file, const LayerNames& names, const std::string& name, bool required,
                                std::initializer_list<StDType> dtypes, const std::vector<int64_t>& shape) {
  const TensorInfo* tensor = file.find(name);
  if (tensor == nullptr) {
    if (required) layer_fail(names, "tensor '{}' is missing", name);
    return nullptr;
  }
  if (std::find(dtypes.begin(), dtypes.end(), tensor->dtype) == dtypes.end()) {
    std::vector<std::string_view> expected;
    for (const StDType d : dtypes) expected.push_back(st_dtype_name(d));
    layer_fail(names, "tensor '{}' has dtype {}, expected {}", name, st_dtype_name(tensor->dtype),
               fmt::join(expected, " or "));
  }
  if (tensor->shape != shape) {
    layer_fail(names, "tensor '{}' has shape {}, expected {}", name, shape_text(tensor->shape), shape_text(shape));
  }
  return tensor;
}

template <typename T>
std::vector<T> copy_data(const SafetensorsFile& file, const TensorInfo& tensor) {
  const auto bytes = file.data(tensor);
  std::vector<T> out(bytes.size() / sizeof(T));
  if (!bytes.empty()) std::memcpy(out.data(), bytes.data(), out.size() * sizeof(T));
  return out;
}

// A short rendering of a metadata value for error messages (never a recursive dump of a nested
// value: the metadata string comes from the file and can nest arrays millions deep).
std::string describe(const json& value) {
  if (value.is_structured()) return value.is_array() ? "an array" : "an object";
  std::string text = value.dump(-1, ' ', true, json::error_handler_t::replace);
  if (text.size() > 80) text = text.substr(0, 77) + "...";
  return text;
}

int64_t metadata_int(const json& meta, const LayerNames& names, const char* key) {
  const auto it = meta.find(key);
  if (it == meta.end()) layer_fail(names, "metadata has no \"{}\"", key);
  if (!it->is_number_integer()) layer_fail(names, "metadata \"{}\" is not an integer ({})", key, describe(*it));
  if (it->is_number_unsigned() && it->get<uint64_t>() > uint64_t(INT64_MAX)) {
    layer_fail(names, "metadata \"{}\" = {} is too large", key, describe(*it));
  }
  return it->get<int64_t>();
}

const std::string& metadata_string(const json& meta, const LayerNames& names, const char* key) {
  const auto it = meta.find(key);
  if (it == meta.end()) layer_fail(names, "metadata has no \"{}\"", key);
  if (!it->is_string()) layer_fail(names, "metadata \"{}\" is not a string ({})", key, describe(*it));
  return it->get_ref<const std::string&>();
}

// The spellings of a layer's zero mode and scale dtype in its metadata (docs/formats.md), written
// and read here: the file format's own table, so that a change to the public names (to_string)
// cannot change what files hold or which files read.
constexpr std::array<Named<ZeroMode>, 3> kZeroModeNames{
    {{ZeroMode::sym, "sym"}, {ZeroMode::asym, "asym"}, {ZeroMode::float_zero, "float"}}};
constexpr std::array<Named<DType>, 3> kScaleDTypeNames{
    {{DType::f16, "fp16"}, {DType::bf16, "bf16"}, {DType::f32, "fp32"}}};

// The metadata string `key`, one of the table's names.
template <class E, size_t N>
E metadata_name(const json& meta, const LayerNames& names, const char* key, const std::array<Named<E>, N>& table) {
  const std::string& text = metadata_string(meta, names, key);
  for (const Named<E>& row : table) {
    if (row.name == text) return row.value;
  }
  layer_fail(names, "metadata {} '{}' is not {}", key, text, names_of(table));
}

}  // namespace

namespace {

// One tensor of a layer in the file: which part of the QuantizedWeight it holds.
enum class Part : uint8_t { codes, scales, zeros, perm, bias };
struct PartTensor {
  std::string name;
  StDType dtype;
  std::vector<int64_t> shape;
  Part part;
};

// The tensors one layer writes, in file order, from what is known before its data exists.
std::vector<PartTensor> layer_tensors(const LayerNames& names, const LayerDescription& d) {
  const QuantizedLayout& l = d.layout;
  const StDType scale_dtype = to_st_dtype(l.scale_dtype);
  std::vector<PartTensor> out;
  out.push_back({names.codes, StDType::U8, {l.n, l.row_bytes()}, Part::codes});
  out.push_back({names.scales, scale_dtype, {l.n, l.groups()}, Part::scales});
  if (l.zero_mode == ZeroMode::asym) out.push_back({names.zeros, StDType::U8, {l.n, l.groups()}, Part::zeros});
  if (l.zero_mode == ZeroMode::float_zero) out.push_back({names.zeros, scale_dtype, {l.n, l.groups()}, Part::zeros});
  if (d.act_order) out.push_back({names.perm, StDType::I32, {l.k}, Part::perm});
  if (d.bias_dtype) out.push_back({names.bias, to_st_dtype(*d.bias_dtype), {l.n}, Part::bias});
  return out;
}

std::span<const std::byte> part_bytes(const QuantizedWeight& w, Part part) {
  switch (part) {
    case Part::codes:
      return as_bytes(w.codes().data(), w.codes().size());
    case Part::scales:
      return w.scales();
    case Part::zeros:
      return w.zeros();
    case Part::perm:
      return as_bytes(w.perm().data(), w.perm().size() * sizeof(int32_t));
    case Part::bias:
      return w.bias().data;
  }
  return {};
}

std::string layer_metadata(const LayerDescription& d) {
  const QuantizedLayout& l = d.layout;
  nlohmann::ordered_json meta;
  meta["format"] = "w4a16";
  meta["version"] = kFormatVersion;
  meta["n"] = l.n;
  meta["k"] = l.k;
  meta["group_size"] = l.group_size;
  meta["zero_mode"] = name_of(kZeroModeNames, l.zero_mode);
  meta["scale_dtype"] = name_of(kScaleDTypeNames, l.scale_dtype);
  meta["act_order"] = d.act_order;
  return meta.dump();
}

LayerNames checked_names(const SafetensorsWriter& writer, std::string_view layer, std::string_view what) {
  LayerNames names(layer);
  require(!names.module.empty(), "{}: layer name '{}' gives an empty module name", what, layer);
  for (const std::string* name : {&names.codes, &names.scales, &names.zeros, &names.perm, &names.bias}) {
    require(!writer.contains(*name), "{}: layer '{}': the writer already holds tensor '{}'", what, names.module, *name);
  }
  return names;
}

}  // namespace

LayerDescription describe(const QuantizedWeight& weight) {
  LayerDescription d;
  d.layout = weight.layout();
  d.act_order = weight.has_perm();
  if (weight.has_bias()) d.bias_dtype = weight.bias().dtype;
  return d;
}

void add_quantized(SafetensorsWriter& writer, std::string_view layer, const QuantizedWeight& weight) {
  const LayerNames names = checked_names(writer, layer, "add_quantized");
  const LayerDescription d = describe(weight);
  for (const PartTensor& t : layer_tensors(names, d)) writer.add(t.name, t.dtype, t.shape, part_bytes(weight, t.part));
  writer.set_metadata(names.metadata_key, layer_metadata(d));
}

void add_quantized_lazy(SafetensorsWriter& writer, std::string_view layer, const LayerDescription& description,
                        std::function<QuantizedWeight()> make) {
  const LayerNames names = checked_names(writer, layer, "add_quantized_lazy");
  try {
    description.layout.validate();  // before its sizes are used to declare tensors
  } catch (const Error& e) {
    layer_fail(names, "{}", e.what());
  }
  // The weight is made when its first tensor is written and dropped after its last one.
  struct Cache {
    std::function<QuantizedWeight()> make;
    std::optional<QuantizedWeight> weight;
  };
  auto cache = std::make_shared<Cache>(Cache{std::move(make), std::nullopt});
  const std::vector<PartTensor> tensors = layer_tensors(names, description);
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Part part = tensors[i].part;
    const bool last = i + 1 == tensors.size();
    SafetensorsWriter::LazyData data;
    data.bytes = [cache, part, description, module = names.module]() -> std::span<const std::byte> {
      if (!cache->weight) {
        cache->weight.emplace(cache->make());
        const LayerDescription made = describe(*cache->weight);
        const QuantizedLayout &a = made.layout, &b = description.layout;
        if (a.n != b.n || a.k != b.k || a.group_size != b.group_size || a.zero_mode != b.zero_mode ||
            a.scale_dtype != b.scale_dtype || made.act_order != description.act_order ||
            made.bias_dtype != description.bias_dtype) {
          fail(ErrorCode::internal, "layer '{}': the weight made for writing differs from its description", module);
        }
      }
      return part_bytes(*cache->weight, part);
    };
    if (last) data.release = [cache] { cache->weight.reset(); };
    writer.add_lazy(tensors[i].name, tensors[i].dtype, tensors[i].shape, std::move(data));
  }
  writer.set_metadata(names.metadata_key, layer_metadata(description));
}

namespace {

// Modules with a metadata key <module>.w4a16, by name.
std::set<std::string> metadata_modules(const std::map<std::string, std::string>& metadata) {
  std::set<std::string> modules;
  for (const auto& [key, value] : metadata) {
    if (key.size() > kMetadataSuffix.size() && key.ends_with(kMetadataSuffix)) {
      modules.insert(key.substr(0, key.size() - kMetadataSuffix.size()));
    }
  }
  return modules;
}

// A layer's metadata, its names and its JSON text: as given, or, for a module whose own name ends
// in ".weight" (written by another tool), as given without stripping it.
template <LayerHeader Header>
std::pair<LayerNames, const std::string*> find_layer(const Header& file, std::string_view layer) {
  LayerNames names(layer);
  auto meta_it = file.metadata().find(names.metadata_key);
  if (meta_it == file.metadata().end() && names.module != layer) {
    LayerNames exact(layer, /*strip_weight=*/false);
    if (const auto it = file.metadata().find(exact.metadata_key); it != file.metadata().end()) {
      names = std::move(exact);
      meta_it = it;
    }
  }
  if (meta_it == file.metadata().end()) {
    const auto modules = metadata_modules(file.metadata());
    fail(ErrorCode::invalid_argument, "no quantized layer '{}' in the file (no __metadata__ key '{}'); it has: {}",
         names.module, names.metadata_key,
         modules.empty() ? std::string("none") : fmt::format("{}", fmt::join(modules, ", ")));
  }
  return {std::move(names), &meta_it->second};
}

struct LayerMetadata {
  QuantizedLayout layout;
  bool act_order = false;
};

// The layer's JSON metadata (docs/formats.md, "w4a16 layers"), every field checked.
LayerMetadata parse_layer_metadata(const std::string& text, const LayerNames& names) {
  const json meta = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (meta.is_discarded()) layer_fail(names, "metadata '{}' is not valid JSON", names.metadata_key);
  if (!meta.is_object()) layer_fail(names, "metadata '{}' is not a JSON object", names.metadata_key);

  const std::string& format = metadata_string(meta, names, "format");
  if (format != "w4a16") layer_fail(names, "metadata \"format\" is '{}', expected 'w4a16'", format);
  const int64_t version = metadata_int(meta, names, "version");
  if (version != kFormatVersion) {
    layer_fail(names, "format version {} is not supported (this reader knows version {})", version, kFormatVersion);
  }

  LayerMetadata m;
  QuantizedLayout& l = m.layout;
  l.n = metadata_int(meta, names, "n");
  l.k = metadata_int(meta, names, "k");
  l.group_size = metadata_int(meta, names, "group_size");
  l.zero_mode = metadata_name(meta, names, "zero_mode", kZeroModeNames);
  l.scale_dtype = metadata_name(meta, names, "scale_dtype", kScaleDTypeNames);
  try {
    l.validate();
  } catch (const Error& e) {
    layer_fail(names, "metadata: {}", e.what());
  }
  const auto act_order_it = meta.find("act_order");
  if (act_order_it == meta.end()) layer_fail(names, "metadata has no \"act_order\"");
  if (!act_order_it->is_boolean()) layer_fail(names, "metadata \"act_order\" is not true or false");
  m.act_order = act_order_it->get<bool>();
  return m;
}

// The layer's tensors, each present exactly when the metadata says and with its dtype and shape.
struct LayerTensors {
  const TensorInfo* codes = nullptr;
  const TensorInfo* scales = nullptr;
  const TensorInfo* zeros = nullptr;  // asym and float only
  const TensorInfo* perm = nullptr;   // act_order only
  const TensorInfo* bias = nullptr;   // optional
};

template <LayerHeader Header>
LayerTensors find_layer_tensors(const Header& file, const LayerNames& names, const LayerMetadata& m) {
  const QuantizedLayout& l = m.layout;
  const StDType st_scale = to_st_dtype(l.scale_dtype);
  const std::vector<int64_t> per_group = {l.n, l.groups()};
  LayerTensors t;
  t.codes = expect_tensor(file, names, names.codes, true, {StDType::U8}, {l.n, l.row_bytes()});
  t.scales = expect_tensor(file, names, names.scales, true, {st_scale}, per_group);
  switch (l.zero_mode) {
    case ZeroMode::sym:
      if (file.find(names.zeros) != nullptr) layer_fail(names, "tensor '{}' is present in sym mode", names.zeros);
      break;
    case ZeroMode::asym:
      t.zeros = expect_tensor(file, names, names.zeros, true, {StDType::U8}, per_group);
      break;
    case ZeroMode::float_zero:
      t.zeros = expect_tensor(file, names, names.zeros, true, {st_scale}, per_group);
      break;
  }
  if (m.act_order) {
    t.perm = expect_tensor(file, names, names.perm, true, {StDType::I32}, {l.k});
  } else if (file.find(names.perm) != nullptr) {
    layer_fail(names, "tensor '{}' is present but metadata says act_order=false", names.perm);
  }
  t.bias = expect_tensor(file, names, names.bias, false, {StDType::F16, StDType::BF16, StDType::F32}, {l.n});
  return t;
}

}  // namespace

// Stages: find the layer's metadata, parse it, find its tensors (every one must match the metadata
// exactly; sizes then follow from the container's checks), then copy them out.
QuantizedWeight read_quantized(const SafetensorsFile& file, std::string_view layer) {
  const auto [names, text] = find_layer(file, layer);
  const LayerMetadata m = parse_layer_metadata(*text, names);
  const LayerTensors t = find_layer_tensors(file, names, m);
  Bias stored_bias;
  if (t.bias != nullptr) {
    stored_bias.dtype = *to_dtype(t.bias->dtype);
    stored_bias.data = copy_data<std::byte>(file, *t.bias);
  }
  try {
    return QuantizedWeight(m.layout, copy_data<uint8_t>(file, *t.codes), copy_data<std::byte>(file, *t.scales),
                           t.zeros ? copy_data<std::byte>(file, *t.zeros) : std::vector<std::byte>{},
                           t.perm ? copy_data<int32_t>(file, *t.perm) : std::vector<int32_t>{}, std::move(stored_bias));
  } catch (const Error& e) {
    if (e.code() != ErrorCode::invalid_argument) throw;
    layer_fail(names, "{}", e.what());
  }
}

void check_quantized_layers(const SafetensorsWriter& writer) {
  for (const std::string& module : metadata_modules(writer.metadata())) {
    const auto [names, text] = find_layer(writer, module);
    find_layer_tensors(writer, names, parse_layer_metadata(*text, names));
  }
}

std::vector<std::string> quantized_modules(const SafetensorsFile& file) {
  std::set<std::string> modules = metadata_modules(file.metadata());
  // File order: by the position of each module's codes tensor; modules without one go last, by name.
  std::vector<std::string> ordered;
  ordered.reserve(modules.size());
  for (const TensorInfo& tensor : file.tensors()) {
    constexpr std::string_view codes_suffix = ".w4a16.codes";
    if (!tensor.name.ends_with(codes_suffix)) continue;
    const auto it = modules.find(tensor.name.substr(0, tensor.name.size() - codes_suffix.size()));
    if (it == modules.end()) continue;
    ordered.push_back(*it);
    modules.erase(it);
  }
  ordered.insert(ordered.end(), modules.begin(), modules.end());
  return ordered;
}

}  // namespace io

// --- public API (w4a16.hpp) --------------------------------------------------------------------

namespace {

// Prefixes errors from the file layer with the path when they do not name it already.
template <typename F>
auto with_path(const std::filesystem::path& path, F&& body) {
  try {
    return body();
  } catch (const Error& e) {
    const std::string text = e.what();
    if (text.find(printable(path.string())) != std::string::npos) throw;
    fail(e.code(), "'{}': {}", path.string(), text);
  }
}

}  // namespace

QuantizedWeight load_quantized(const std::filesystem::path& path, std::string_view layer) {
  return with_path(path, [&] { return io::read_quantized(io::SafetensorsFile::open(path), layer); });
}

std::vector<std::string> list_quantized(const std::filesystem::path& path) {
  return with_path(path, [&] { return io::quantized_modules(io::SafetensorsFile::open(path)); });
}

void save_quantized(const std::filesystem::path& path,
                    const std::vector<std::pair<std::string, const QuantizedWeight*>>& layers) {
  io::SafetensorsWriter writer;
  std::set<std::string> seen;
  for (const auto& [layer, weight] : layers) {
    require(weight != nullptr, "save_quantized: layer '{}' has a null weight", layer);
    const std::string module = module_name(layer);
    require(seen.insert(module).second, "save_quantized: layer '{}' is given twice", module);
    io::add_quantized(writer, module, *weight);
  }
  writer.write(path);
}

}  // namespace w4a16

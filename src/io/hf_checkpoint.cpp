// Hugging Face checkpoint directories: config.json, single-file or sharded safetensors weights
// (with the index validated before it is trusted), and the module-by-module import.
#include "io/hf_checkpoint.hpp"

#include <nlohmann/json.hpp>
#include <set>

#include "common/check.hpp"
#include "io/input_file.hpp"

namespace w4a16::io {

namespace {

constexpr std::string_view kConfigName = "config.json";
constexpr std::string_view kSingleName = "model.safetensors";
constexpr std::string_view kIndexName = "model.safetensors.index.json";

// A small JSON file: a regular file (io/input_file.hpp), refused beyond kMaxConfigBytes.
std::string read_small_file(const std::filesystem::path& path) { return read_text_file(path, kMaxConfigBytes); }

// A shard name from the index: a plain file name, so it cannot leave the directory.
void check_shard_name(const std::string& name, const std::filesystem::path& index) {
  const bool plain = !name.empty() && name != "." && name != ".." &&
                     name.find_first_of(std::string_view("/\\\0", 3)) == std::string::npos &&
                     name.find("..") == std::string::npos;
  if (!plain) {
    fail(ErrorCode::format, "'{}': shard '{}' is not a plain file name inside the checkpoint directory", index.string(),
         name);
  }
}

std::string strip_weight(std::string_view module) { return module_name(module); }

}  // namespace

HfCheckpoint::HfCheckpoint(HfCheckpoint&&) noexcept = default;
HfCheckpoint& HfCheckpoint::operator=(HfCheckpoint&&) noexcept = default;
HfCheckpoint::~HfCheckpoint() = default;

std::string_view HfCheckpoint::shard_of(std::string_view tensor) const {
  const auto it = shard_index_.find(tensor);
  return it == shard_index_.end() ? std::string_view() : std::string_view(shard_names_[it->second]);
}

HfCheckpoint HfCheckpoint::open(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) fail(ErrorCode::io, "'{}' is not a checkpoint directory", dir.string());
  HfCheckpoint ckpt;
  ckpt.dir_ = dir;
  const auto config_path = dir / kConfigName;
  if (!std::filesystem::exists(config_path, ec)) fail(ErrorCode::io, "'{}': no config.json", dir.string());
  ckpt.quant_config_ = parse_quant_config(read_small_file(config_path), config_path.string());

  // Which files hold which tensors. transformers prefers the single file when both exist.
  std::map<std::string, std::string> weight_map;  // tensor -> shard (sharded only)
  if (std::filesystem::exists(dir / kSingleName, ec)) {
    ckpt.shard_names_.emplace_back(kSingleName);
  } else if (std::filesystem::exists(dir / kIndexName, ec)) {
    const auto index_path = dir / kIndexName;
    const nlohmann::json index = parse_bounded_json(read_small_file(index_path), index_path.string());
    const auto it = index.is_object() ? index.find("weight_map") : index.end();
    if (it == index.end() || !it->is_object()) {
      fail(ErrorCode::format, "'{}': 'weight_map' must be an object of tensor name -> shard file", index_path.string());
    }
    std::set<std::string> seen;
    for (const auto& [tensor, shard] : it->items()) {
      if (!shard.is_string())
        fail(ErrorCode::format, "'{}': weight_map['{}'] is not a string", index_path.string(), tensor);
      const std::string name = shard.get<std::string>();
      check_shard_name(name, index_path);
      if (seen.insert(name).second) ckpt.shard_names_.push_back(name);
      weight_map.emplace(tensor, name);
    }
    if (ckpt.shard_names_.empty()) fail(ErrorCode::format, "'{}': empty weight_map", index_path.string());
  } else {
    fail(ErrorCode::io, "'{}': neither {} nor {}", dir.string(), kSingleName, kIndexName);
  }

  // Open every shard; a tensor may live in one shard only.
  for (size_t s = 0; s < ckpt.shard_names_.size(); ++s) {
    const auto path = dir / ckpt.shard_names_[s];
    if (!std::filesystem::is_regular_file(path, ec)) {
      fail(ErrorCode::format, "shard '{}' listed in {} does not exist", ckpt.shard_names_[s], kIndexName);
    }
    ckpt.shards_.push_back(std::make_unique<SafetensorsFile>(SafetensorsFile::open(path)));
    for (const TensorInfo& t : ckpt.shards_.back()->tensors()) {
      const auto [it, inserted] = ckpt.shard_index_.emplace(t.name, s);
      if (!inserted) {
        fail(ErrorCode::format, "tensor '{}' is in two shards: '{}' and '{}'", t.name, ckpt.shard_names_[it->second],
             ckpt.shard_names_[s]);
      }
    }
  }
  // Every mapped tensor is where the index says; unmapped tensors of a shard are not exposed
  // (transformers does not load them either).
  for (const auto& [tensor, shard] : weight_map) {
    const auto it = ckpt.shard_index_.find(tensor);
    if (it == ckpt.shard_index_.end() || ckpt.shard_names_[it->second] != shard) {
      fail(ErrorCode::format, "{} maps tensor '{}' to '{}', which does not hold it", kIndexName, tensor, shard);
    }
  }
  for (auto it = ckpt.shard_index_.begin(); it != ckpt.shard_index_.end();) {
    if (!weight_map.empty() && !weight_map.contains(it->first)) {
      it = ckpt.shard_index_.erase(it);
      continue;
    }
    const SafetensorsFile& file = *ckpt.shards_[it->second];
    const TensorInfo* t = file.find(it->first);
    ckpt.tensors_.add({t->name, t->dtype, t->shape, file.data(*t)});
    ++it;
  }
  return ckpt;
}

std::vector<std::string> quantized_modules(const QuantConfig& config, const TensorSource& source) {
  return std::visit(
      [&](const auto& c) {
        const auto& format = format_of(c);
        const std::string_view marker = format.tensor_suffixes.front();
        std::vector<std::string> modules;
        for (const std::string& name : source.names()) {
          if (name.size() > marker.size() && name.ends_with(marker))
            modules.push_back(name.substr(0, name.size() - marker.size()));
        }
        if (format.check_module != nullptr) {
          for (const std::string& m : modules) format.check_module(c, m);
        }
        return modules;  // names() is sorted, and so is this
      },
      config);
}

QuantizedWeight import_module(const QuantConfig& config, const TensorSource& source, std::string_view module,
                              std::vector<std::string>* warnings) {
  return std::visit(
      [&](const auto& c) {
        // The module as given when the checkpoint has it (a module may itself end in ".weight"),
        // else without a trailing ".weight" (a tensor name given for its module).
        const auto& format = format_of(c);
        const std::string_view marker = format.tensor_suffixes.front();
        std::string m(module);
        if (source.find(m + std::string(marker)) == nullptr) {
          const std::string stripped = strip_weight(module);
          if (stripped == m || source.find(stripped + std::string(marker)) == nullptr) {
            fail(ErrorCode::format, "no {} module '{}' in the checkpoint (no tensor '{}{}'{})", format.name, module,
                 module, marker, stripped == m ? "" : fmt::format(" or '{}{}'", stripped, marker));
          }
          m = stripped;
        }
        return format.import(source, m, c, warnings);
      },
      config);
}

std::vector<std::string> quantized_modules(const HfCheckpoint& checkpoint) {
  if (!checkpoint.quant_config()) {
    fail(ErrorCode::unsupported, "'{}': config.json has no quantization_config", checkpoint.dir().string());
  }
  return quantized_modules(*checkpoint.quant_config(), checkpoint);
}

QuantizedWeight import_module(const HfCheckpoint& checkpoint, std::string_view module,
                              std::vector<std::string>* warnings) {
  if (!checkpoint.quant_config()) {
    fail(ErrorCode::unsupported, "'{}': config.json has no quantization_config", checkpoint.dir().string());
  }
  return import_module(*checkpoint.quant_config(), checkpoint, module, warnings);
}

}  // namespace w4a16::io

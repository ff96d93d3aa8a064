// w4a16::convert(): a quantized checkpoint (Hugging Face directory or GGUF file) into one w4a16
// safetensors file, streamed layer by layer (docs/convert.md).
//
// Memory: the output is declared first (every tensor's name, dtype and shape, which the importers'
// layouts determine) and then written in order by SafetensorsWriter, which asks for each layer's
// bytes only when they are due (add_quantized_lazy) and drops them right after. The heap holds
// one converted layer at a time; the inputs are memory-mapped, and their pages are read once.
// Declaring a Hugging Face layer needs its layout, which is read by importing it once before the
// write (and dropping it): conversion does the bit manipulation twice and never holds two layers.
#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "common/check.hpp"
#include "io/gguf.hpp"
#include "io/hf_checkpoint.hpp"
#include "io/import_gguf.hpp"
#include "io/import_registry.hpp"
#include "io/input_file.hpp"
#include "io/quantized_file.hpp"
#include "io/safetensors.hpp"

namespace w4a16 {

namespace {

using io::LayerDescription;
using io::SafetensorsWriter;
using io::StDType;

// Calls the user's progress callback (if any) with running counts.
struct Progress {
  const ConvertProgress& callback;
  int64_t count = 0;
  int64_t index = 0;
  void operator()(std::string_view name, std::string_view action) {
    ++index;
    if (callback) callback(index, count, name, action);
  }
};

// ---------------------------------------------------------------------------------------------
// GGUF
// ---------------------------------------------------------------------------------------------

// The safetensors dtype a plain GGUF type is copied as, or nullopt.
std::optional<StDType> plain_dtype(io::GgmlType type) {
  switch (type) {
    case io::GgmlType::F32:
      return StDType::F32;
    case io::GgmlType::F16:
      return StDType::F16;
    case io::GgmlType::BF16:
      return StDType::BF16;
    case io::GgmlType::F64:
      return StDType::F64;
    case io::GgmlType::I8:
      return StDType::I8;
    case io::GgmlType::I16:
      return StDType::I16;
    case io::GgmlType::I32:
      return StDType::I32;
    case io::GgmlType::I64:
      return StDType::I64;
    default:
      return std::nullopt;
  }
}

bool dequantizable(io::GgmlType type) {
  return type == io::GgmlType::Q8_0 || type == io::GgmlType::Q4_0 || type == io::GgmlType::Q4_1 ||
         type == io::GgmlType::Q4_K;
}

// Row-major shape of a GGUF tensor: ggml lists dims fastest first, safetensors slowest first.
std::vector<int64_t> row_major_shape(const io::GgufTensor& t) {
  std::vector<int64_t> shape;
  for (uint32_t i = t.n_dims; i-- > 0;) shape.push_back(t.dims[i]);
  return shape;
}

LayerDescription describe_gguf_weight(const io::GgufTensor& t) {
  LayerDescription d;
  d.layout.n = t.dims[1];
  d.layout.k = t.dims[0];
  d.layout.group_size = std::min<int64_t>(32, t.dims[0]);
  const bool q4_0 = t.type == io::GgmlType::Q4_0;
  d.layout.zero_mode = q4_0 ? ZeroMode::sym : ZeroMode::float_zero;
  d.layout.scale_dtype = q4_0 ? DType::f16 : DType::f32;
  return d;
}

ConvertReport convert_gguf(const std::filesystem::path& src, const std::filesystem::path& dst,
                           const ConvertProgress& callback) {
  const io::GgufFile file = io::GgufFile::open(src);
  for (const io::GgufTensor& t : file.tensors()) {  // safetensors names are JSON strings
    if (!is_valid_utf8(t.name)) {
      fail(ErrorCode::format, "gguf {}: tensor name '{}' is not valid UTF-8; a safetensors file cannot hold it",
           file.source(), t.name);
    }
  }
  ConvertReport report;
  report.source_format = "gguf";
  SafetensorsWriter writer;
  Progress progress{callback};
  progress.count = int64_t(file.tensors().size());
  nlohmann::ordered_json raw_tensors = nlohmann::ordered_json::object();

  // Quantized layers first, then everything else: a `<module>.bias` copied through after its
  // layer is the layer's bias when the file is read (docs/formats.md).
  for (const io::GgufTensor& t : file.tensors()) {
    if (!(io::gguf_weight_importable(t.type) && t.n_dims == 2)) continue;
    const std::string module = module_name(t.name);
    const std::string action = fmt::format("{} -> w4a16 {}", io::ggml_type_name(t.type),
                                           t.type == io::GgmlType::Q4_0 ? "sym fp16 g=32" : "float-zero fp32 g=32");
    io::add_quantized_lazy(writer, module, describe_gguf_weight(t), [&file, &t, &progress, name = t.name, action] {
      progress(name, action);
      return io::import_gguf_weight(file, t);
    });
    ++report.quantized_layers;
    ++report.layers_by_kind[std::string(io::ggml_type_name(t.type))];
  }
  for (const io::GgufTensor& t : file.tensors()) {
    if (io::gguf_weight_importable(t.type) && t.n_dims == 2) continue;
    if (const auto dtype = plain_dtype(t.type)) {  // copied as it is (zero-copy from the mapping)
      SafetensorsWriter::LazyData data;
      data.bytes = [&t, &progress] {
        progress(t.name, fmt::format("copied ({})", io::ggml_type_name(t.type)));
        return t.data;
      };
      writer.add_lazy(t.name, *dtype, row_major_shape(t), std::move(data));
      ++report.copied_tensors;
    } else if (dequantizable(t.type)) {  // ggml's own dequantization, exact in fp32
      auto values = std::make_shared<std::vector<float>>();
      SafetensorsWriter::LazyData data;
      data.bytes = [&t, values, &progress] {
        progress(t.name, fmt::format("dequantized ({} -> F32)", io::ggml_type_name(t.type)));
        *values = io::dequantize_gguf_tensor(t);
        return std::as_bytes(std::span(*values));
      };
      data.release = [values] { std::vector<float>().swap(*values); };
      writer.add_lazy(t.name, StDType::F32, row_major_shape(t), std::move(data));
      ++report.dequantized_tensors;
    } else {  // a known block type w4a16 does not decode: its bytes, and its type in the metadata
      SafetensorsWriter::LazyData data;
      data.bytes = [&t, &progress] {
        progress(t.name, fmt::format("kept as raw {} bytes", io::ggml_type_name(t.type)));
        return t.data;
      };
      writer.add_lazy(t.name, StDType::U8, {int64_t(t.nbytes)}, std::move(data));
      nlohmann::ordered_json dims = nlohmann::ordered_json::array();
      for (uint32_t i = 0; i < t.n_dims; ++i) dims.push_back(t.dims[i]);
      raw_tensors[t.name] = {{"ggml_type", io::ggml_type_name(t.type)}, {"dims", dims}};
      ++report.raw_tensors;
    }
  }
  writer.set_metadata("w4a16.source", "gguf");
  writer.set_metadata("gguf", file.metadata_json());
  if (!raw_tensors.empty()) writer.set_metadata("gguf.raw_tensors", raw_tensors.dump());
  io::check_quantized_layers(writer);
  writer.write(dst);
  return report;
}

// ---------------------------------------------------------------------------------------------
// Hugging Face checkpoint directories (the formats of io/import_registry.hpp)
// ---------------------------------------------------------------------------------------------

ConvertReport convert_hf(const std::filesystem::path& src, const std::filesystem::path& dst,
                         const ConvertProgress& callback) {
  const io::HfCheckpoint checkpoint = io::HfCheckpoint::open(src);
  if (!checkpoint.quant_config()) {
    fail(ErrorCode::unsupported,
         "convert: '{}' has no quantization_config in config.json: it is not a quantized checkpoint (use `w4a16 "
         "quantize` for fp16/bf16/fp32 weights)",
         src.string());
  }
  const io::QuantConfig& config = *checkpoint.quant_config();
  ConvertReport report;
  report.source_format = std::string(io::quant_method(config));
  const std::vector<std::string> modules = io::quantized_modules(checkpoint);
  if (modules.empty()) {
    fail(ErrorCode::format, "convert: '{}' says it is quantized ({}) but holds no quantized module", src.string(),
         io::describe(config));
  }

  SafetensorsWriter writer;
  Progress progress{callback};
  // The tensors a module's packed form occupies in any import format are replaced by the w4a16
  // layer (whose bias is written as <module>.bias); every other tensor is copied. Any format's, not
  // only this one's: a stray packed tensor (an AWQ module's g_idx) is dropped, never carried over.
  std::set<std::string, std::less<>> consumed;
  for (const std::string& module : modules) {
    io::for_each_import_format([&](const auto& format) {
      for (const std::string_view suffix : format.tensor_suffixes) {
        const std::string name = module + std::string(suffix);
        if (checkpoint.find(name) != nullptr) consumed.insert(name);
      }
    });
  }
  const std::vector<std::string> names = checkpoint.names();
  progress.count = int64_t(modules.size() + names.size() - consumed.size());

  std::vector<std::string> warnings;
  for (const std::string& module : modules) {
    // The layout is known once the module is imported; import it now to declare it, drop it, and
    // import it again when its bytes are written (one layer in memory at a time).
    const LayerDescription description = io::describe(io::import_module(checkpoint, module, &warnings));
    io::add_quantized_lazy(writer, module, description, [&checkpoint, &progress, module, kind = report.source_format] {
      progress(module, kind + " -> w4a16");
      return io::import_module(checkpoint, module);
    });
    ++report.quantized_layers;
    ++report.layers_by_kind[report.source_format];
  }
  for (const std::string& name : names) {
    if (consumed.count(name) != 0) continue;
    const io::TensorView* t = checkpoint.find(name);
    SafetensorsWriter::LazyData data;  // zero-copy from the shard's mapping, reported when written
    data.bytes = [t, &progress] {
      progress(t->name, "copied");
      return t->data;
    };
    writer.add_lazy(name, t->dtype, t->shape, std::move(data));
    ++report.copied_tensors;
  }
  report.warnings = warnings;
  writer.set_metadata("w4a16.source", report.source_format);
  writer.set_metadata("config.json", io::read_text_file(checkpoint.dir() / "config.json", io::kMaxConfigBytes));
  io::check_quantized_layers(writer);
  writer.write(dst);
  return report;
}

// Whether a regular file starts with GGUF's magic. A path that is not a regular file (a FIFO, a
// device) is refused here with Error(io), without waiting on it (io/input_file.hpp).
bool is_gguf(const std::filesystem::path& path) {
  io::InputFile file = io::InputFile::open(path);
  std::array<std::byte, 4> magic{};
  return file.read(magic, path) == magic.size() && std::memcmp(magic.data(), "GGUF", 4) == 0;
}

}  // namespace

ConvertReport convert(const std::filesystem::path& src, const std::filesystem::path& dst,
                      const ConvertProgress& progress) {
  std::error_code error;
  const auto status = std::filesystem::status(src, error);
  if (error || !std::filesystem::exists(status)) fail(ErrorCode::io, "convert: cannot find '{}'", src.string());
  const auto dst_abs = std::filesystem::weakly_canonical(dst, error);
  const auto src_abs = std::filesystem::weakly_canonical(src, error);
  require(dst_abs != src_abs, "convert: the output '{}' is the input", dst.string());
  if (std::filesystem::is_directory(status)) return convert_hf(src, dst, progress);
  if (is_gguf(src)) return convert_gguf(src, dst, progress);
  fail(ErrorCode::unsupported,
       "convert: '{}' is neither a Hugging Face checkpoint directory (config.json + safetensors) nor a GGUF file",
       src.string());
}

}  // namespace w4a16

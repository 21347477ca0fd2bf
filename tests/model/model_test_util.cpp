#include "model_test_util.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "core/f16.h"
#include "gguf/gguf_reader.h"
#include "gguf/gguf_writer.h"

namespace specula::test {
namespace {

void copy_value(const GgufReader& file, const GgufKv& kv, GgufWriter& writer) {
  const std::string& key = kv.key;
  const GgufValue& v = kv.value;
  switch (v.type) {
    case GgufType::kUint32:
      writer.set_uint32(key, static_cast<uint32_t>(*file.get_uint(key)));
      return;
    case GgufType::kInt32:
      writer.set_int32(key, static_cast<int32_t>(*file.get_int(key)));
      return;
    case GgufType::kUint64:
      writer.set_uint64(key, *file.get_uint(key));
      return;
    case GgufType::kFloat32:
      writer.set_float32(key, static_cast<float>(*file.get_float(key)));
      return;
    case GgufType::kBool:
      writer.set_bool(key, *file.get_bool(key));
      return;
    case GgufType::kString:
      writer.set_string(key, v.str);
      return;
    case GgufType::kArray:
      if (v.array_type == GgufType::kString) {
        const auto strings = *file.get_string_array(key);
        writer.set_string_array(key, std::vector<std::string>(strings.begin(), strings.end()));
        return;
      }
      if (v.array_type == GgufType::kInt32) {
        const auto ints = *file.get_int_array(key);
        std::vector<int32_t> narrow(ints.begin(), ints.end());
        writer.set_int32_array(key, narrow);
        return;
      }
      break;
    default:
      break;
  }
  throw std::runtime_error("test rewrite: unexpected metadata type for " + key);
}

void apply_edit(const std::string& key, const MetadataEdit& edit, GgufWriter& writer) {
  if (const auto* u = std::get_if<uint32_t>(&edit)) writer.set_uint32(key, *u);
  if (const auto* f = std::get_if<float>(&edit)) writer.set_float32(key, *f);
  if (const auto* s = std::get_if<std::string>(&edit)) writer.set_string(key, *s);
}

float decode(DType type, const uint8_t* data, uint64_t i) {
  uint16_t half;
  switch (type) {
    case DType::kF16:
      std::memcpy(&half, data + 2 * i, 2);
      return f16_to_f32(half);
    case DType::kBF16:
      std::memcpy(&half, data + 2 * i, 2);
      return bf16_to_f32(half);
    default: {
      float value;
      std::memcpy(&value, data + 4 * i, 4);
      return value;
    }
  }
}

}  // namespace

// Owns the per-process directory and removes it at exit.
struct TempDir {
  std::filesystem::path path;
  TempDir()
      : path(std::filesystem::temp_directory_path() /
             ("specula_model_test_" + std::to_string(::getpid()))) {
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

std::string temp_path(const std::string& name) {
  static const TempDir dir;
  return (dir.path / name).string();
}

std::string write_temp_model(const RandomModelOptions& options, const std::string& name) {
  const std::string path = temp_path(name);
  write_random_model(options, path);
  return path;
}

std::string rewrite_gguf(const std::string& source, const GgufEdits& edits,
                         const std::string& name) {
  const auto file = GgufReader::open(source);
  GgufWriter writer;
  std::set<std::string> done;
  for (const GgufKv& kv : file->metadata()) {
    const auto edit = edits.metadata.find(kv.key);
    if (edit == edits.metadata.end()) {
      copy_value(*file, kv, writer);
    } else {
      apply_edit(kv.key, edit->second, writer);
      done.insert(kv.key);
    }
  }
  for (const auto& [key, edit] : edits.metadata) {
    if (!done.count(key)) apply_edit(key, edit, writer);
  }
  for (const GgufTensorInfo& source_tensor : file->tensors()) {
    if (edits.drop_tensors.count(source_tensor.name)) continue;
    GgufTensorInfo tensor = source_tensor;
    if (const auto it = edits.rename_tensors.find(tensor.name); it != edits.rename_tensors.end()) {
      tensor.name = it->second;
    }
    std::vector<uint64_t> dims = tensor.dims;
    DType type = tensor.type;
    if (const auto it = edits.reshape_tensors.find(tensor.name);
        it != edits.reshape_tensors.end()) {
      dims = it->second;
    }
    if (const auto it = edits.retype_tensors.find(tensor.name); it != edits.retype_tensors.end()) {
      type = it->second;
    }
    if (dims != tensor.dims || type != tensor.type) {
      uint64_t rows = 1;
      for (size_t i = 1; i < dims.size(); ++i) rows *= dims[i];
      const uint64_t bytes = *dtype_row_bytes(type, dims[0]) * rows;
      writer.add_tensor(tensor.name, dims, type, std::vector<uint8_t>(bytes, 0));
    } else if (edits.convert_to_f32 && tensor.type != DType::kF32) {
      std::vector<float> values(tensor.n_elements);
      for (uint64_t i = 0; i < tensor.n_elements; ++i) values[i] = decode(type, tensor.data, i);
      writer.add_tensor_f32(tensor.name, dims, values);
    } else {
      writer.add_tensor(tensor.name, dims, type,
                        std::span<const uint8_t>(tensor.data, tensor.n_bytes));
    }
  }
  const std::string path = temp_path(name);
  writer.write(path);
  return path;
}

double relative_error(const std::vector<float>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) return INFINITY;
  double max_diff = 0.0, max_ref = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    max_diff = std::max(max_diff, std::abs(static_cast<double>(a[i]) - b[i]));
    max_ref = std::max(max_ref, std::abs(b[i]));
  }
  return max_diff / max_ref;
}

double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
  return relative_error(a, std::vector<double>(b.begin(), b.end()));
}

}  // namespace specula::test

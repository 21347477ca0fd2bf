// `specula inspect FILE [--json]`: what a GGUF file holds — version,
// alignment, metadata (long arrays abbreviated), the tensor table, and
// totals. Opening validates the whole file, so this is also a file checker.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/command_registry.h"
#include "core/error.h"
#include "core/printable.h"
#include "gguf/gguf_reader.h"

namespace specula::cli {
namespace {

constexpr uint64_t kArrayPreview = 8;   // array elements shown
constexpr size_t kStringPreview = 120;  // bytes of a string value shown (text output)

// Shortest text that reads back to the same float / double.
template <typename T>
std::string format_float(T value) {
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

// A string as a quoted, one-line literal; long ones are cut and say so.
std::string quote(std::string_view text, size_t limit = kStringPreview) {
  std::string out = "\"";
  const size_t shown = std::min(text.size(), limit);
  for (size_t i = 0; i < shown; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    switch (c) {
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char hex[8];
          std::snprintf(hex, sizeof hex, "\\x%02x", c);
          out += hex;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += "\"";
  if (shown < text.size()) out += str_cat("... (", text.size(), " bytes)");
  return out;
}

// Element `index` of a fixed-size-element array, decoded as a scalar value.
GgufValue array_element(const GgufValue& array, uint64_t index) {
  GgufValue element;
  element.type = array.array_type;
  const uint8_t* at = array.array_data + index * gguf_type_size(array.array_type);
  auto load = [at](auto sample) {
    decltype(sample) value;
    std::memcpy(&value, at, sizeof value);
    return value;
  };
  switch (array.array_type) {
    case GgufType::kUint8:
      element.u = load(uint8_t{});
      break;
    case GgufType::kUint16:
      element.u = load(uint16_t{});
      break;
    case GgufType::kUint32:
      element.u = load(uint32_t{});
      break;
    case GgufType::kUint64:
      element.u = load(uint64_t{});
      break;
    case GgufType::kBool:
      element.u = load(uint8_t{});
      break;
    case GgufType::kInt8:
      element.i = load(int8_t{});
      break;
    case GgufType::kInt16:
      element.i = load(int16_t{});
      break;
    case GgufType::kInt32:
      element.i = load(int32_t{});
      break;
    case GgufType::kInt64:
      element.i = load(int64_t{});
      break;
    case GgufType::kFloat32:
      element.f = load(float{});
      break;
    case GgufType::kFloat64:
      element.f = load(double{});
      break;
    case GgufType::kString:
      element.str = array.array_strs[index];
      break;
    case GgufType::kArray:
      break;  // refused by the reader
  }
  return element;
}

bool is_signed(GgufType type) {
  return type == GgufType::kInt8 || type == GgufType::kInt16 || type == GgufType::kInt32 ||
         type == GgufType::kInt64;
}

std::string scalar_text(const GgufValue& value) {
  switch (value.type) {
    case GgufType::kFloat32:
      return format_float(static_cast<float>(value.f));
    case GgufType::kFloat64:
      return format_float(value.f);
    case GgufType::kBool:
      return value.u != 0 ? "true" : "false";
    case GgufType::kString:
      return quote(value.str);
    case GgufType::kArray:
      return "";
    default:
      return is_signed(value.type) ? std::to_string(value.i) : std::to_string(value.u);
  }
}

nlohmann::ordered_json scalar_json(const GgufValue& value) {
  switch (value.type) {
    // A float32 goes out as the shortest decimal that reads back to it
    // (1e-05, not 9.999999747378752e-06).
    case GgufType::kFloat32:
      if (!std::isnormal(value.f)) return value.f;  // 0, subnormal, inf, nan: strtod would balk
      return std::stod(format_float(static_cast<float>(value.f)));
    case GgufType::kFloat64:
      return value.f;
    case GgufType::kBool:
      return value.u != 0;
    case GgufType::kString:
      return std::string(value.str);
    case GgufType::kArray:
      return nullptr;
    default:
      if (is_signed(value.type)) return value.i;
      return value.u;
  }
}

std::string type_text(const GgufValue& value) {
  if (value.type != GgufType::kArray) return std::string(gguf_type_name(value.type));
  return str_cat("array[", gguf_type_name(value.array_type), "]");
}

std::string value_text(const GgufValue& value) {
  if (value.type != GgufType::kArray) return scalar_text(value);
  std::string out = str_cat(value.array_size, " x [");
  const uint64_t shown = std::min(value.array_size, kArrayPreview);
  for (uint64_t i = 0; i < shown; ++i) {
    if (i > 0) out += ", ";
    out += value.array_type == GgufType::kString ? quote(value.array_strs[i], 40)
                                                 : scalar_text(array_element(value, i));
  }
  if (shown < value.array_size) out += ", ...";
  return out + "]";
}

std::string dims_text(const std::vector<uint64_t>& dims) {
  std::string out = "[";
  for (size_t i = 0; i < dims.size(); ++i) out += str_cat(i > 0 ? ", " : "", dims[i]);
  return out + "]";
}

struct Totals {
  uint64_t parameters = 0;
  uint64_t bytes = 0;
  std::map<std::string, std::pair<uint64_t, uint64_t>> by_type;  // name -> (tensors, bytes)
};

Totals totals_of(const GgufReader& reader) {
  Totals totals;
  for (const GgufTensorInfo& tensor : reader.tensors()) {
    totals.parameters += tensor.n_elements;
    totals.bytes += tensor.n_bytes;
    auto& [count, bytes] = totals.by_type[std::string(dtype_name(tensor.type))];
    count += 1;
    bytes += tensor.n_bytes;
  }
  return totals;
}

void print_text(const GgufReader& reader) {
  std::printf("%s: GGUF v%u, alignment %llu, %zu metadata entries, %zu tensors, %llu bytes\n",
              reader.path().c_str(), reader.version(),
              static_cast<unsigned long long>(reader.alignment()), reader.metadata().size(),
              reader.tensors().size(), static_cast<unsigned long long>(reader.file_size()));

  std::printf("\nmetadata:\n");
  size_t key_width = 0;
  for (const GgufKv& kv : reader.metadata()) {
    key_width = std::max(key_width, printable(kv.key).size());
  }
  for (const GgufKv& kv : reader.metadata()) {
    std::printf("  %-*s  %-14s %s\n", static_cast<int>(key_width), printable(kv.key).c_str(),
                type_text(kv.value).c_str(), value_text(kv.value).c_str());
  }

  if (!reader.tensors().empty()) {
    size_t name_width = 4;
    for (const GgufTensorInfo& t : reader.tensors())
      name_width = std::max(name_width, printable(t.name).size());
    std::printf("\ntensors (data section at byte %llu; offsets are relative to it):\n",
                static_cast<unsigned long long>(reader.data_offset()));
    std::printf("  %-*s  %-7s %-24s %14s %14s\n", static_cast<int>(name_width), "name", "type",
                "dims (ggml order)", "bytes", "offset");
    for (const GgufTensorInfo& t : reader.tensors()) {
      std::printf("  %-*s  %-7s %-24s %14llu %14llu\n", static_cast<int>(name_width),
                  printable(t.name).c_str(), std::string(dtype_name(t.type)).c_str(),
                  dims_text(t.dims).c_str(), static_cast<unsigned long long>(t.n_bytes),
                  static_cast<unsigned long long>(t.offset));
    }
  }

  const Totals totals = totals_of(reader);
  std::printf("\ntotals: %llu parameters, %llu bytes of tensor data\n",
              static_cast<unsigned long long>(totals.parameters),
              static_cast<unsigned long long>(totals.bytes));
  for (const auto& [type, counts] : totals.by_type) {
    std::printf("  %-7s %6llu tensors %16llu bytes\n", type.c_str(),
                static_cast<unsigned long long>(counts.first),
                static_cast<unsigned long long>(counts.second));
  }
}

void print_json(const GgufReader& reader) {
  using nlohmann::ordered_json;
  ordered_json out;
  out["path"] = reader.path();
  out["version"] = reader.version();
  out["alignment"] = reader.alignment();
  out["file_size"] = reader.file_size();
  out["data_offset"] = reader.data_offset();

  ordered_json metadata = ordered_json::object();
  for (const GgufKv& kv : reader.metadata()) {
    ordered_json entry;
    entry["type"] = type_text(kv.value);
    if (kv.value.type == GgufType::kArray) {
      // Arrays: the count and the first elements (a vocabulary would
      // otherwise fill megabytes).
      entry["count"] = kv.value.array_size;
      ordered_json head = ordered_json::array();
      const uint64_t shown = std::min(kv.value.array_size, kArrayPreview);
      for (uint64_t i = 0; i < shown; ++i) head.push_back(scalar_json(array_element(kv.value, i)));
      entry["head"] = std::move(head);
    } else {
      entry["value"] = scalar_json(kv.value);
    }
    metadata[kv.key] = std::move(entry);
  }
  out["metadata"] = std::move(metadata);

  ordered_json tensors = ordered_json::array();
  for (const GgufTensorInfo& t : reader.tensors()) {
    tensors.push_back({{"name", t.name},
                       {"type", std::string(dtype_name(t.type))},
                       {"dims", t.dims},
                       {"elements", t.n_elements},
                       {"bytes", t.n_bytes},
                       {"offset", t.offset}});
  }
  out["tensors"] = std::move(tensors);

  const Totals totals = totals_of(reader);
  ordered_json by_type = ordered_json::object();
  for (const auto& [type, counts] : totals.by_type) {
    by_type[type] = {{"tensors", counts.first}, {"bytes", counts.second}};
  }
  out["totals"] = {
      {"parameters", totals.parameters}, {"bytes", totals.bytes}, {"by_type", std::move(by_type)}};
  // Tokens need not be valid UTF-8; replace bad bytes rather than fail.
  std::printf("%s\n", out.dump(2, ' ', false, ordered_json::error_handler_t::replace).c_str());
}

struct InspectOptions {
  std::string path;
  bool json = false;
};

void add_flags(CLI::App& sub, InspectOptions& options) {
  sub.add_option("file", options.path, "GGUF file to inspect")->required();
  sub.add_flag("--json", options.json, "Print machine-readable JSON instead of text");
}

void run(const InspectOptions& options, const CLI::App& /*sub*/) {
  const std::unique_ptr<GgufReader> reader = GgufReader::open(options.path);
  if (options.json) {
    print_json(*reader);
  } else {
    print_text(*reader);
  }
}

const bool registered = register_command_with_flags<InspectOptions>(
    "inspect", "Validate a GGUF file and show its metadata, tensors, types and sizes", add_flags,
    run);

}  // namespace
}  // namespace specula::cli

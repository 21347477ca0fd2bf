// Typed access to GGUF metadata values, with conversions that never lose
// information silently: a value that does not fit the asked-for type is an
// Error naming the file and the key.
#include <cstring>
#include <limits>

#include "core/error.h"
#include "gguf/gguf_reader.h"

namespace specula {
namespace {

bool is_unsigned_integer(GgufType type) {
  return type == GgufType::kUint8 || type == GgufType::kUint16 || type == GgufType::kUint32 ||
         type == GgufType::kUint64;
}

bool is_signed_integer(GgufType type) {
  return type == GgufType::kInt8 || type == GgufType::kInt16 || type == GgufType::kInt32 ||
         type == GgufType::kInt64;
}

bool is_integer(GgufType type) {
  return is_unsigned_integer(type) || is_signed_integer(type);
}

bool is_float(GgufType type) {
  return type == GgufType::kFloat32 || type == GgufType::kFloat64;
}

std::string describe_type(const GgufValue& value) {
  if (value.type == GgufType::kArray) {
    return str_cat("array of ", gguf_type_name(value.array_type));
  }
  return std::string(gguf_type_name(value.type));
}

// One array element widened: signed integers in `i`, unsigned integers and
// bool in `u`, floats in `f`.
struct Widened {
  bool is_signed = false;
  int64_t i = 0;
  uint64_t u = 0;
  double f = 0;
};

template <typename T>
T load(const uint8_t* at) {
  T value;
  std::memcpy(&value, at, sizeof value);
  return value;
}

Widened array_element(const GgufValue& value, uint64_t index) {
  const uint8_t* at = value.array_data + index * gguf_type_size(value.array_type);
  Widened out;
  switch (value.array_type) {
    case GgufType::kUint8:
      out.u = load<uint8_t>(at);
      break;
    case GgufType::kUint16:
      out.u = load<uint16_t>(at);
      break;
    case GgufType::kUint32:
      out.u = load<uint32_t>(at);
      break;
    case GgufType::kUint64:
      out.u = load<uint64_t>(at);
      break;
    case GgufType::kBool:
      out.u = load<uint8_t>(at);
      break;
    case GgufType::kInt8:
      out.i = load<int8_t>(at);
      break;
    case GgufType::kInt16:
      out.i = load<int16_t>(at);
      break;
    case GgufType::kInt32:
      out.i = load<int32_t>(at);
      break;
    case GgufType::kInt64:
      out.i = load<int64_t>(at);
      break;
    case GgufType::kFloat32:
      out.f = load<float>(at);
      break;
    case GgufType::kFloat64:
      out.f = load<double>(at);
      break;
    case GgufType::kString:
    case GgufType::kArray:
      break;  // callers check the element type first
  }
  out.is_signed = is_signed_integer(value.array_type);
  return out;
}

constexpr auto kInt64Max = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

}  // namespace

std::optional<std::string_view> GgufReader::get_string(std::string_view key) const {
  const GgufValue* value = find(key);
  if (value == nullptr) return std::nullopt;
  if (value->type != GgufType::kString) {
    fail(path_, ": key '", key, "' holds a ", describe_type(*value), ", expected a string");
  }
  return value->str;
}

std::optional<uint64_t> GgufReader::get_uint(std::string_view key) const {
  const GgufValue* value = find(key);
  if (value == nullptr) return std::nullopt;
  if (!is_integer(value->type)) {
    fail(path_, ": key '", key, "' holds a ", describe_type(*value),
         ", expected an unsigned integer");
  }
  if (is_signed_integer(value->type) && value->i < 0) {
    fail(path_, ": key '", key, "' is ", value->i, ", expected a non-negative integer");
  }
  return value->u;
}

std::optional<int64_t> GgufReader::get_int(std::string_view key) const {
  const GgufValue* value = find(key);
  if (value == nullptr) return std::nullopt;
  if (!is_integer(value->type)) {
    fail(path_, ": key '", key, "' holds a ", describe_type(*value), ", expected an integer");
  }
  if (is_unsigned_integer(value->type) && value->u > kInt64Max) {
    fail(path_, ": key '", key, "' is ", value->u, ", too large for a signed 64-bit integer");
  }
  return value->i;
}

std::optional<double> GgufReader::get_float(std::string_view key) const {
  const GgufValue* value = find(key);
  if (value == nullptr) return std::nullopt;
  if (is_float(value->type)) return value->f;
  if (is_signed_integer(value->type)) return static_cast<double>(value->i);
  if (is_unsigned_integer(value->type)) return static_cast<double>(value->u);
  fail(path_, ": key '", key, "' holds a ", describe_type(*value), ", expected a number");
}

std::optional<bool> GgufReader::get_bool(std::string_view key) const {
  const GgufValue* value = find(key);
  if (value == nullptr) return std::nullopt;
  if (value->type != GgufType::kBool) {
    fail(path_, ": key '", key, "' holds a ", describe_type(*value), ", expected a bool");
  }
  return value->u != 0;
}

std::optional<std::vector<std::string_view>> GgufReader::get_string_array(
    std::string_view key) const {
  const GgufValue* value = find(key);
  if (value == nullptr) return std::nullopt;
  if (value->type != GgufType::kArray || value->array_type != GgufType::kString) {
    fail(path_, ": key '", key, "' holds a ", describe_type(*value),
         ", expected an array of strings");
  }
  return value->array_strs;
}

std::optional<std::vector<float>> GgufReader::get_float_array(std::string_view key) const {
  const GgufValue* value = find(key);
  if (value == nullptr) return std::nullopt;
  if (value->type != GgufType::kArray ||
      !(is_float(value->array_type) || is_integer(value->array_type))) {
    fail(path_, ": key '", key, "' holds a ", describe_type(*value),
         ", expected an array of numbers");
  }
  std::vector<float> out(value->array_size);
  for (uint64_t index = 0; index < value->array_size; ++index) {
    const Widened element = array_element(*value, index);
    if (is_float(value->array_type)) {
      out[index] = static_cast<float>(element.f);
    } else if (element.is_signed) {
      out[index] = static_cast<float>(element.i);
    } else {
      out[index] = static_cast<float>(element.u);
    }
  }
  return out;
}

std::optional<std::vector<int64_t>> GgufReader::get_int_array(std::string_view key) const {
  const GgufValue* value = find(key);
  if (value == nullptr) return std::nullopt;
  if (value->type != GgufType::kArray || !is_integer(value->array_type)) {
    fail(path_, ": key '", key, "' holds a ", describe_type(*value),
         ", expected an array of integers");
  }
  std::vector<int64_t> out(value->array_size);
  for (uint64_t index = 0; index < value->array_size; ++index) {
    const Widened element = array_element(*value, index);
    if (element.is_signed) {
      out[index] = element.i;
    } else if (element.u <= kInt64Max) {
      out[index] = static_cast<int64_t>(element.u);
    } else {
      fail(path_, ": key '", key, "' element #", index, " is ", element.u,
           ", too large for a signed 64-bit integer");
    }
  }
  return out;
}

}  // namespace specula

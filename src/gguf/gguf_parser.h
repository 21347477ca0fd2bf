// Internal to the gguf part: parses and validates a mapped GGUF file into a
// GgufReader. Every read is bounds-checked against the file size before it
// happens; every failure throws Error("<path>: <where>: <problem>").
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "gguf/gguf_reader.h"

namespace specula {

class GgufParser {
 public:
  explicit GgufParser(GgufReader& reader) : reader_(reader) {}
  void parse();

 private:
  void parse_header();
  void parse_metadata();
  void parse_tensor_infos();
  void place_tensor_data();

  void read_value(GgufType type, GgufValue& value);
  void read_array(GgufValue& value);
  void check_alignment_key(const GgufValue& value);

  // Primitive reads at pos_, each checked against the bytes left.
  template <typename T>
  T read(std::string_view what) {
    require(sizeof(T), what);
    T value;
    std::memcpy(&value, reader_.base_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }
  std::string_view read_string(std::string_view what);
  GgufType read_type(std::string_view what);
  void require(uint64_t n_bytes, std::string_view what);
  uint64_t remaining() const { return reader_.size_ - pos_; }

  template <typename... Args>
  [[noreturn]] void fail_here(Args&&... args) const;

  GgufReader& reader_;
  uint64_t pos_ = 0;
  uint64_t n_tensors_ = 0;
  uint64_t n_kv_ = 0;
  std::string where_ = "header";  // the part being parsed, for messages
};

}  // namespace specula

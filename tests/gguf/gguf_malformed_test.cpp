// Malformed files: each row hand-builds the bytes of a file (independently
// of GgufWriter) with one fault, and the reader must refuse it with a message
// naming the file, the place at fault and the problem. Then a valid file cut
// at every byte offset must be refused too (this runs under ASan in CI).
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "gguf/gguf_reader.h"
#include "gguf/gguf_test_util.h"
#include "gguf/gguf_writer.h"

namespace specula {
namespace {

using testing::TempFile;

// Little-endian byte builder for hand-made GGUF files.
struct Bytes {
  std::vector<uint8_t> data;
  template <typename T>
  Bytes& put(T value) {
    const size_t at = data.size();
    data.resize(at + sizeof value);
    std::memcpy(data.data() + at, &value, sizeof value);
    return *this;
  }
  Bytes& u8(uint8_t v) { return put(v); }
  Bytes& u32(uint32_t v) { return put(v); }
  Bytes& u64(uint64_t v) { return put(v); }
  Bytes& str(std::string_view s) {
    u64(s.size());
    data.insert(data.end(), s.begin(), s.end());
    return *this;
  }
  Bytes& append(const Bytes& other) {
    data.insert(data.end(), other.data.begin(), other.data.end());
    return *this;
  }
  Bytes& pad_to(size_t alignment) {
    data.resize((data.size() + alignment - 1) / alignment * alignment, 0);
    return *this;
  }
  Bytes& zeros(size_t n) {
    data.resize(data.size() + n, 0);
    return *this;
  }
};

// GGUF value type ids and ggml tensor type ids, from the spec.
constexpr uint32_t kU32 = 4, kF32Value = 6, kBool = 7, kString = 8, kArray = 9, kU64 = 10;
constexpr uint32_t kTypeF32 = 0, kTypeF64 = 28, kTypeQ8_0 = 8;

Bytes kv_u32(std::string_view key, uint32_t value) {
  Bytes b;
  b.str(key).u32(kU32).u32(value);
  return b;
}

Bytes tensor_info(std::string_view name, std::vector<uint64_t> dims, uint32_t type,
                  uint64_t offset) {
  Bytes b;
  b.str(name).u32(static_cast<uint32_t>(dims.size()));
  for (uint64_t d : dims) b.u64(d);
  b.u32(type).u64(offset);
  return b;
}

// header + metadata + tensor infos, padded to 32, then `data_bytes` zeros.
Bytes gguf_file(uint64_t n_kv, const Bytes& kvs, uint64_t n_tensors, const Bytes& infos,
                size_t data_bytes, uint32_t version = 3) {
  Bytes b;
  b.u8('G').u8('G').u8('U').u8('F').u32(version).u64(n_tensors).u64(n_kv);
  b.append(kvs).append(infos).pad_to(32).zeros(data_bytes);
  return b;
}

// One valid F32 tensor "w" of 8 values at offset 0 (the base of most rows).
Bytes one_tensor_named(std::string_view name, std::vector<uint64_t> dims, uint32_t type,
                       uint64_t offset, size_t data = 32) {
  return gguf_file(0, {}, 1, tensor_info(name, std::move(dims), type, offset), data);
}

Bytes one_tensor(std::vector<uint64_t> dims, uint32_t type, uint64_t offset, size_t data = 32) {
  return one_tensor_named("w", std::move(dims), type, offset, data);
}

struct MalformedCase {
  std::string name;
  std::function<Bytes()> build;
  std::vector<std::string> expected_words;
};

// Keeps ctest's test names short: the case is named by its name alone.
void PrintTo(const MalformedCase& c, std::ostream* out) {
  *out << c.name;
}

std::vector<MalformedCase> malformed_cases() {
  std::vector<MalformedCase> cases;
  auto add = [&](std::string name, std::function<Bytes()> build, std::vector<std::string> words) {
    cases.push_back({std::move(name), std::move(build), std::move(words)});
  };
  // Header.
  add("Empty", [] { return Bytes{}; }, {"empty"});
  add("WrongMagic", [] { return Bytes().u8('G').u8('G').u8('M').u8('L').zeros(40); },
      {"not a GGUF file", "'GGML'"});
  add("ShortMagic", [] { return Bytes().u8('G').u8('G'); }, {"not a GGUF file"});
  add("Version1", [] { return gguf_file(0, {}, 0, {}, 0, 1); },
      {"version 1 is not supported", "2 and 3"});
  add("Version4", [] { return gguf_file(0, {}, 0, {}, 0, 4); }, {"unsupported GGUF version 4"});
  add("BigEndian", [] { return gguf_file(0, {}, 0, {}, 0, 0x03000000); }, {"big-endian"});
  add("HeaderCut", [] { return Bytes().u8('G').u8('G').u8('U').u8('F').u32(3).u32(0); },
      {"header", "the tensor count needs 8 bytes"});
  add("HugeKvCount", [] { return gguf_file(1ull << 60, {}, 0, {}, 64); },
      {"metadata count 1152921504606846976 is impossible"});
  add("HugeTensorCount", [] { return gguf_file(0, {}, 1ull << 40, {}, 64); },
      {"tensor count 1099511627776 is impossible"});
  // Metadata.
  add("KeyLengthPastEnd", [] { return gguf_file(1, Bytes().u64(1000).u32(0), 0, {}, 0); },
      {"metadata entry #0", "the key has length 1000"});
  add("EmptyKey", [] { return gguf_file(1, kv_u32("", 1), 0, {}, 0); },
      {"metadata entry #0", "the key is empty"});
  add("DuplicateKey",
      [] { return gguf_file(2, kv_u32("a.b", 1).append(kv_u32("a.b", 2)), 0, {}, 0); },
      {"key 'a.b'", "appears twice"});
  add("UnknownValueType", [] { return gguf_file(1, Bytes().str("k").u32(13).u32(0), 0, {}, 0); },
      {"key 'k'", "value type is 13"});
  add("StringPastEnd",
      [] { return gguf_file(1, Bytes().str("name").u32(kString).u64(999), 0, {}, 0); },
      {"key 'name'", "the string value has length 999"});
  add("ArrayPastEnd",
      [] {
        return gguf_file(1, Bytes().str("xs").u32(kArray).u32(kF32Value).u64(1ull << 40), 0, {}, 0);
      },
      {"key 'xs'", "array of 1099511627776 float32"});
  add("StringArrayPastEnd",
      [] {
        return gguf_file(1, Bytes().str("toks").u32(kArray).u32(kString).u64(1ull << 50), 0, {}, 0);
      },
      {"key 'toks'", "strings cannot fit"});
  add("StringArrayElementPastEnd",
      [] {
        return gguf_file(1, Bytes().str("toks").u32(kArray).u32(kString).u64(2).str("a").u64(500),
                         0, {}, 0);
      },
      {"key 'toks'", "string #1 of 2 has length 500"});
  add("NestedArray",
      [] {
        return gguf_file(1, Bytes().str("nest").u32(kArray).u32(kArray).u64(1).u32(kU32).u64(0), 0,
                         {}, 0);
      },
      {"key 'nest'", "arrays of arrays are not supported"});
  add("ArrayElementTypeUnknown",
      [] { return gguf_file(1, Bytes().str("xs").u32(kArray).u32(77).u64(0), 0, {}, 0); },
      {"key 'xs'", "the array element type is 77"});
  add("BoolNotZeroOrOne",
      [] { return gguf_file(1, Bytes().str("flag").u32(kBool).u8(2), 0, {}, 0); },
      {"key 'flag'", "bool value is 2"});
  add("AlignmentWrongType",
      [] { return gguf_file(1, Bytes().str("general.alignment").u32(kU64).u64(32), 0, {}, 0); },
      {"key 'general.alignment'", "must be a uint32, but is a uint64"});
  add("AlignmentZero", [] { return gguf_file(1, kv_u32("general.alignment", 0), 0, {}, 0); },
      {"key 'general.alignment'", "alignment 0 is not a power of two"});
  add("AlignmentNotPowerOfTwo",
      [] { return gguf_file(1, kv_u32("general.alignment", 48), 0, {}, 0); },
      {"key 'general.alignment'", "alignment 48 is not a power of two"});
  // Tensor infos.
  add("EmptyTensorName", [] { return gguf_file(0, {}, 1, tensor_info("", {8}, 0, 0), 32); },
      {"tensor #0", "the name is empty"});
  add("DuplicateTensor",
      [] {
        return gguf_file(0, {}, 2,
                         tensor_info("blk.0.attn_q.weight", {8}, 0, 0)
                             .append(tensor_info("blk.0.attn_q.weight", {8}, 0, 32)),
                         64);
      },
      {"tensor 'blk.0.attn_q.weight'", "appears twice"});
  add("RankZero", [] { return one_tensor({}, kTypeF32, 0); }, {"tensor 'w'", "rank 0"});
  add("RankFive",
      [] {
        return one_tensor({1, 1, 1, 1, 8}, kTypeF32, 0);
      },
      {"tensor 'w'", "rank 5 is not supported"});
  add("DimensionZero",
      [] {
        return one_tensor({8, 0}, kTypeF32, 0);
      },
      {"tensor 'w'", "dimension 1 is 0"});
  add("ElementCountOverflow",
      [] {
        return one_tensor({1ull << 32, 1ull << 32}, kTypeF32, 0);
      },
      {"tensor 'w'", "dimensions [4294967296, 4294967296] (ggml order) make more than"});
  // The overflow is the product's: the message names every dimension, not
  // 300 as if that one were wrong (issue 15).
  add("ElementCountOverflowNamesEveryDimension",
      [] {
        return one_tensor({1ull << 62, 300}, kTypeF32, 0);
      },
      {"tensor 'w'", "dimensions [4611686018427387904, 300] (ggml order)"});
  add("ControlCharactersInANameAreEscaped",
      [] {
        return one_tensor_named("w\x1b[2J\n", {8, 0}, kTypeF32, 0);
      },
      {"tensor 'w\\x1b[2J\\n'", "dimension 1 is 0"});
  add("ByteSizeOverflow",
      [] {
        return one_tensor({1ull << 31, 1ull << 31}, kTypeF64, 0);
      },
      {"tensor 'w'", "byte size overflows"});
  add("RemovedTypeId", [] { return one_tensor({8}, 4, 0); },
      {"tensor 'w'", "unknown tensor type id 4"});
  add("UnknownTypeId", [] { return one_tensor({8}, 1000, 0); },
      {"tensor 'w'", "unknown tensor type id 1000"});
  add("RowNotWholeBlocks",
      [] {
        return one_tensor({16, 2}, kTypeQ8_0, 0);
      },
      {"tensor 'w'", "row length 16 is not a multiple of the Q8_0 block size 32"});
  add("TensorInfoCut",
      [] {
        // One tensor whose info ends after its rank; a long string value
        // keeps the counts plausible for the file size.
        Bytes b;
        b.u8('G').u8('G').u8('U').u8('F').u32(3).u64(1).u64(1);
        b.str("filler").u32(kString).str(std::string(40, 'x'));
        b.str("w").u32(1);
        return b;
      },
      {"tensor 'w'", "dimension 0 needs 8 bytes"});
  // Tensor data.
  add("OffsetNotAligned", [] { return one_tensor({8}, kTypeF32, 4, 64); },
      {"tensor 'w'", "data offset 4 is not a multiple of the alignment 32"});
  add("DataPastEnd", [] { return one_tensor({8}, kTypeF32, 0, 31); },
      {"tensor 'w'", "runs past the end", "truncated"});
  add("OffsetFarPastEnd", [] { return one_tensor({8}, kTypeF32, 1ull << 62, 32); },
      {"tensor 'w'", "runs past the end"});
  add("Overlap",
      [] {
        return gguf_file(
            0, {}, 2,
            tensor_info("a", {16}, kTypeF32, 0).append(tensor_info("b", {8}, kTypeF32, 32)), 96);
      },
      {"tensor 'b'", "overlaps or precedes tensor 'a'"});
  add("OutOfOrder",
      [] {
        return gguf_file(
            0, {}, 2,
            tensor_info("a", {8}, kTypeF32, 32).append(tensor_info("b", {8}, kTypeF32, 0)), 64);
      },
      {"tensor 'b'", "overlaps or precedes tensor 'a'"});
  return cases;
}

class GgufMalformed : public ::testing::TestWithParam<MalformedCase> {};

TEST_P(GgufMalformed, IsRefusedWithAClearMessage) {
  const MalformedCase& c = GetParam();
  TempFile file("malformed");
  file.write(c.build().data);
  try {
    auto reader = GgufReader::open(file.path());
    ADD_FAILURE() << "the file was accepted";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind(file.path(), 0), 0u) << "does not start with the path: " << message;
    for (const std::string& words : c.expected_words) {
      EXPECT_NE(message.find(words), std::string::npos)
          << "missing '" << words << "' in: " << message;
    }
    EXPECT_EQ(message.find('\n'), std::string::npos) << "not one line: " << message;
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, GgufMalformed, ::testing::ValuesIn(malformed_cases()),
                         [](const auto& info) { return info.param.name; });

// The hand-built bytes themselves are right: the same builder without the
// fault gives files the reader accepts, so each row fails for its fault.
TEST(GgufHandBuilt, ValidBaselinesOpen) {
  TempFile file("valid");
  file.write(one_tensor({8}, kTypeF32, 0).data);
  auto reader = GgufReader::open(file.path());
  EXPECT_EQ(reader->tensor("w").n_bytes, 32u);

  file.write(gguf_file(0, {}, 1, tensor_info("w", {32, 2}, kTypeQ8_0, 0), 68).data);
  EXPECT_EQ(GgufReader::open(file.path())->tensor("w").n_bytes, 68u);

  file.write(gguf_file(1, kv_u32("general.alignment", 64), 2,
                       tensor_info("a", {8}, kTypeF32, 0).append(tensor_info("b", {8}, 0, 64)), 96)
                 .pad_to(64)
                 .data);
  EXPECT_EQ(GgufReader::open(file.path())->tensor("b").offset, 64u);

  file.write(gguf_file(0, {}, 0, {}, 0, 2).data);  // version 2 uses the same u64 counts
  EXPECT_EQ(GgufReader::open(file.path())->version(), 2u);
}

TEST(GgufTruncation, EveryPrefixOfAValidFileIsRefused) {
  GgufWriter writer;
  writer.set_string("general.architecture", "llama");
  writer.set_uint32("llama.block_count", 1);
  writer.set_string_array("tokenizer.ggml.tokens", {"<s>", "</s>", "a"});
  const std::vector<float> scores = {0.0f, -1.0f, -2.0f};
  writer.set_float32_array("tokenizer.ggml.scores", scores);
  writer.set_bool("flag", true);
  const std::vector<float> values(8, 0.5f);
  const uint64_t dims_a[] = {4, 2};
  const uint64_t dims_b[] = {16};
  writer.add_tensor_f32("a", dims_a, values);
  writer.add_tensor_f16("b", dims_b, std::vector<float>(16, 1.0f));  // 32 bytes: no tail padding
  const std::vector<uint8_t> bytes = writer.to_bytes();

  TempFile file("truncated");
  file.write(bytes);
  ASSERT_EQ(GgufReader::open(file.path())->tensors().size(), 2u);
  for (size_t n = 0; n < bytes.size(); ++n) {
    file.write(bytes, n);
    EXPECT_THROW(GgufReader::open(file.path()), Error) << "prefix of " << n << " bytes";
  }
}

TEST(GgufMissingFile, NamesThePath) {
  try {
    GgufReader::open("/nonexistent/model.gguf");
    ADD_FAILURE() << "opened a missing file";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/model.gguf: cannot open"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace specula

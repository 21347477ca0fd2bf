// Writer -> file -> reader: every metadata type, F32/F16 tensors byte-exact,
// and the layout facts other GGUF tools rely on (offsets, alignment).
#include <gtest/gtest.h>

#include <cstring>
#include <limits>

#include "core/error.h"
#include "core/f16.h"
#include "gguf/gguf_reader.h"
#include "gguf/gguf_test_util.h"
#include "gguf/gguf_writer.h"

namespace specula {
namespace {

using testing::TempFile;

template <typename T>
std::vector<uint8_t> as_bytes(const std::vector<T>& values) {
  std::vector<uint8_t> bytes(values.size() * sizeof(T));
  if (!bytes.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

TEST(GgufRoundTrip, EveryMetadataTypeSurvives) {
  GgufWriter writer;
  writer.set_uint8("t.u8", 200);
  writer.set_int8("t.i8", -100);
  writer.set_uint16("t.u16", 60000);
  writer.set_int16("t.i16", -30000);
  writer.set_uint32("t.u32", 4000000000u);
  writer.set_int32("t.i32", -2000000000);
  writer.set_uint64("t.u64", 18000000000000000000ull);
  writer.set_int64("t.i64", -9000000000000000000ll);
  writer.set_float32("t.f32", 1.5e-5f);
  writer.set_float64("t.f64", 3.141592653589793);
  writer.set_bool("t.true", true);
  writer.set_bool("t.false", false);
  writer.set_string("t.str", "héllo wörld");
  writer.set_string("t.empty", "");
  writer.set_string_array("t.strs", {"a", "", "<0x0A>", "▁the"});
  const std::vector<float> floats = {0.5f, -2.25f, 1e30f};
  writer.set_float32_array("t.f32s", floats);
  const std::vector<int32_t> ints = {1, -2, 2147483647};
  writer.set_int32_array("t.i32s", ints);
  writer.set_array("t.u8s", GgufType::kUint8, as_bytes(std::vector<uint8_t>{0, 255, 7}));
  writer.set_array("t.i16s", GgufType::kInt16, as_bytes(std::vector<int16_t>{-32768, 5}));
  writer.set_array("t.u64s", GgufType::kUint64, as_bytes(std::vector<uint64_t>{1, 1ull << 40}));
  writer.set_array("t.f64s", GgufType::kFloat64, as_bytes(std::vector<double>{0.125, -8}));
  writer.set_array("t.bools", GgufType::kBool, as_bytes(std::vector<uint8_t>{1, 0, 1}));
  writer.set_array("t.none", GgufType::kInt32, {});

  TempFile file;
  writer.write(file.path());
  auto reader = GgufReader::open(file.path());
  EXPECT_EQ(reader->version(), 3u);
  EXPECT_EQ(reader->alignment(), 32u);
  EXPECT_EQ(reader->metadata().size(), 23u);
  EXPECT_EQ(reader->metadata()[0].key, "t.u8");  // order kept

  EXPECT_EQ(reader->get_uint("t.u8"), 200u);
  EXPECT_EQ(reader->get_int("t.i8"), -100);
  EXPECT_EQ(reader->get_uint("t.u16"), 60000u);
  EXPECT_EQ(reader->get_int("t.i16"), -30000);
  EXPECT_EQ(reader->get_uint("t.u32"), 4000000000u);
  EXPECT_EQ(reader->get_int("t.u32"), 4000000000ll);
  EXPECT_EQ(reader->get_int("t.i32"), -2000000000);
  EXPECT_EQ(reader->get_uint("t.u64"), 18000000000000000000ull);
  EXPECT_EQ(reader->get_int("t.i64"), -9000000000000000000ll);
  EXPECT_EQ(reader->get_float("t.f32"), static_cast<double>(1.5e-5f));
  EXPECT_EQ(reader->get_float("t.f64"), 3.141592653589793);
  EXPECT_EQ(reader->get_float("t.i32"), -2000000000.0);
  EXPECT_EQ(reader->get_bool("t.true"), true);
  EXPECT_EQ(reader->get_bool("t.false"), false);
  EXPECT_EQ(reader->get_string("t.str"), "héllo wörld");
  EXPECT_EQ(reader->get_string("t.empty"), "");
  EXPECT_EQ(reader->get_string("t.absent"), std::nullopt);
  EXPECT_EQ(reader->find("t.absent"), nullptr);

  const auto strs = reader->get_string_array("t.strs");
  ASSERT_TRUE(strs.has_value());
  EXPECT_EQ(*strs, (std::vector<std::string_view>{"a", "", "<0x0A>", "▁the"}));
  EXPECT_EQ(reader->get_float_array("t.f32s"), floats);
  EXPECT_EQ(reader->get_int_array("t.i32s"), (std::vector<int64_t>{1, -2, 2147483647}));
  EXPECT_EQ(reader->get_int_array("t.u8s"), (std::vector<int64_t>{0, 255, 7}));
  EXPECT_EQ(reader->get_int_array("t.i16s"), (std::vector<int64_t>{-32768, 5}));
  EXPECT_EQ(reader->get_int_array("t.u64s"), (std::vector<int64_t>{1, 1ll << 40}));
  EXPECT_EQ(reader->get_float_array("t.f64s"), (std::vector<float>{0.125f, -8.0f}));
  EXPECT_EQ(reader->get_float_array("t.i32s"), (std::vector<float>{1.0f, -2.0f, 2147483647.0f}));
  const GgufValue* bools = reader->find("t.bools");
  ASSERT_NE(bools, nullptr);
  EXPECT_EQ(bools->array_type, GgufType::kBool);
  ASSERT_EQ(bools->array_size, 3u);
  EXPECT_EQ(bools->array_data[0], 1);
  EXPECT_EQ(bools->array_data[1], 0);
  EXPECT_EQ(reader->get_int_array("t.none"), std::vector<int64_t>{});
}

TEST(GgufRoundTrip, GettersRefuseWhatDoesNotConvert) {
  GgufWriter writer;
  writer.set_int32("negative", -1);
  writer.set_uint64("huge", std::numeric_limits<uint64_t>::max());
  writer.set_string("text", "x");
  writer.set_float32("number", 1.0f);
  writer.set_string_array("words", {"a"});
  TempFile file;
  writer.write(file.path());
  auto reader = GgufReader::open(file.path());

  auto expect_error = [](auto&& call, std::string_view words) {
    try {
      call();
      ADD_FAILURE() << "no error; expected one containing: " << words;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
  };
  expect_error([&] { (void)reader->get_uint("negative"); }, "key 'negative' is -1");
  expect_error([&] { (void)reader->get_int("huge"); }, "key 'huge'");
  expect_error([&] { (void)reader->get_uint("text"); }, "key 'text' holds a string");
  expect_error([&] { (void)reader->get_string("number"); }, "key 'number' holds a float32");
  expect_error([&] { (void)reader->get_bool("number"); }, "expected a bool");
  expect_error([&] { (void)reader->get_float_array("words"); }, "array of string");
  expect_error([&] { (void)reader->get_string_array("text"); }, "expected an array of strings");
  expect_error([&] { (void)reader->tensor("nope"); }, "tensor 'nope' is missing");
  EXPECT_EQ(reader->get_uint("huge"), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(reader->get_float("huge"), 18446744073709551615.0);
}

TEST(GgufRoundTrip, TensorsAreByteExactAlignedAndInOrder) {
  const std::vector<float> embedding = {1.0f, -2.5f, 3.25f, 0.0f, 1e-8f, -65504.0f};  // [3, 2]
  const std::vector<float> norm = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f};                     // [5]
  const std::vector<float> odd = {1.0f, 0.333333343f, -7.0f};                         // [1, 3, 1]
  GgufWriter writer;
  writer.set_string("general.architecture", "llama");
  const uint64_t embedding_dims[] = {3, 2};
  const uint64_t norm_dims[] = {5};
  const uint64_t odd_dims[] = {1, 3, 1};
  writer.add_tensor_f32("token_embd.weight", embedding_dims, embedding);
  writer.add_tensor_f16("output_norm.weight", norm_dims, norm);
  writer.add_tensor_f32("odd", odd_dims, odd);
  EXPECT_EQ(writer.tensor_count(), 3u);

  TempFile file;
  writer.write(file.path());
  auto reader = GgufReader::open(file.path());
  ASSERT_EQ(reader->tensors().size(), 3u);
  EXPECT_EQ(reader->file_size(), writer.to_bytes().size());
  EXPECT_EQ(reader->data_offset() % 32, 0u);

  const GgufTensorInfo& e = reader->tensor("token_embd.weight");
  EXPECT_EQ(e.dims, (std::vector<uint64_t>{3, 2}));
  EXPECT_EQ(e.type, DType::kF32);
  EXPECT_EQ(e.n_elements, 6u);
  EXPECT_EQ(e.n_bytes, 24u);
  EXPECT_EQ(e.offset, 0u);
  EXPECT_EQ(std::memcmp(e.data, embedding.data(), 24), 0);

  const GgufTensorInfo& n = reader->tensor("output_norm.weight");
  EXPECT_EQ(n.type, DType::kF16);
  EXPECT_EQ(n.n_bytes, 10u);
  EXPECT_EQ(n.offset, 32u);  // 24 bytes rounded up to the alignment
  for (size_t i = 0; i < norm.size(); ++i) {
    uint16_t half;
    std::memcpy(&half, n.data + 2 * i, 2);
    EXPECT_EQ(half, f32_to_f16(norm[i])) << i;
    EXPECT_NEAR(f16_to_f32(half), norm[i], 1e-3f);
  }

  const GgufTensorInfo& o = reader->tensor("odd");
  EXPECT_EQ(o.dims, (std::vector<uint64_t>{1, 3, 1}));
  EXPECT_EQ(o.offset, 64u);
  EXPECT_EQ(std::memcmp(o.data, odd.data(), 12), 0);
  // Zero-copy: the data pointer is inside the mapping at data_offset + offset.
  EXPECT_EQ(o.data - e.data, 64);
}

TEST(GgufRoundTrip, CustomAlignmentIsWrittenAndHonoured) {
  GgufWriter writer;
  writer.set_alignment(64);
  const std::vector<float> a(5, 1.0f);
  const std::vector<float> b(3, 2.0f);
  const uint64_t a_dims[] = {5};
  const uint64_t b_dims[] = {3};
  writer.add_tensor_f32("a", a_dims, a);
  writer.add_tensor_f32("b", b_dims, b);
  TempFile file;
  writer.write(file.path());
  auto reader = GgufReader::open(file.path());
  EXPECT_EQ(reader->alignment(), 64u);
  EXPECT_EQ(reader->get_uint("general.alignment"), 64u);
  EXPECT_EQ(reader->data_offset() % 64, 0u);
  EXPECT_EQ(reader->tensor("b").offset, 64u);
}

TEST(GgufRoundTrip, InMemoryBytesStartWithTheHeader) {
  GgufWriter writer;
  writer.set_uint32("k", 7);
  const std::vector<uint8_t> bytes = writer.to_bytes();
  // magic, version 3, 0 tensors, 1 key: written independently here.
  const uint8_t expected[] = {'G', 'G', 'U', 'F', 3,   0, 0, 0, 0, 0, 0, 0, 0, 0,
                              0,   0,   1,   0,   0,   0, 0, 0, 0, 0, 1, 0, 0, 0,
                              0,   0,   0,   0,   'k', 4, 0, 0, 0, 7, 0, 0, 0};
  ASSERT_GE(bytes.size(), sizeof expected);
  EXPECT_EQ(std::memcmp(bytes.data(), expected, sizeof expected), 0);
  EXPECT_EQ(bytes.size() % 32, 0u);  // padded to the data section
}

TEST(GgufRoundTrip, CopiedValuesRoundTrip) {
  GgufWriter source;
  source.set_string_array("tokens", {"x", "y"});
  source.set_float32("eps", 1e-6f);
  source.set_array("ids", GgufType::kInt64, as_bytes(std::vector<int64_t>{-1, 5}));
  source.set_alignment(16);
  TempFile first;
  source.write(first.path());
  auto original = GgufReader::open(first.path());

  GgufWriter copy;
  for (const GgufKv& kv : original->metadata()) copy.set_value(kv.key, kv.value);
  TempFile second;
  copy.write(second.path());
  auto reread = GgufReader::open(second.path());
  EXPECT_EQ(reread->get_string_array("tokens"), (std::vector<std::string_view>{"x", "y"}));
  EXPECT_EQ(reread->get_float("eps"), static_cast<double>(1e-6f));
  EXPECT_EQ(reread->get_int_array("ids"), (std::vector<int64_t>{-1, 5}));
  EXPECT_EQ(reread->alignment(), 16u);
}

TEST(GgufWriterChecks, RefusesBadInput) {
  GgufWriter writer;
  writer.set_uint32("k", 1);
  EXPECT_THROW(writer.set_uint32("k", 2), Error);
  EXPECT_THROW(writer.set_uint32("", 2), Error);
  EXPECT_THROW(writer.set_uint32("general.alignment", 64), Error);
  EXPECT_THROW(writer.set_alignment(0), Error);
  EXPECT_THROW(writer.set_alignment(48), Error);
  EXPECT_THROW(writer.set_array("a", GgufType::kString, {}), Error);
  EXPECT_THROW(writer.set_array("a", GgufType::kUint32, std::vector<uint8_t>(3)), Error);

  const std::vector<float> four(4, 0.0f);
  const uint64_t dims4[] = {4};
  const uint64_t dims22[] = {2, 2};
  const uint64_t dims0[] = {4, 0};
  const uint64_t dims5[] = {1, 1, 1, 1, 4};
  writer.add_tensor_f32("t", dims4, four);
  EXPECT_THROW(writer.add_tensor_f32("t", dims22, four), Error);                   // duplicate
  EXPECT_THROW(writer.add_tensor_f32("u", dims0, four), Error);                    // zero dim
  EXPECT_THROW(writer.add_tensor_f32("u", dims5, four), Error);                    // rank 5
  EXPECT_THROW(writer.add_tensor_f32("u", dims22, std::vector<float>(3)), Error);  // size
  EXPECT_THROW(writer.add_tensor_f32(std::string(64, 'n'), dims4, four), Error);   // long name
  const uint64_t q_dims[] = {16};
  EXPECT_THROW(writer.add_tensor("q", q_dims, DType::kQ8_0, std::vector<uint8_t>(34)), Error);
  const uint64_t q32_dims[] = {32};
  writer.add_tensor("q", q32_dims, DType::kQ8_0, std::vector<uint8_t>(34));
}

TEST(GgufWriterChecks, FailedWriteNamesThePath) {
  GgufWriter writer;
  try {
    writer.write("/nonexistent-dir/model.gguf");
    ADD_FAILURE() << "write to a missing directory succeeded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/model.gguf"), std::string::npos);
  }
}

}  // namespace
}  // namespace specula

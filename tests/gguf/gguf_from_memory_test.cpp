// GgufReader::from_memory (the fuzzing harnesses' entry point): the same
// reading as open(), over a private copy of the bytes.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "gguf/gguf_reader.h"
#include "gguf/gguf_writer.h"

namespace specula {
namespace {

std::vector<uint8_t> small_file() {
  GgufWriter writer;
  writer.set_string("general.architecture", "llama");
  writer.set_uint32("llama.block_count", 3);
  const uint64_t dims[] = {4, 2};
  writer.add_tensor_f32("a", dims, std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8});
  return writer.to_bytes();
}

TEST(GgufFromMemory, ReadsWhatTheWriterWrote) {
  std::vector<uint8_t> bytes = small_file();
  const auto reader = GgufReader::from_memory("mem.gguf", bytes);
  bytes.assign(bytes.size(), 0);  // the reader holds its own copy
  EXPECT_EQ(reader->path(), "mem.gguf");
  EXPECT_EQ(reader->get_string("general.architecture"), "llama");
  EXPECT_EQ(reader->get_uint("llama.block_count"), 3u);
  const GgufTensorInfo& a = reader->tensor("a");
  ASSERT_EQ(a.n_elements, 8u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a.data) % 32, 0u);  // aligned as in a mapping
  const auto* values = reinterpret_cast<const float*>(a.data);
  EXPECT_EQ(values[0], 1.0f);
  EXPECT_EQ(values[7], 8.0f);
}

TEST(GgufFromMemory, RefusesEmptyAndTruncatedBytesNamingTheSource) {
  const std::vector<uint8_t> bytes = small_file();
  EXPECT_THROW(GgufReader::from_memory("empty", {}), Error);
  for (size_t n = 1; n < bytes.size(); n += 7) {
    try {
      GgufReader::from_memory("cut.gguf", std::span(bytes).first(n));
      ADD_FAILURE() << "accepted a prefix of " << n << " bytes";
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()).rfind("cut.gguf: ", 0), 0u) << e.what();
    }
  }
}

}  // namespace
}  // namespace specula

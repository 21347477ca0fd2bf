// Integer matrices packed at load (pack_model_weights): which ones are, and
// a model computes bitwise the same logits with and without them.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "gguf/gguf_reader.h"
#include "kernels/weight_packing.h"
#include "model/model.h"
#include "model/model_config.h"
#include "model/model_weights.h"
#include "model/pad_model.h"
#include "model_test_util.h"

namespace specula {
namespace {

// A model whose rows hold whole integer groups and a partial one: width
// 768 (one group of 512 and 256 more), FFN 1280 (two groups and 256).
std::string quantized_model(DType type, bool tied) {
  RandomModelOptions o;
  o.n_vocab = 260;
  o.n_embd = 768;
  o.n_layer = 2;
  o.n_head = 6;
  o.n_head_kv = 2;
  o.n_ff = 1280;
  o.seed = 5;
  o.tied_output = tied;
  const std::string name = str_cat("packed_", dtype_name(type), tied ? "_tied" : "");
  const std::string f32 = test::write_temp_model(o, name + "_f32.gguf");
  const std::string path = test::temp_path(name + ".gguf");
  PadModelOptions convert;
  convert.type = type;
  write_padded_model(f32, convert, path);
  return path;
}

// Every position's logits of a 12-token prompt and 6 greedy steps.
std::vector<float> logits_of(const std::string& path) {
  const auto model = Model::load(path);
  ThreadPool pool(2);
  KvCache cache = model->make_cache(32);
  std::vector<BatchRow> rows;
  for (int32_t i = 0; i < 12; ++i) rows.push_back({0, i, (i * 37 + 11) % 260, true});
  std::vector<float> all, logits;
  for (int step = 0; step < 6; ++step) {
    model->forward(rows, cache, logits, &pool);
    all.insert(all.end(), logits.begin(), logits.end());
    const float* last = logits.data() + logits.size() - 260;
    int32_t next = 0;
    for (int32_t t = 1; t < 260; ++t) next = last[t] > last[next] ? t : next;
    rows = {{0, rows.back().position + 1, next, true}};
  }
  return all;
}

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) { setenv(name, value, 1); }
  ~ScopedEnv() { unsetenv(name_); }

 private:
  const char* name_;
};

TEST(PackedWeights, EveryPackableMatrixAPassReadsIsPacked) {
  if (!packed_rows_used()) GTEST_SKIP() << "this CPU's kernels do not read packed rows";
  const std::string path = quantized_model(DType::kQ4_0, /*tied=*/true);
  const auto file = GgufReader::open(path);
  ModelWeights weights = bind_model_weights(*file, read_model_config(*file));
  const uint64_t packed = pack_model_weights(&weights);
  uint64_t expected = weights.output.row_bytes * static_cast<uint64_t>(weights.output.n_out);
  for (const LayerWeights& layer : weights.layers) {
    for (const WeightMatrix* w : {&layer.attn_q, &layer.attn_k, &layer.attn_v, &layer.attn_output,
                                  &layer.ffn_gate, &layer.ffn_up, &layer.ffn_down}) {
      EXPECT_NE(w->packed, nullptr);
      EXPECT_NE(w->data, static_cast<const void*>(w->packed));
      expected += w->row_bytes * static_cast<uint64_t>(w->n_out);
    }
  }
  EXPECT_NE(weights.output.packed, nullptr);      // tied: the output reads token_embd packed
  EXPECT_EQ(weights.token_embd.packed, nullptr);  // lookups read the GGUF rows
  EXPECT_EQ(packed, expected);
}

TEST(PackedWeights, TurnedOffByTheEnvironment) {
  const std::string path = quantized_model(DType::kQ8_0, /*tied=*/false);
  const auto file = GgufReader::open(path);
  ModelWeights weights = bind_model_weights(*file, read_model_config(*file));
  const ScopedEnv off("SPECULA_PACKED_WEIGHTS", "0");
  EXPECT_EQ(pack_model_weights(&weights), 0u);
  EXPECT_EQ(weights.layers[0].ffn_up.packed, nullptr);
}

// A copy that would not fit beside the rest is not made: the model then
// runs from the file's layout, as it did before packing existed.
TEST(PackedWeights, NotMadeWhenMemoryIsShort) {
  if (!packed_rows_used()) GTEST_SKIP() << "this CPU's kernels do not read packed rows";
  const std::string path = quantized_model(DType::kQ4_0, /*tied=*/false);
  const auto file = GgufReader::open(path);
  const ModelConfig config = read_model_config(*file);
  ModelWeights short_of_memory = bind_model_weights(*file, config);
  EXPECT_EQ(pack_model_weights(&short_of_memory, uint64_t{1} << 20), 0u);  // 1 MB free
  EXPECT_EQ(short_of_memory.layers[0].ffn_up.packed, nullptr);
  EXPECT_TRUE(short_of_memory.packed_storage.empty());
  ModelWeights plenty = bind_model_weights(*file, config);
  EXPECT_GT(pack_model_weights(&plenty, uint64_t{1} << 40), 0u);
  EXPECT_NE(plenty.layers[0].ffn_up.packed, nullptr);
}

TEST(PackedWeights, LogitsBitwiseEqualWithAndWithoutPacking) {
  for (const DType type : {DType::kQ8_0, DType::kQ4_0, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K}) {
    const std::string path = quantized_model(type, /*tied=*/false);
    const std::vector<float> packed = logits_of(path);
    std::vector<float> plain;
    {
      const ScopedEnv off("SPECULA_PACKED_WEIGHTS", "0");
      plain = logits_of(path);
    }
    ASSERT_EQ(packed.size(), plain.size());
    EXPECT_EQ(std::memcmp(packed.data(), plain.data(), plain.size() * sizeof(float)), 0)
        << dtype_name(type);
  }
}

}  // namespace
}  // namespace specula

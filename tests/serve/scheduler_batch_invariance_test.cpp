// Batch invariance, the property the scheduler's exactness rests on (issue
// 13, item 4): a row's logits do not depend on the other rows of its pass,
// bit for bit. A sequence decoded one row at a time must give exactly the
// same logits when its rows ride in passes of other sizes, beside other
// sequences' rows, and with its prompt in chunks, for each weight type the
// server runs (F32, F16, Q8_0; F16 also with rows over 4096 values, where
// its kernels switch to F16 activations), single-threaded and on a pool. (tests/model
// checks the same to float tolerance; greedy identity needs equality.)
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "gguf/gguf_reader.h"
#include "gguf/gguf_writer.h"
#include "kernels/quantize.h"
#include "spec/model_files.h"

namespace specula {
namespace {

// A weight type, and whether the FFN's down projection has rows of more
// than 4096 values (F16/BF16 kernels then take F16 activations).
struct Case {
  DType type = DType::kF32;
  bool long_rows = false;
};

// Widths that are not multiples of the SIMD tiles, and whole Q8_0 blocks.
RandomModelOptions model_options(const Case& c) {
  const DType type = c.type;
  RandomModelOptions o;
  o.n_vocab = 72;
  o.n_embd = 96;
  o.n_head = 3;
  o.n_head_kv = 1;
  o.n_ff = c.long_rows ? 4160 : 160;
  o.n_layer = 2;
  o.n_ctx = 512;
  o.seed = 23;
  o.type = type == DType::kF16 ? DType::kF16 : DType::kF32;
  return o;
}

// The F32 file with every 2-D weight matrix converted to Q8_0 (what
// `specula quantize ... Q8_0` does for these shapes).
void write_q8_0_copy(const std::string& from, const std::string& to) {
  const std::unique_ptr<GgufReader> in = GgufReader::open(from);
  GgufWriter out;
  for (const GgufKv& kv : in->metadata()) {
    if (kv.key != "general.alignment") out.set_value(kv.key, kv.value);
  }
  for (const GgufTensorInfo& t : in->tensors()) {
    if (t.dims.size() != 2 || t.type != DType::kF32 || t.dims[0] % 32 != 0) {
      out.add_tensor(t.name, t.dims, t.type, std::span<const uint8_t>(t.data, t.n_bytes));
      continue;
    }
    const uint64_t n = t.dims[0];
    const uint64_t row_bytes = *dtype_row_bytes(DType::kQ8_0, n);
    std::vector<uint8_t> bytes(row_bytes * t.dims[1]);
    const float* values = reinterpret_cast<const float*>(t.data);
    for (uint64_t r = 0; r < t.dims[1]; ++r) {
      quantize_row(DType::kQ8_0, values + r * n, static_cast<int64_t>(n),
                   bytes.data() + r * row_bytes);
    }
    out.add_tensor(t.name, t.dims, DType::kQ8_0, std::move(bytes));
  }
  out.write(to);
}

std::unique_ptr<Model> load_model(const testing::TempDir& dir, const Case& c) {
  const DType type = c.type;
  const std::string f32 = dir.file("model.gguf");
  write_random_model(model_options(c), f32);
  if (type != DType::kQ8_0) return Model::load(f32);
  const std::string q8 = dir.file("model-q8_0.gguf");
  write_q8_0_copy(f32, q8);
  std::unique_ptr<Model> model = Model::load(q8);
  const GgufTensorInfo* t = model->file().find_tensor("blk.0.ffn_up.weight");
  EXPECT_TRUE(t && t->type == DType::kQ8_0);
  return model;
}

// Logits of every row of `tokens`, one single-row pass each.
std::vector<float> one_row_at_a_time(const Model& model, const std::vector<int32_t>& tokens,
                                     ThreadPool* pool) {
  KvCache cache = model.make_cache(64, 1);
  std::vector<float> all, logits;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const BatchRow row{0, static_cast<int32_t>(i), tokens[i], true};
    model.forward(std::span<const BatchRow>(&row, 1), cache, logits, pool);
    all.insert(all.end(), logits.begin(), logits.end());
  }
  return all;
}

// The same sequence (as sequence 2 of 4) in passes of `chunk` of its rows,
// each beside `others` rows of the other three sequences; its logits in
// order.
std::vector<float> in_mixed_passes(const Model& model, const std::vector<int32_t>& tokens,
                                   int32_t chunk, int32_t others, ThreadPool* pool) {
  KvCache cache = model.make_cache(512, 4);
  const size_t v = static_cast<size_t>(model.config().n_vocab);
  std::vector<float> all, logits;
  int32_t other_position[4] = {0, 0, 0, 0};
  size_t done = 0;
  int32_t pass = 0;
  while (done < tokens.size()) {
    std::vector<BatchRow> rows;
    std::vector<size_t> mine;  // indices of this sequence's rows among the logits
    // Other sequences' rows before and after, some with logits, some not.
    for (int32_t k = 0; k < others; ++k) {
      const int32_t seq = (k + pass) % 2 == 0 ? 0 : 1;
      if (k < others / 2) {
        rows.push_back({seq, other_position[seq]++, (k * 7 + pass) % 72, k % 3 != 0});
      }
    }
    const size_t take = std::min(tokens.size() - done, static_cast<size_t>(chunk));
    for (size_t i = 0; i < take; ++i) {
      rows.push_back({2, static_cast<int32_t>(done + i), tokens[done + i], true});
    }
    for (int32_t k = others / 2; k < others; ++k) {
      rows.push_back({3, other_position[3]++, (k * 5 + pass) % 72, k % 2 == 0});
    }
    size_t logit_row = 0;
    for (const BatchRow& r : rows) {
      if (!r.want_logits) continue;
      if (r.seq == 2) mine.push_back(logit_row);
      ++logit_row;
    }
    model.forward(rows, cache, logits, pool);
    for (size_t index : mine) {
      all.insert(all.end(), logits.begin() + index * v, logits.begin() + (index + 1) * v);
    }
    done += take;
    ++pass;
  }
  return all;
}

class BatchInvariance : public ::testing::TestWithParam<Case> {};

TEST_P(BatchInvariance, RowLogitsDoNotDependOnTheRestOfThePass) {
  const testing::TempDir dir;
  const std::unique_ptr<Model> model = load_model(dir, GetParam());
  const std::vector<int32_t> tokens = testing::random_tokens(*model, 77, 40);
  ThreadPool pool(2);
  for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
    const std::vector<float> alone = one_row_at_a_time(*model, tokens, p);
    for (int32_t chunk : {1, 2, 3, 5, 8, 13, 40}) {
      for (int32_t others : {0, 1, 6, 19}) {
        const std::vector<float> mixed = in_mixed_passes(*model, tokens, chunk, others, p);
        ASSERT_EQ(mixed.size(), alone.size());
        // Bit-identical, not merely close.
        EXPECT_EQ(std::memcmp(mixed.data(), alone.data(), alone.size() * sizeof(float)), 0)
            << dtype_name(GetParam().type) << (GetParam().long_rows ? " long rows" : "")
            << ": chunk " << chunk << ", " << others << " other rows, "
            << (p ? "2 threads" : "1 thread");
      }
    }
  }
}

TEST_P(BatchInvariance, ThreadCountDoesNotChangeLogits) {
  const testing::TempDir dir;
  const std::unique_ptr<Model> model = load_model(dir, GetParam());
  const std::vector<int32_t> tokens = testing::random_tokens(*model, 78, 24);
  ThreadPool pool(2), pool3(3);
  const std::vector<float> one = in_mixed_passes(*model, tokens, 5, 6, nullptr);
  const std::vector<float> two = in_mixed_passes(*model, tokens, 5, 6, &pool);
  const std::vector<float> three = in_mixed_passes(*model, tokens, 5, 6, &pool3);
  EXPECT_EQ(std::memcmp(one.data(), two.data(), one.size() * sizeof(float)), 0);
  EXPECT_EQ(std::memcmp(one.data(), three.data(), one.size() * sizeof(float)), 0);
}

INSTANTIATE_TEST_SUITE_P(WeightTypes, BatchInvariance,
                         ::testing::Values(Case{DType::kF32, false}, Case{DType::kF16, false},
                                           Case{DType::kQ8_0, false}, Case{DType::kF16, true},
                                           Case{DType::kQ8_0, true}),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return std::string(dtype_name(info.param.type)) +
                                  (info.param.long_rows ? "_long_rows" : "");
                         });

}  // namespace
}  // namespace specula

// Batching and cache properties of Model::forward: a batch equals the same
// rows one at a time, sequences do not see each other, truncation is a
// clean rollback, and the thread count does not change results.
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "core/error.h"
#include "model/model.h"
#include "model_test_util.h"

namespace specula {
namespace {

const Model& gqa_model() {
  static const std::unique_ptr<Model> model = [] {
    RandomModelOptions o;
    o.n_vocab = 45;
    o.n_embd = 48;
    o.n_layer = 2;
    o.n_head = 6;
    o.n_head_kv = 2;
    o.n_ff = 83;
    o.seed = 31;
    o.architecture = "qwen2";
    return Model::load(test::write_temp_model(o, "batch.gguf"));
  }();
  return *model;
}

std::vector<float> run_one_by_one(const Model& model, KvCache& cache, int32_t seq,
                                  const std::vector<int32_t>& tokens) {
  std::vector<float> all, logits;
  for (const int32_t token : tokens) {
    const BatchRow row{seq, cache.length(seq), token, true};
    model.forward(std::span<const BatchRow>(&row, 1), cache, logits, nullptr);
    all.insert(all.end(), logits.begin(), logits.end());
  }
  return all;
}

TEST(ForwardBatch, BatchEqualsSingleRows) {
  const Model& model = gqa_model();
  const std::vector<int32_t> tokens = {3, 17, 44, 0, 9, 9, 21, 30};
  KvCache single_cache = model.make_cache(32);
  const std::vector<float> single = run_one_by_one(model, single_cache, 0, tokens);

  KvCache batch_cache = model.make_cache(32);
  std::vector<BatchRow> rows;
  for (size_t i = 0; i < tokens.size(); ++i) {
    rows.push_back({0, static_cast<int32_t>(i), tokens[i], true});
  }
  std::vector<float> batched;
  model.forward(rows, batch_cache, batched, nullptr);
  EXPECT_EQ(batch_cache.length(0), 8);
  EXPECT_LE(test::relative_error(batched, single), 1e-6);
}

TEST(ForwardBatch, OnlyWantedRowsGetLogitsInRowOrder) {
  const Model& model = gqa_model();
  const std::vector<int32_t> tokens = {5, 6, 7, 8};
  KvCache reference_cache = model.make_cache(8);
  const std::vector<float> every = run_one_by_one(model, reference_cache, 0, tokens);
  const size_t v = static_cast<size_t>(model.config().n_vocab);

  KvCache cache = model.make_cache(8);
  const std::vector<BatchRow> rows = {
      {0, 0, 5, false}, {0, 1, 6, true}, {0, 2, 7, false}, {0, 3, 8, true}};
  std::vector<float> logits(3, 123.0f);
  model.forward(rows, cache, logits, nullptr);
  ASSERT_EQ(logits.size(), 2 * v);
  std::vector<float> expected(every.begin() + v, every.begin() + 2 * v);
  expected.insert(expected.end(), every.begin() + 3 * v, every.end());
  EXPECT_LE(test::relative_error(logits, expected), 1e-6);

  // No logits wanted: an empty result, but the cache still advances.
  const BatchRow silent{0, 4, 1, false};
  model.forward(std::span<const BatchRow>(&silent, 1), cache, logits, nullptr);
  EXPECT_TRUE(logits.empty());
  EXPECT_EQ(cache.length(0), 5);
}

TEST(ForwardBatch, InterleavedSequencesEqualSeparateRuns) {
  const Model& model = gqa_model();
  const std::vector<int32_t> a = {1, 2, 3, 4, 5};
  const std::vector<int32_t> b = {40, 30, 20};
  KvCache separate = model.make_cache(16, 1);
  const std::vector<float> expected_a = run_one_by_one(model, separate, 0, a);
  separate.clear();
  const std::vector<float> expected_b = run_one_by_one(model, separate, 0, b);

  // Sequence 1 first gets a prefix alone, then both share batches with the
  // rows interleaved.
  KvCache cache = model.make_cache(16, 2);
  std::vector<float> logits;
  const std::vector<BatchRow> first = {{1, 0, b[0], true}, {0, 0, a[0], true}, {0, 1, a[1], true}};
  model.forward(first, cache, logits, nullptr);
  const std::vector<BatchRow> second = {{0, 2, a[2], true},
                                        {1, 1, b[1], true},
                                        {0, 3, a[3], true},
                                        {1, 2, b[2], true},
                                        {0, 4, a[4], true}};
  std::vector<float> logits2;
  model.forward(second, cache, logits2, nullptr);
  EXPECT_EQ(cache.length(0), 5);
  EXPECT_EQ(cache.length(1), 3);

  const size_t v = static_cast<size_t>(model.config().n_vocab);
  auto row = [&](const std::vector<float>& all, size_t i) {
    return std::vector<float>(all.begin() + i * v, all.begin() + (i + 1) * v);
  };
  auto concat = [](std::initializer_list<std::vector<float>> parts) {
    std::vector<float> out;
    for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
  };
  const std::vector<float> got_a =
      concat({row(logits, 1), row(logits, 2), row(logits2, 0), row(logits2, 2), row(logits2, 4)});
  const std::vector<float> got_b = concat({row(logits, 0), row(logits2, 1), row(logits2, 3)});
  EXPECT_LE(test::relative_error(got_a, expected_a), 1e-6);
  EXPECT_LE(test::relative_error(got_b, expected_b), 1e-6);
}

// A batch longer than one pass through the layers (kMaxRowsPerPass = 128
// rows in model.cpp) runs in several: rows of a later pass attend to the
// keys an earlier one wrote, and the wanted logits land in row order.
TEST(ForwardBatch, BatchLongerThanOnePassEqualsSingleRows) {
  const Model& model = gqa_model();
  constexpr int32_t kPerSequence = 150;  // 300 rows: passes of 128, 128, 44
  std::vector<int32_t> a, b;
  for (int32_t i = 0; i < kPerSequence; ++i) {
    a.push_back((i * 7 + 3) % 45);
    b.push_back((i * 11 + 5) % 45);
  }
  KvCache separate = model.make_cache(kPerSequence, 1);
  const std::vector<float> expected_a = run_one_by_one(model, separate, 0, a);
  separate.clear();
  const std::vector<float> expected_b = run_one_by_one(model, separate, 0, b);

  // The sequences interleaved, logits wanted for every third row of each.
  KvCache cache = model.make_cache(kPerSequence, 2);
  std::vector<BatchRow> rows;
  for (int32_t i = 0; i < kPerSequence; ++i) {
    rows.push_back({0, i, a[static_cast<size_t>(i)], i % 3 == 0});
    rows.push_back({1, i, b[static_cast<size_t>(i)], i % 3 == 0});
  }
  std::vector<float> logits;
  model.forward(rows, cache, logits, nullptr);
  EXPECT_EQ(cache.length(0), kPerSequence);
  EXPECT_EQ(cache.length(1), kPerSequence);

  const size_t v = static_cast<size_t>(model.config().n_vocab);
  ASSERT_EQ(logits.size(), static_cast<size_t>(2 * kPerSequence / 3) * v);
  std::vector<float> got_a, want_a, got_b, want_b;
  for (size_t i = 0; i < static_cast<size_t>(kPerSequence); i += 3) {
    const size_t wanted = 2 * (i / 3);  // a's row, then b's
    got_a.insert(got_a.end(), logits.begin() + wanted * v, logits.begin() + (wanted + 1) * v);
    got_b.insert(got_b.end(), logits.begin() + (wanted + 1) * v, logits.begin() + (wanted + 2) * v);
    want_a.insert(want_a.end(), expected_a.begin() + i * v, expected_a.begin() + (i + 1) * v);
    want_b.insert(want_b.end(), expected_b.begin() + i * v, expected_b.begin() + (i + 1) * v);
  }
  EXPECT_EQ(got_a, want_a);
  EXPECT_EQ(got_b, want_b);
}

TEST(ForwardBatch, TruncateThenRerunEqualsFreshRun) {
  const Model& model = gqa_model();
  auto batch = [](int32_t start, const std::vector<int32_t>& tokens) {
    std::vector<BatchRow> rows;
    for (size_t i = 0; i < tokens.size(); ++i) {
      rows.push_back({0, start + static_cast<int32_t>(i), tokens[i], true});
    }
    return rows;
  };
  const std::vector<int32_t> prefix = {7, 8, 9, 10};
  const std::vector<int32_t> rejected = {11, 12, 13, 14, 15, 16};
  const std::vector<int32_t> accepted = {20, 21, 22};

  KvCache fresh = model.make_cache(16);
  std::vector<float> ignored, expected;
  model.forward(batch(0, prefix), fresh, ignored, nullptr);
  model.forward(batch(4, accepted), fresh, expected, nullptr);

  KvCache rolled = model.make_cache(16);
  std::vector<float> got;
  model.forward(batch(0, prefix), rolled, ignored, nullptr);
  model.forward(batch(4, rejected), rolled, ignored, nullptr);
  rolled.truncate(0, 4);
  EXPECT_EQ(rolled.length(0), 4);
  model.forward(batch(4, accepted), rolled, got, nullptr);
  EXPECT_EQ(got, expected);  // same calls on the same state: bit-identical
}

TEST(ForwardBatch, ThreadCountDoesNotChangeLogits) {
  const Model& model = gqa_model();
  std::vector<BatchRow> rows;
  for (int32_t i = 0; i < 7; ++i) rows.push_back({0, i, (i * 11) % 45, true});
  ThreadPool one(1), three(3);
  KvCache cache_one = model.make_cache(8), cache_three = model.make_cache(8);
  std::vector<float> logits_one, logits_three;
  model.forward(rows, cache_one, logits_one, &one);
  model.forward(rows, cache_three, logits_three, &three);
  EXPECT_EQ(logits_one, logits_three);
  std::vector<float> logits_none;
  KvCache cache_none = model.make_cache(8);
  model.forward(rows, cache_none, logits_none, nullptr);
  EXPECT_EQ(logits_one, logits_none);
}

TEST(ForwardBatch, ConcurrentForwardsOnSeparateCaches) {
  const Model& model = gqa_model();
  std::vector<BatchRow> rows;
  for (int32_t i = 0; i < 5; ++i) rows.push_back({0, i, i + 1, true});
  KvCache serial_cache = model.make_cache(8);
  std::vector<float> expected;
  model.forward(rows, serial_cache, expected, nullptr);

  std::vector<std::vector<float>> results(4);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < results.size(); ++t) {
    threads.emplace_back([&, t] {
      KvCache cache = model.make_cache(8);
      for (int repeat = 0; repeat < 5; ++repeat) {
        cache.clear();
        model.forward(rows, cache, results[t], nullptr);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const auto& result : results) EXPECT_EQ(result, expected);
}

TEST(KvCache, LengthsTruncateAndBounds) {
  KvCache cache(2, 3, 10, 4);
  // Per layer and sequence: keys for 10 positions rounded up to a block of
  // 16, values for 10.
  EXPECT_EQ(cache.bytes(), 2u * 3 * (16 + 10) * 4 * sizeof(float));
  cache.set_length(1, 7);
  EXPECT_EQ(cache.length(0), 0);
  EXPECT_EQ(cache.length(1), 7);
  cache.truncate(1, 2);
  EXPECT_EQ(cache.length(1), 2);
  cache.truncate(1, 2);  // to the same length: a no-op
  EXPECT_EQ(cache.length(1), 2);
  EXPECT_THROW(cache.truncate(1, 3), Error);  // cannot grow
  EXPECT_THROW(cache.truncate(1, -1), Error);
  EXPECT_THROW(cache.truncate(3, 0), Error);  // no such sequence
  EXPECT_THROW(cache.set_length(0, 11), Error);
  // Keys and values of different (layer, seq, position) do not overlap.
  const float key[4] = {1.0f, 2.0f, 3.0f, 4.0f}, value[4] = {5.0f, 6.0f, 7.0f, 8.0f};
  cache.write(1, 2, 9, key, value);
  for (int32_t c = 0; c < 4; ++c) {
    EXPECT_EQ(cache.key_at(1, 2, 9, c), key[c]);
    EXPECT_EQ(static_cast<const float*>(cache.value(1, 2, 9))[c], value[c]);
    EXPECT_EQ(cache.key_at(1, 2, 8, c), 0.0f);  // the same block of keys
    EXPECT_EQ(cache.key_at(0, 2, 9, c), 0.0f);
    EXPECT_EQ(cache.key_at(1, 1, 9, c), 0.0f);
    EXPECT_EQ(static_cast<const float*>(cache.value(1, 2, 8))[c], 0.0f);
  }
  // The store is laid out as attention() reads it.
  const auto* store = static_cast<const float*>(cache.keys(1, 2));
  for (int32_t c = 0; c < 4; ++c) EXPECT_EQ(store[c * kKeyBlockPositions + 9], key[c]);
  cache.clear();
  EXPECT_EQ(cache.length(1), 0);
  EXPECT_THROW(KvCache(1, 0, 10, 4), Error);
  EXPECT_THROW(KvCache(1, 1, 10, 4, DType::kQ8_0), Error);
}

// An F16 cache stores each written value rounded to the nearest IEEE half,
// ties to even (bit patterns from the binary16 definition), in half the
// bytes: keys channel by channel in blocks of 16 positions, values in rows.
TEST(KvCache, F16RowsHoldRoundedHalves) {
  KvCache cache(2, 2, 4, 4, DType::kF16);
  EXPECT_EQ(cache.type(), DType::kF16);
  EXPECT_EQ(cache.row_bytes(), 4 * sizeof(uint16_t));
  EXPECT_EQ(cache.bytes(), 2u * 2 * (16 + 4) * 4 * sizeof(uint16_t));
  // 1 + 2^-11 is halfway between 1 and the next half (1 + 2^-10): even, 1.
  // 1 + 3 * 2^-11 is halfway between 1 + 2^-10 and 1 + 2^-9: even, 1 + 2^-9.
  const float key[4] = {1.0f, -2.5f, 1.0f + 0x1p-11f, 1.0f + 3 * 0x1p-11f};
  // 65504 is the largest half; 2^-24 the smallest subnormal; 1e6 overflows.
  const float value[4] = {65504.0f, 0x1p-24f, -0.0f, 1e6f};
  cache.write(1, 1, 2, key, value);
  const auto* keys = static_cast<const uint16_t*>(cache.keys(1, 1));
  std::vector<uint16_t> k;
  for (int c = 0; c < 4; ++c) k.push_back(keys[c * kKeyBlockPositions + 2]);
  const auto* v = static_cast<const uint16_t*>(cache.value(1, 1, 2));
  EXPECT_EQ(k, (std::vector<uint16_t>{0x3c00, 0xc100, 0x3c00, 0x3c02}));
  EXPECT_EQ(std::vector<uint16_t>(v, v + 4),
            (std::vector<uint16_t>{0x7bff, 0x0001, 0x8000, 0x7c00}));
  EXPECT_EQ(cache.key_at(1, 1, 2, 1), -2.5f);
  // Its neighbours are untouched.
  const auto* other_seq = static_cast<const uint16_t*>(cache.keys(1, 0));
  for (int c = 0; c < 4; ++c) {
    EXPECT_EQ(keys[c * kKeyBlockPositions + 1] | keys[c * kKeyBlockPositions + 3], 0) << c;
    EXPECT_EQ(other_seq[c * kKeyBlockPositions + 2], 0) << c;
  }
}

}  // namespace
}  // namespace specula

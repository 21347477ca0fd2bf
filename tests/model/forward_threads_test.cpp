// Thread-count invariance of a forward over a batch big enough that every
// step is split over the pool (row norms, element-wise ops, attention,
// matmuls), with two sequences interleaved in the batch.
#include <gtest/gtest.h>

#include "model/model.h"
#include "model_test_util.h"

namespace specula {
namespace {

TEST(ForwardThreads, LargeBatchIdenticalForNoPoolAnd1To3Threads) {
  RandomModelOptions o;
  o.n_vocab = 61;
  o.n_embd = 256;
  o.n_layer = 2;
  o.n_head = 4;
  o.n_head_kv = 2;
  o.n_ff = 544;
  o.n_ctx = 512;
  o.seed = 77;
  const std::unique_ptr<Model> model = Model::load(test::write_temp_model(o, "threads.gguf"));

  // 2 x 300 rows, run as passes of 128 rows (model.cpp): 128 x 256 values
  // per norm and 128 x 544 per SwiGLU, enough to go parallel.
  std::vector<BatchRow> rows;
  for (int32_t i = 0; i < 600; ++i) rows.push_back({i % 2, i / 2, (i * 13) % 61, i % 7 == 0});
  const auto run = [&](ThreadPool* pool) {
    KvCache cache = model->make_cache(300, 2);
    std::vector<float> logits;
    model->forward(rows, cache, logits, pool);
    // A decode step after the batch, re-scoring each sequence's last position.
    cache.truncate(0, 299);
    cache.truncate(1, 299);
    const BatchRow next[2] = {{0, 299, 5, true}, {1, 299, 6, true}};
    std::vector<float> step;
    model->forward(next, cache, step, pool);
    logits.insert(logits.end(), step.begin(), step.end());
    return logits;
  };
  const std::vector<float> inline_logits = run(nullptr);
  ASSERT_EQ(inline_logits.size(), (86 + 2) * 61u);
  for (int n_threads : {1, 2, 3}) {
    ThreadPool pool(n_threads);
    EXPECT_EQ(run(&pool), inline_logits) << n_threads << " threads";
  }
}

}  // namespace
}  // namespace specula

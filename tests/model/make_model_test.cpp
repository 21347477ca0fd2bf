// make-model: realistic output distributions, the byte-level tokenizer
// metadata, reproducibility, and drafts derived from a target.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <set>

#include "core/error.h"
#include "gguf/gguf_reader.h"
#include "model/make_model.h"
#include "model/model.h"
#include "model_test_util.h"

namespace specula {
namespace {

// Entropy in nats of softmax(logits) at temperature 1.
double entropy(const float* logits, int n) {
  double max_logit = -INFINITY;
  for (int i = 0; i < n; ++i) max_logit = std::max(max_logit, double(logits[i]));
  double total = 0.0;
  for (int i = 0; i < n; ++i) total += std::exp(logits[i] - max_logit);
  double h = 0.0;
  for (int i = 0; i < n; ++i) {
    const double p = std::exp(logits[i] - max_logit) / total;
    if (p > 0) h -= p * std::log(p);
  }
  return h;
}

std::vector<float> prompt_logits(const Model& model, const std::string& text) {
  KvCache cache = model.make_cache(static_cast<int32_t>(text.size()));
  std::vector<BatchRow> rows;
  for (size_t i = 0; i < text.size(); ++i) {
    rows.push_back({0, static_cast<int32_t>(i), static_cast<unsigned char>(text[i]), true});
  }
  std::vector<float> logits;
  model.forward(rows, cache, logits, nullptr);
  return logits;
}

const std::string kPrompt = "The quick brown fox jumps over the lazy dog. 0123456789";

TEST(MakeModel, DefaultShapeHasRealisticEntropy) {
  const RandomModelOptions defaults;  // the CLI's default shape
  const auto model = Model::load(test::write_temp_model(defaults, "default.gguf"));
  const int v = model->config().n_vocab;
  ASSERT_EQ(v, 258);
  const std::vector<float> logits = prompt_logits(*model, kPrompt);
  double low = INFINITY, high = 0.0, mean = 0.0;
  for (size_t i = 0; i < kPrompt.size(); ++i) {
    const double h = entropy(logits.data() + i * v, v);
    low = std::min(low, h);
    high = std::max(high, h);
    mean += h / kPrompt.size();
  }
  std::printf("entropy over %zu positions: min %.3f mean %.3f max %.3f (uniform %.3f)\n",
              kPrompt.size(), low, mean, high, std::log(double(v)));
  EXPECT_GT(low, 0.5);
  EXPECT_LT(high, std::log(double(v)) - 0.5);
}

std::vector<uint8_t> tensor_bytes(const GgufReader& file, const std::string& name) {
  const GgufTensorInfo* info = file.find_tensor(name);
  if (info == nullptr) return {};
  return std::vector<uint8_t>(info->data, info->data + info->n_bytes);
}

TEST(MakeModel, ByteLevelTokenizerMetadata) {
  RandomModelOptions o;
  o.n_vocab = 261;
  o.n_embd = 16;
  o.n_layer = 1;
  o.n_head = 2;
  const auto file = GgufReader::open(test::write_temp_model(o, "tokenizer.gguf"));
  EXPECT_EQ(file->get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(file->get_string("tokenizer.ggml.pre"), "default");
  const auto tokens = *file->get_string_array("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens.size(), 261u);
  // GPT-2's byte-to-unicode mapping: printable bytes stand for themselves,
  // the rest are shifted to U+0100.. in byte order.
  EXPECT_EQ(tokens['A'], "A");
  EXPECT_EQ(tokens['~'], "~");
  EXPECT_EQ(tokens[0], "\u0100");
  EXPECT_EQ(tokens['\n'], "\u010A");
  EXPECT_EQ(tokens[' '], "\u0120");
  EXPECT_EQ(tokens[0x7F], "\u0121");
  EXPECT_EQ(tokens[0xA1], "\u00A1");
  EXPECT_EQ(tokens[0xAD], "\u0143");
  EXPECT_EQ(tokens[0xFF], "\u00FF");
  EXPECT_EQ(tokens[256], "<s>");
  EXPECT_EQ(tokens[257], "</s>");
  EXPECT_EQ(tokens[258], "<|extra_0|>");
  EXPECT_EQ(tokens[260], "<|extra_2|>");
  std::set<std::string_view> distinct(tokens.begin(), tokens.end());
  EXPECT_EQ(distinct.size(), tokens.size());
  const auto types = *file->get_int_array("tokenizer.ggml.token_type");
  ASSERT_EQ(types.size(), 261u);
  EXPECT_EQ(types[0], 1);
  EXPECT_EQ(types[255], 1);
  EXPECT_EQ(types[256], 3);
  EXPECT_EQ(types[257], 3);
  EXPECT_EQ(types[259], 4);
  EXPECT_EQ(file->get_string_array("tokenizer.ggml.merges")->size(), 0u);
  EXPECT_EQ(file->get_uint("tokenizer.ggml.bos_token_id"), 256u);
  EXPECT_EQ(file->get_uint("tokenizer.ggml.eos_token_id"), 257u);
  EXPECT_EQ(file->get_bool("tokenizer.ggml.add_bos_token"), true);
}

TEST(MakeModel, TinyVocabularyHasNoTokenizer) {
  RandomModelOptions o;
  o.n_vocab = 37;
  o.n_embd = 16;
  o.n_layer = 1;
  o.n_head = 2;
  const auto file = GgufReader::open(test::write_temp_model(o, "tiny_vocab.gguf"));
  for (const GgufKv& kv : file->metadata()) EXPECT_NE(kv.key.rfind("tokenizer.", 0), 0u) << kv.key;
  EXPECT_EQ(Model::load(file->path())->config().n_vocab, 37);
}

TEST(MakeModel, MetadataTypesAndReproducibility) {
  RandomModelOptions o;
  o.architecture = "qwen2";
  o.n_vocab = 40;
  o.n_embd = 32;
  o.n_layer = 2;
  o.n_head = 4;
  o.n_head_kv = 2;
  o.n_ff = 50;
  o.n_ctx = 77;
  o.type = DType::kF16;
  o.rope_freq_base = 12345.0f;
  o.seed = 9;
  const std::vector<uint8_t> first = build_random_model(o).to_bytes();
  EXPECT_EQ(build_random_model(o).to_bytes(), first);
  o.seed = 10;
  EXPECT_NE(build_random_model(o).to_bytes(), first);
  o.seed = 9;

  const std::string path = test::write_temp_model(o, "qwen2_f16.gguf");
  const auto model = Model::load(path);
  const ModelConfig& c = model->config();
  EXPECT_EQ(c.architecture, "qwen2");
  EXPECT_EQ(c.n_vocab, 40);
  EXPECT_EQ(c.n_embd, 32);
  EXPECT_EQ(c.n_layer, 2);
  EXPECT_EQ(c.n_head, 4);
  EXPECT_EQ(c.n_head_kv, 2);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.n_ff, 50);
  EXPECT_EQ(c.n_ctx_train, 77);
  EXPECT_EQ(c.rope_freq_base, 12345.0f);
  EXPECT_EQ(c.rope_style, RopeStyle::kNeox);
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_FALSE(c.tied_output);
  const GgufReader& file = model->file();
  EXPECT_EQ(file.find_tensor("blk.1.ffn_down.weight")->type, DType::kF16);
  EXPECT_EQ(file.find_tensor("token_embd.weight")->type, DType::kF16);
  EXPECT_EQ(file.find_tensor("blk.1.ffn_norm.weight")->type, DType::kF32);
  EXPECT_EQ(file.find_tensor("blk.1.attn_k.bias")->type, DType::kF32);
  EXPECT_EQ(file.find_tensor("blk.0.attn_k.weight")->dims, (std::vector<uint64_t>{32, 16}));
  // Everything except the embeddings is read whole by each forward.
  uint64_t expected_bytes = 0;
  for (const GgufTensorInfo& t : file.tensors()) expected_bytes += t.n_bytes;
  expected_bytes -= file.find_tensor("token_embd.weight")->n_bytes;
  EXPECT_EQ(model->weight_bytes(), expected_bytes);
}

TEST(MakeModel, BadOptionsAreRefused) {
  auto refused = [](auto edit, const std::string& word) {
    RandomModelOptions o;
    edit(o);
    try {
      build_random_model(o);
      ADD_FAILURE() << "accepted; expected an error about " << word;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(word), std::string::npos) << e.what();
    }
  };
  refused([](RandomModelOptions& o) { o.architecture = "mamba"; }, "mamba");
  refused([](RandomModelOptions& o) { o.n_head = 3; }, "heads = 3");
  refused([](RandomModelOptions& o) { o.n_head_kv = 3; }, "heads-kv = 3");
  refused([](RandomModelOptions& o) { o.n_layer = 0; }, "layers");
  refused([](RandomModelOptions& o) { o.n_vocab = -1; }, "vocab");
  refused([](RandomModelOptions& o) { o.type = DType::kQ4_0; }, "Q4_0");
  refused([](RandomModelOptions& o) { o.rope_freq_base = 0.0f; }, "rope base");
}

TEST(MakeModel, DraftKeepsSharedTensorsAndFirstLayers) {
  RandomModelOptions o;
  o.n_vocab = 260;
  o.n_embd = 32;
  o.n_layer = 4;
  o.n_head = 4;
  o.n_head_kv = 2;
  o.type = DType::kF16;
  const std::string target_path = test::write_temp_model(o, "draft_target.gguf");
  const std::string draft_path = test::temp_path("draft_2.gguf");
  write_draft_model(target_path, 2, draft_path);
  const auto target = GgufReader::open(target_path);
  const auto draft = GgufReader::open(draft_path);

  EXPECT_EQ(draft->get_uint("llama.block_count"), 2u);
  EXPECT_EQ(draft->get_uint("llama.embedding_length"), 32u);
  EXPECT_EQ(*draft->get_string_array("tokenizer.ggml.tokens"),
            *target->get_string_array("tokenizer.ggml.tokens"));
  EXPECT_EQ(*draft->get_int_array("tokenizer.ggml.token_type"),
            *target->get_int_array("tokenizer.ggml.token_type"));
  EXPECT_EQ(draft->get_uint("tokenizer.ggml.eos_token_id"), 257u);
  for (const char* name :
       {"token_embd.weight", "output_norm.weight", "output.weight", "blk.0.attn_q.weight",
        "blk.1.ffn_down.weight", "blk.1.attn_norm.weight"}) {
    const auto bytes = tensor_bytes(*draft, name);
    EXPECT_FALSE(bytes.empty()) << name;
    EXPECT_EQ(bytes, tensor_bytes(*target, name)) << name;
    EXPECT_EQ(draft->find_tensor(name)->type, target->find_tensor(name)->type) << name;
  }
  EXPECT_EQ(draft->find_tensor("blk.2.attn_q.weight"), nullptr);
  EXPECT_EQ(draft->find_tensor("blk.3.ffn_up.weight"), nullptr);
  EXPECT_EQ(draft->tensors().size(), target->tensors().size() - 2 * 9);
  EXPECT_EQ(Model::load(draft_path)->config().n_layer, 2);

  EXPECT_THROW(write_draft_model(target_path, 0, draft_path), Error);
  EXPECT_THROW(write_draft_model(target_path, 5, draft_path), Error);
  EXPECT_THROW(write_draft_model(test::temp_path("no_such.gguf"), 1, draft_path), Error);
}

// A draft with all the target's layers is the target: identical logits; one
// with fewer layers differs.
TEST(MakeModel, FullDepthDraftEqualsTarget) {
  RandomModelOptions o;
  o.n_vocab = 258;
  o.n_embd = 32;
  o.n_layer = 3;
  o.n_head = 4;
  const std::string target_path = test::write_temp_model(o, "full_target.gguf");
  const std::vector<float> target = prompt_logits(*Model::load(target_path), kPrompt);
  write_draft_model(target_path, 3, test::temp_path("full_draft.gguf"));
  write_draft_model(target_path, 1, test::temp_path("short_draft.gguf"));
  EXPECT_EQ(prompt_logits(*Model::load(test::temp_path("full_draft.gguf")), kPrompt), target);
  EXPECT_NE(prompt_logits(*Model::load(test::temp_path("short_draft.gguf")), kPrompt), target);
}

}  // namespace
}  // namespace specula

// libFuzzer harness: GGUF bytes -> GgufReader (every typed getter on every
// key, every tensor's first and last byte) -> Tokenizer and Model when the
// file describes them -> one forward pass of two tokens when the model is
// small. Malformed input must end in specula::Error; anything else (a crash,
// a sanitizer report, another exception, a hang) is a finding.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/error.h"
#include "gguf/gguf_reader.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace {

using specula::Error;
using specula::GgufReader;

// Volatile sink so the reads below are not optimised away.
volatile uint64_t g_sink = 0;

template <typename F>
void ignore_errors(F&& f) {
  try {
    f();
  } catch (const Error&) {
  }
}

void read_every_key(const GgufReader& file) {
  for (const specula::GgufKv& kv : file.metadata()) {
    const std::string_view key = kv.key;
    ignore_errors([&] { g_sink = g_sink + file.get_string(key).value_or("").size(); });
    ignore_errors([&] { g_sink = g_sink + file.get_uint(key).value_or(0); });
    ignore_errors([&] { g_sink = g_sink + static_cast<uint64_t>(file.get_int(key).value_or(0)); });
    ignore_errors([&] { g_sink = g_sink + (file.get_float(key).value_or(0) > 0); });
    ignore_errors([&] { g_sink = g_sink + file.get_bool(key).value_or(false); });
    ignore_errors([&] {
      if (const auto strings = file.get_string_array(key)) {
        for (std::string_view s : *strings) g_sink = g_sink + s.size();
      }
    });
    ignore_errors([&] {
      if (const auto floats = file.get_float_array(key)) g_sink = g_sink + floats->size();
    });
    ignore_errors([&] {
      if (const auto ints = file.get_int_array(key)) g_sink = g_sink + ints->size();
    });
  }
  for (const specula::GgufTensorInfo& t : file.tensors()) {
    if (t.n_bytes > 0) g_sink = g_sink + t.data[0] + t.data[t.n_bytes - 1];
  }
}

void use_tokenizer(const GgufReader& file) {
  std::unique_ptr<specula::Tokenizer> tokenizer;
  try {
    tokenizer = specula::Tokenizer::from_gguf(file);
  } catch (const Error&) {
    return;
  }
  ignore_errors([&] {
    const std::vector<int32_t> ids =
        tokenizer->encode("Hello, world! \xC3\xA9\xF0\x9F\x98\x80 12", true, true);
    g_sink = g_sink + tokenizer->decode(ids).size();
  });
}

void use_model(const std::shared_ptr<const GgufReader>& file) {
  std::unique_ptr<specula::Model> model;
  try {
    model = specula::Model::from_gguf(file);
  } catch (const Error&) {
    return;
  }
  const specula::ModelConfig& config = model->config();
  // Only cheap forwards: a few MB of weights at most.
  if (model->weight_bytes() > (4u << 20) || config.n_vocab <= 0) return;
  ignore_errors([&] {
    specula::KvCache cache = model->make_cache(4);
    const specula::BatchRow rows[] = {{0, 0, 0, false}, {0, 1, config.n_vocab - 1, true}};
    std::vector<float> logits;
    model->forward(rows, cache, logits, nullptr);
    g_sink = g_sink + logits.size();
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::shared_ptr<const GgufReader> file;
  try {
    file = GgufReader::from_memory("fuzz.gguf", std::span(data, size));
  } catch (const Error&) {
    return 0;
  }
  read_every_key(*file);
  use_tokenizer(*file);
  use_model(file);
  return 0;
}

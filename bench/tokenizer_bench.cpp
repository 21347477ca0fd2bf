// Encoding speed of the tokenizers on ~10 MB of text (tokens/s and bytes/s),
// plus the pathological inputs of issue 3 (10 MB of one character).
//
//   tokenizer_bench [--benchmark_filter=...]   (Google Benchmark flags)
// Text: SPECULA_BENCH_TEXT (a file; the first 10 MB are used), else a
// generated mix of English-like words, code and Unicode.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <string>

#include "gguf/gguf_reader.h"
#include "tokenizer/tokenizer.h"

namespace specula {
namespace {

constexpr size_t kTextBytes = 10 << 20;

const std::string& bench_text() {
  static const std::string text = [] {
    std::string out;
    if (const char* path = std::getenv("SPECULA_BENCH_TEXT")) {
      std::ifstream in(path, std::ios::binary);
      out.assign(std::istreambuf_iterator<char>(in), {});
      if (out.size() > kTextBytes) out.resize(kTextBytes);
      if (!out.empty()) return out;
    }
    static const char* kWords[] = {
        "the ",    "of ",     "speculative ", "decoding ", "int ",   "x = y + 1;\n", "Привет ",
        "数据 ",   "émigré ", "🦙 ",        "(",         ")",      "\n\n",         "    ",
        "return ", "value",   "123 ",         "4567 ",     "don't ", "It's "};
    std::mt19937 rng(1);
    while (out.size() < kTextBytes) out += kWords[rng() % std::size(kWords)];
    return out;
  }();
  return text;
}

void encode_text(benchmark::State& state, const std::string& vocab, const std::string& text) {
  const std::string path =
      std::string(SPECULA_TEST_DATA_DIR "/vocab/ggml-vocab-") + vocab + ".gguf";
  std::unique_ptr<GgufReader> file = GgufReader::open(path);
  std::unique_ptr<Tokenizer> tokenizer = Tokenizer::from_gguf(*file);
  size_t tokens = 0;
  for (auto _ : state) {
    const std::vector<int32_t> ids = tokenizer->encode(text, true, false);
    tokens += ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["tokens/s"] =
      benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsRate);
}

void BM_Encode10MB(benchmark::State& state, const char* vocab) {
  encode_text(state, vocab, bench_text());
}

void BM_Encode10MBOneChar(benchmark::State& state, const char* vocab, char c) {
  static std::string text;
  text.assign(kTextBytes, c);
  encode_text(state, vocab, text);
}

BENCHMARK_CAPTURE(BM_Encode10MB, gpt2, "gpt-2")->Unit(benchmark::kMillisecond)->Iterations(2);
BENCHMARK_CAPTURE(BM_Encode10MB, starcoder, "starcoder")
    ->Unit(benchmark::kMillisecond)
    ->Iterations(2);
BENCHMARK_CAPTURE(BM_Encode10MB, deepseek_coder, "deepseek-coder")
    ->Unit(benchmark::kMillisecond)
    ->Iterations(2);
BENCHMARK_CAPTURE(BM_Encode10MB, llama_spm, "llama-spm")
    ->Unit(benchmark::kMillisecond)
    ->Iterations(2);
BENCHMARK_CAPTURE(BM_Encode10MB, phi3, "phi-3")->Unit(benchmark::kMillisecond)->Iterations(2);
BENCHMARK_CAPTURE(BM_Encode10MBOneChar, gpt2_a, "gpt-2", 'a')
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1);
BENCHMARK_CAPTURE(BM_Encode10MBOneChar, gpt2_space, "gpt-2", ' ')
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1);
BENCHMARK_CAPTURE(BM_Encode10MBOneChar, llama_spm_a, "llama-spm", 'a')
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1);
BENCHMARK_CAPTURE(BM_Encode10MBOneChar, llama_spm_space, "llama-spm", ' ')
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1);

}  // namespace
}  // namespace specula

BENCHMARK_MAIN();

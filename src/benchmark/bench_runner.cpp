#include "benchmark/bench_runner.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <string>

#include "benchmark/bench_bandwidth.h"
#include "benchmark/bench_decode_modes.h"
#include "benchmark/bench_drafter_set.h"
#include "core/error.h"
#include "drafters/model_drafter.h"
#include "sampling/sampling.h"
#include "speculative/generator.h"

namespace specula {
namespace {

using Clock = std::chrono::steady_clock;

// A timing sample shorter than this is the mean of several calls, so that
// a tiny model's microsecond forwards are not lost in clock and scheduler
// noise. Large models take one call per sample.
constexpr double kMinSampleSeconds = 0.005;
constexpr int32_t kMaxCallsPerSample = 1000;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Seconds per call of `call`: the mean over as many calls as fit in
// kMinSampleSeconds (at least one, at most kMaxCallsPerSample). Deciding the
// count as it goes, rather than from a warm-up, keeps a sample short even
// when the machine slows down mid-run.
template <typename Call>
double sample_seconds(Call&& call) {
  const Clock::time_point start = Clock::now();
  int32_t calls = 0;
  double elapsed = 0;
  do {
    call();
    ++calls;
    elapsed = seconds_since(start);
  } while (elapsed < kMinSampleSeconds && calls < kMaxCallsPerSample);
  return elapsed / calls;
}

double percentile(const std::vector<double>& sorted, double fraction) {
  const double index = fraction * static_cast<double>(sorted.size() - 1);
  const size_t below = static_cast<size_t>(std::floor(index));
  const size_t above = std::min(below + 1, sorted.size() - 1);
  const double weight = index - static_cast<double>(below);
  return sorted[below] * (1 - weight) + sorted[above] * weight;
}

std::vector<int32_t> bench_prompt(const BenchOptions& options, int32_t n_vocab) {
  if (!options.prompt.empty()) {
    for (int32_t id : options.prompt) {
      if (id < 0 || id >= n_vocab) {
        fail("prompt token id ", id, " is outside the target's vocabulary (0..", n_vocab - 1, ")");
      }
    }
    return options.prompt;
  }
  // Pseudo-random ids: reproducible, and no tokenizer needed.
  Rng rng(options.seed);
  std::vector<int32_t> prompt(static_cast<size_t>(options.prompt_tokens));
  for (int32_t& id : prompt) id = static_cast<int32_t>(rng.next_u64() % n_vocab);
  return prompt;
}

// Rows for tokens[0..n) at positions first.. of sequence 0.
void fill_rows(std::span<const int32_t> tokens, int32_t first, int32_t n, bool all_logits,
               std::vector<BatchRow>& rows) {
  rows.clear();
  for (int32_t i = 0; i < n; ++i) {
    const int32_t token = tokens[static_cast<size_t>(i) % tokens.size()];
    rows.push_back({0, first + i, token, all_logits || i + 1 == n});
  }
}

class BenchRun {
 public:
  BenchRun(const Model& target, const Model* draft, ThreadPool& pool, const BenchOptions& options,
           const BenchProgress& progress)
      : target_(target), draft_(draft), pool_(pool), options_(options), progress_(progress) {
    prompt_ = bench_prompt(options, target.config().n_vocab);
    report_.threads = pool.n_threads();
    report_.prompt_tokens = static_cast<int32_t>(prompt_.size());
    report_.gen_tokens = options.gen_tokens;
    report_.repeats = options.repeats;
    report_.target_weight_bytes = target.weight_bytes();
    report_.draft_weight_bytes = draft ? draft->weight_bytes() : 0;
    report_.memory.target_file_bytes = target.file().file_size();
    report_.memory.draft_file_bytes = draft ? draft->file().file_size() : 0;
  }

  BenchReport run() {
    measure_prefill();
    measure_verify_curve();
    if (draft_) measure_draft_forward();
    measure_decode();
    report_.memory.peak_resident_bytes = peak_resident_bytes();
    measure_bandwidth();
    derive();
    return std::move(report_);
  }

 private:
  void say(const std::string& line) {
    if (progress_) progress_(line);
  }
  std::string repeat_label(int32_t r) const {
    return std::to_string(r + 1) + "/" + std::to_string(options_.repeats);
  }

  // One forward of all P prompt rows into an empty cache (logits for the
  // last row only, as a prompt needs).
  void measure_prefill() {
    const int32_t n = static_cast<int32_t>(prompt_.size());
    KvCache cache = target_.make_cache(n, 1);
    fill_rows(prompt_, 0, n, false, rows_);
    auto call = [&] {
      cache.clear();
      target_.forward(rows_, cache, logits_, &pool_);
    };
    say("prefill: " + std::to_string(n) + " tokens, warming up");
    call();  // maps the weights' pages
    std::vector<double> tokens_per_second;
    for (int32_t r = 0; r < options_.repeats; ++r) {
      say("prefill: repeat " + repeat_label(r));
      tokens_per_second.push_back(n / sample_seconds(call));
    }
    report_.prefill_tokens_per_second = summarize(tokens_per_second);
  }

  // t(n): n rows (logits for each, as in verification) appended to a cache
  // holding the prompt, then truncated back. Repeats alternate the order of
  // n (up, then down) so that a drift in machine speed does not tilt the
  // curve.
  void measure_verify_curve() {
    const int32_t context = static_cast<int32_t>(prompt_.size());
    const int32_t max_n = options_.max_verify;
    report_.verify_context = context;
    KvCache cache = target_.make_cache(context + max_n, 1);
    fill_rows(prompt_, 0, context, false, rows_);
    target_.forward(rows_, cache, logits_, &pool_);

    auto forward_n = [&](int32_t n) {
      fill_rows(prompt_, context, n, true, rows_);
      target_.forward(rows_, cache, logits_, &pool_);
      cache.truncate(0, context);
    };
    say("verify curve: n = 1.." + std::to_string(max_n) + ", warming up");
    forward_n(max_n);
    std::vector<std::vector<double>> seconds(static_cast<size_t>(max_n));
    for (int32_t r = 0; r < options_.repeats; ++r) {
      say("verify curve: repeat " + repeat_label(r));
      for (int32_t i = 0; i < max_n; ++i) {
        const int32_t n = r % 2 == 0 ? i + 1 : max_n - i;
        seconds[static_cast<size_t>(n - 1)].push_back(sample_seconds([&] { forward_n(n); }));
      }
    }
    for (int32_t n = 1; n <= max_n; ++n) {
      VerifyPoint point;
      point.rows = n;
      point.seconds = summarize(seconds[static_cast<size_t>(n - 1)]);
      report_.verify.push_back(std::move(point));
    }
    const std::vector<double>& t1 = seconds.front();
    for (VerifyPoint& point : report_.verify) {
      std::vector<double> ratios;
      for (size_t r = 0; r < t1.size(); ++r) {
        ratios.push_back(point.seconds.samples[r] / std::max(t1[r], 1e-12));
      }
      point.ratio = summarize(ratios);
    }
  }

  // t_draft: one draft row appended to a cache holding the prompt.
  void measure_draft_forward() {
    const int32_t context = static_cast<int32_t>(prompt_.size());
    KvCache cache = draft_->make_cache(context + 1, 1);
    fill_rows(prompt_, 0, context, false, rows_);
    draft_->forward(rows_, cache, logits_, &pool_);
    auto call = [&] {
      fill_rows(prompt_, context, 1, true, rows_);
      draft_->forward(rows_, cache, logits_, &pool_);
      cache.truncate(0, context);
    };
    say("draft forward: warming up");
    call();
    std::vector<double> seconds;
    for (int32_t r = 0; r < options_.repeats; ++r) seconds.push_back(sample_seconds(call));
    report_.draft_forward_seconds = summarize(seconds);
  }

  // Plain and speculative greedy generation of G tokens after the prompt,
  // interleaved within each repeat (plain, g1, g2, ... then the reverse
  // order on the next repeat), so that machine noise hits every mode alike
  // and each speedup compares runs made seconds apart.
  void measure_decode() {
    const int32_t n_ctx = static_cast<int32_t>(prompt_.size()) + options_.gen_tokens;
    Generator generator(target_, n_ctx, &pool_);
    DecodeModeList list(target_, draft_, pool_, options_, n_ctx);
    std::vector<DecodeMode>& modes = list.modes();
    say("decode: warming up");
    for (DecodeMode& mode : modes) mode.run(generator, prompt_, std::min(options_.gen_tokens, 4));
    for (int32_t r = 0; r < options_.repeats; ++r) {
      for (size_t i = 0; i < modes.size(); ++i) {
        DecodeMode& mode = modes[r % 2 == 0 ? i : modes.size() - 1 - i];
        say("decode: repeat " + repeat_label(r) + ", " + mode.name);
        mode.tally.add(mode.run(generator, prompt_, options_.gen_tokens));
      }
    }
    report_.decode_tokens_per_second = summarize(modes.front().tally.tokens_per_second);
    report_.memory.target_kv_bytes = generator.cache().bytes();
    list.report(report_);
  }

  void measure_bandwidth() {
    const int32_t samples = std::max(options_.repeats, 3);
    say("read bandwidth: " + std::to_string(options_.bandwidth_bytes >> 20) + " MiB buffer, " +
        std::to_string(samples) + " reads");
    report_.bandwidth_buffer_bytes = options_.bandwidth_bytes;
    const std::vector<double> gb_per_second =
        measure_read_bandwidth(options_.bandwidth_bytes, samples, pool_);
    report_.read_bandwidth_gb_per_second = summarize(gb_per_second);
  }

  // Figures computed from the medians above.
  void derive() {
    const double bandwidth = report_.read_bandwidth_gb_per_second.median * 1e9;  // bytes/s
    const double weight_bytes = static_cast<double>(report_.target_weight_bytes);
    if (bandwidth > 0 && weight_bytes > 0) {
      report_.bandwidth_limit_tokens_per_second = bandwidth / weight_bytes;
      report_.decode_bandwidth_fraction =
          weight_bytes * report_.decode_tokens_per_second.median / bandwidth;
    }
    const double t1 = report_.verify.front().seconds.median;
    const double t_draft = report_.draft_forward_seconds.median;
    for (SpeculativePoint& point : report_.speculative) {
      const int32_t n = point.draft_max + 1;
      if (n > static_cast<int32_t>(report_.verify.size())) continue;
      const double step = point.draft_max * t_draft + report_.verify[n - 1].seconds.median;
      if (step > 0) point.predicted_speedup = point.tokens_per_pass * t1 / step;
    }
  }

  const Model& target_;
  const Model* draft_;
  ThreadPool& pool_;
  const BenchOptions& options_;
  const BenchProgress& progress_;
  std::vector<int32_t> prompt_;
  std::vector<BatchRow> rows_;
  std::vector<float> logits_;
  BenchReport report_;
};

}  // namespace

Spread summarize(std::span<const double> samples) {
  if (samples.empty()) fail("summarize: no samples");
  Spread spread;
  spread.samples.assign(samples.begin(), samples.end());
  std::vector<double> sorted = spread.samples;
  std::sort(sorted.begin(), sorted.end());
  spread.min = sorted.front();
  spread.max = sorted.back();
  spread.median = percentile(sorted, 0.5);
  spread.q1 = percentile(sorted, 0.25);
  spread.q3 = percentile(sorted, 0.75);
  return spread;
}

void check_bench_options(const BenchOptions& options) {
  if (options.repeats < 1 || options.repeats > 1000) {
    fail("BenchOptions::repeats is ", options.repeats,
         ": use 1..1000 (5 or more gives a useful spread)");
  }
  if (options.prompt.empty() && (options.prompt_tokens < 1 || options.prompt_tokens > 65536)) {
    fail("BenchOptions::prompt_tokens is ", options.prompt_tokens, ": use 1..65536");
  }
  if (options.gen_tokens < 1 || options.gen_tokens > 65536) {
    fail("BenchOptions::gen_tokens is ", options.gen_tokens, ": use 1..65536");
  }
  if (options.max_verify < 1 || options.max_verify > 256) {
    fail("BenchOptions::max_verify is ", options.max_verify, ": use 1..256 rows");
  }
  if (options.draft_max_list.empty()) {
    fail("BenchOptions::draft_max_list is empty: give the draft lengths to compare, e.g. 1,2,4,8");
  }
  for (int32_t g : options.draft_max_list) {
    if (g < 1 || g > 64) {
      fail("BenchOptions::draft_max_list holds ", g, ": each draft length must be 1..64 tokens");
    }
  }
  if (options.bandwidth_bytes < (uint64_t{1} << 20)) {
    fail("the bandwidth buffer is ", options.bandwidth_bytes >> 20,
         " MiB: use at least 1 MiB, and for a true memory figure several times the last-level "
         "cache");
  }
}

BenchReport run_bench(const Model& target, const Model* draft, ThreadPool& pool,
                      const BenchOptions& options, const BenchProgress& progress) {
  check_bench_options(options);
  if (draft) check_same_vocabulary(target, *draft);
  for (const std::string& set : options.drafter_sets) check_drafter_set(set, target, draft);
  return BenchRun(target, draft, pool, options, progress).run();
}

}  // namespace specula

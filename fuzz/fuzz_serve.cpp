// libFuzzer harness: the server's request bodies (src/serve/api_request.h)
// and its stop-string matcher (src/serve/api_stop.h).
//
// Input: byte 0 picks what is fuzzed, the rest is
//   0: a /v1/completions body; when it parses, the scheduler's request is
//      made from it (its checks against the context and vocabulary);
//   1: a /tokenize body;  2: a /detokenize body;
//   3: stop strings and streamed text (see fuzz_stop).
// A bad body must end in ApiError with status 400 and a message; anything
// else thrown, a crash or a sanitizer report is a finding. Checked: a made
// request has 1 <= max_tokens and prompt + max_tokens <= n_ctx, its ids are
// in the vocabulary; detokenize ids are in the vocabulary; the stop
// matcher's output is the text up to a stop string (or all of it).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "serve/api_error.h"
#include "serve/api_request.h"
#include "serve/api_stop.h"

namespace {

using specula::ApiError;

constexpr int32_t kVocab = 300;
constexpr int32_t kContext = 64;

[[noreturn]] void violated(const char* what) {
  std::fprintf(stderr, "fuzz_serve: %s\n", what);
  std::abort();
}

void check_api_error(const ApiError& e) {
  if (e.status != 400) violated("a bad body gave a status other than 400");
  if (std::string_view(e.what()).empty()) violated("an ApiError without a message");
}

void fuzz_completion(std::string_view body) {
  specula::CompletionParams params;
  try {
    params = specula::parse_completion_body(body);
  } catch (const ApiError& e) {
    check_api_error(e);
    return;
  }
  // The prompt's tokens: its ids, or a few stand-ins for tokenized text.
  std::vector<int32_t> tokens = params.prompt_is_text
                                    ? std::vector<int32_t>(params.prompt_text.size() % 80, 7)
                                    : params.prompt_ids;
  try {
    const specula::CompletionRequest request =
        specula::make_completion_request(params, tokens, kContext, kVocab, 42);
    if (request.prompt.empty()) violated("a request with an empty prompt");
    if (request.max_tokens < 1) violated("a request with max_tokens < 1");
    if (request.prompt.size() + static_cast<size_t>(request.max_tokens) >
        static_cast<size_t>(kContext)) {
      violated("a request longer than the context");
    }
    for (int32_t id : request.prompt) {
      if (id < 0 || id >= kVocab) violated("a request with an id outside the vocabulary");
    }
  } catch (const ApiError& e) {
    check_api_error(e);
  }
}

void fuzz_tokenize(std::string_view body) {
  try {
    (void)specula::parse_tokenize_body(body);
  } catch (const ApiError& e) {
    check_api_error(e);
  }
}

void fuzz_detokenize(std::string_view body) {
  try {
    for (int32_t id : specula::parse_detokenize_body(body, kVocab)) {
      if (id < 0 || id >= kVocab) violated("detokenize accepted an id outside the vocabulary");
    }
  } catch (const ApiError& e) {
    check_api_error(e);
  }
}

// Up to 4 stop strings separated by '\1', then '\2', then the text in
// chunks separated by '\3'. Whatever the chunks, the output is the text
// before the first stop string that completes (which then follows it), or
// the whole text when none occurs.
void fuzz_stop(std::string_view input) {
  const size_t split = input.find('\2');
  if (split == std::string_view::npos) return;
  std::vector<std::string> stops;
  std::string_view list = input.substr(0, split);
  while (stops.size() < 4) {
    const size_t end = list.find('\1');
    const std::string_view s = list.substr(0, end);
    if (!s.empty()) stops.emplace_back(s);
    if (end == std::string_view::npos) break;
    list.remove_prefix(end + 1);
  }
  specula::StopMatcher matcher(stops);
  std::string text, out;
  std::string_view rest = input.substr(split + 1);
  while (!matcher.stopped()) {
    const size_t end = rest.find('\3');
    const std::string chunk(rest.substr(0, end));
    text += chunk;
    out += matcher.push(chunk);
    if (end == std::string_view::npos) break;
    rest.remove_prefix(end + 1);
  }
  out += matcher.flush();
  if (text.compare(0, out.size(), out) != 0)
    violated("stop matcher output is not a prefix of the text");
  if (matcher.stopped()) {
    bool found = false;
    for (const std::string& s : stops) {
      found = found || text.compare(out.size(), s.size(), s) == 0;
    }
    if (!found) violated("stop matcher stopped where no stop string follows its output");
  } else {
    if (out != text) violated("stop matcher lost text without a stop string");
    for (const std::string& s : stops) {
      if (text.find(s) != std::string::npos) violated("stop matcher missed a stop string");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0:
      fuzz_completion(rest);
      break;
    case 1:
      fuzz_tokenize(rest);
      break;
    case 2:
      fuzz_detokenize(rest);
      break;
    default:
      fuzz_stop(rest);
      break;
  }
  return 0;
}

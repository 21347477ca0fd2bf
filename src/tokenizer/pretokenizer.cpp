#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/pretokenizer.h"

#include <pcre2.h>

#include <algorithm>

#include "core/error.h"
#include "tokenizer/utf8.h"

namespace specula {
namespace {

// The regex lists, as llama.cpp's llama-vocab.cpp uses them for each
// tokenizer.ggml.pre value (they reproduce the Hugging Face tokenizer.json
// pre-tokenizers; case-insensitive contractions are spelled out).
constexpr const char* kGpt2 =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";
constexpr const char* kLlama3 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen2 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// CJK ranges used by the DeepSeek pre-tokenizers.
constexpr const char* kDeepseekCjk = "[一-龥ࠀ-一가-퟿]+";

struct PreSpec {
  std::vector<std::string_view> names;
  std::vector<const char*> regexes;
};

const std::vector<PreSpec>& pre_specs() {
  static const std::vector<PreSpec> specs = {
      {{"default"}, {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2, R"(\p{N}+)", "[0-9][0-9][0-9]"}},
      {{"gpt-2", "gpt2", "gpt-neox", "mpt", "olmo", "phi-2", "jais", "roberta-bpe"}, {kGpt2}},
      {{"llama3", "llama-v3", "llama-bpe", "falcon3", "dbrx", "smaug-bpe"}, {kLlama3}},
      {{"qwen2", "stablelm2"}, {kQwen2}},
      {{"deepseek-llm"},
       {"[\r\n]",
        "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-"
        "ᲺᲽ-"
        "Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-"
        "Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-"
        "ꝯꝱ-"
        "ꞇꞋ-"
        "ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-"
        "𞥃]"
        "+",
        "\\s?[!-/:-~！-／：-～‘-‟　-。]+", "\\s+$", kDeepseekCjk, R"(\p{N}+)"}},
      {{"deepseek-coder"}, {"[\r\n]", R"(\s?\p{L}+)", R"(\s?\p{P}+)", kDeepseekCjk, R"(\p{N})"}},
      {{"falcon"}, {R"([\p{P}\$\+<=>\^~\|`]+)", kGpt2, "[0-9][0-9][0-9]"}},
      {{"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone"}, {R"(\p{N})", kGpt2}},
  };
  return specs;
}

}  // namespace

struct PreTokenizer::Regex {
  pcre2_code* code = nullptr;
  ~Regex() { pcre2_code_free(code); }
};

PreTokenizer::~PreTokenizer() = default;

std::vector<std::string> PreTokenizer::supported_names() {
  std::vector<std::string> names;
  for (const PreSpec& spec : pre_specs()) {
    for (std::string_view name : spec.names) names.emplace_back(name);
  }
  return names;
}

std::unique_ptr<PreTokenizer> PreTokenizer::for_name(std::string_view name) {
  const PreSpec* found = nullptr;
  for (const PreSpec& spec : pre_specs()) {
    if (std::find(spec.names.begin(), spec.names.end(), name) != spec.names.end()) found = &spec;
  }
  if (found == nullptr) {
    std::string list;
    for (const std::string& n : supported_names()) list += (list.empty() ? "" : ", ") + n;
    fail("unsupported pre-tokenizer tokenizer.ggml.pre = \"", name, "\"; supported: ", list);
  }
  std::unique_ptr<PreTokenizer> pre(new PreTokenizer());
  pre->name_ = std::string(name);
  for (const char* pattern : found->regexes) {
    int error_code = 0;
    PCRE2_SIZE error_offset = 0;
    auto regex = std::make_unique<Regex>();
    regex->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern), PCRE2_ZERO_TERMINATED,
                                PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &error_code,
                                &error_offset, nullptr);
    if (regex->code == nullptr) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error_code, message, sizeof(message));
      fail("pre-tokenizer \"", name, "\": regex does not compile at offset ", error_offset, ": ",
           reinterpret_cast<const char*>(message));
    }
    // JIT makes matching several times faster; without it (an unsupported
    // CPU) the interpreter gives the same matches.
    pcre2_jit_compile(regex->code, PCRE2_JIT_COMPLETE);
    pre->regexes_.push_back(std::move(regex));
  }
  return pre;
}

namespace {

// Per-call PCRE2 state (match data is not shareable between threads).
struct MatchState {
  pcre2_match_data* data = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* jit_stack = nullptr;
  MatchState() {
    data = pcre2_match_data_create(4, nullptr);
    context = pcre2_match_context_create(nullptr);
    jit_stack = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, nullptr);
    if (data == nullptr || context == nullptr || jit_stack == nullptr) throw std::bad_alloc();
    pcre2_jit_stack_assign(context, nullptr, jit_stack);
  }
  ~MatchState() {
    pcre2_jit_stack_free(jit_stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
  MatchState(const MatchState&) = delete;
  MatchState& operator=(const MatchState&) = delete;
};

}  // namespace

std::vector<TextSpan> PreTokenizer::split(std::string_view text) const {
  std::vector<TextSpan> pieces;
  if (text.empty()) return pieces;
  pieces.push_back({0, text.size()});
  MatchState state;
  std::vector<TextSpan> next;
  for (const std::unique_ptr<Regex>& regex : regexes_) {
    next.clear();
    next.reserve(pieces.size() * 2);
    for (const TextSpan& piece : pieces) {
      const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data() + piece.begin);
      const std::string_view piece_text = text.substr(piece.begin, piece.size);
      size_t offset = 0;
      size_t last_end = 0;
      while (offset < piece.size) {
        const int rc =
            pcre2_match(regex->code, subject, piece.size, offset, 0, state.data, state.context);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
          PCRE2_UCHAR message[256];
          pcre2_get_error_message(rc, message, sizeof(message));
          fail("pre-tokenizer \"", name_, "\" failed on a piece of ", piece.size,
               " bytes: ", reinterpret_cast<const char*>(message));
        }
        const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(state.data);
        const size_t start = ovector[0];
        const size_t end = ovector[1];
        if (end <= start) {  // an empty match: step over one character
          if (start >= piece.size) break;
          offset = start + utf8::symbol_length(piece_text, start);
          continue;
        }
        if (start > last_end) next.push_back({piece.begin + last_end, start - last_end});
        next.push_back({piece.begin + start, end - start});
        last_end = end;
        offset = end;
      }
      if (last_end < piece.size) next.push_back({piece.begin + last_end, piece.size - last_end});
    }
    pieces.swap(next);
  }
  return pieces;
}

}  // namespace specula

// libFuzzer harness: text -> ids -> text on every tokenizer type, with the
// real vocabularies of tests/data/vocab (SPM: llama-spm, phi-3; byte-level
// BPE: gpt-2, starcoder, deepseek-coder) and make-model's byte-level one.
//
// Input: byte 0 picks the vocabulary, byte 1 the mode and flags, the rest is
// the text (or, in id mode, little-endian int32 ids). Checked invariants:
// ids are inside the vocabulary; the streaming decoder yields valid UTF-8,
// sanitize(decode(ids)) when the ids start with BOS and sanitize(the pieces
// one after another) otherwise (a continuation keeps its spaces);
// decode(encode(text)) == text where the tokenizer promises it (without
// parse_special; SPM without U+2581 and without special tokens in the ids,
// StarCoder without the bytes it has no token for); out-of-range ids throw
// specula::Error.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "gguf/gguf_reader.h"
#include "model/make_model.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

#ifndef SPECULA_VOCAB_DIR
#define SPECULA_VOCAB_DIR "tests/data/vocab"
#endif

namespace {

using specula::Error;
using specula::Tokenizer;

struct Vocab {
  std::string name;
  std::shared_ptr<const specula::GgufReader> file;
  std::unique_ptr<Tokenizer> tokenizer;
};

std::vector<Vocab> load_vocabs() {
  const char* dir = std::getenv("SPECULA_VOCAB_DIR");
  const std::string base = dir != nullptr ? dir : SPECULA_VOCAB_DIR;
  std::vector<Vocab> vocabs;
  for (const char* name : {"llama-spm", "phi-3", "gpt-2", "starcoder", "deepseek-coder"}) {
    Vocab v;
    v.name = name;
    v.file = specula::GgufReader::open(base + "/ggml-vocab-" + name + ".gguf");
    v.tokenizer = Tokenizer::from_gguf(*v.file);
    vocabs.push_back(std::move(v));
  }
  // make-model's byte-level vocabulary with a few user-defined tokens.
  specula::RandomModelOptions options;
  options.n_vocab = 264;
  options.n_embd = 8;
  options.n_layer = 1;
  options.n_head = 2;
  const std::vector<uint8_t> bytes =
      specula::build_random_model(specula::resolve_random_model_options(options)).to_bytes();
  Vocab v;
  v.name = "byte-level";
  v.file = specula::GgufReader::from_memory("byte-level.gguf", bytes);
  v.tokenizer = Tokenizer::from_gguf(*v.file);
  vocabs.push_back(std::move(v));
  return vocabs;
}

const std::vector<Vocab>& vocabs() {
  static const std::vector<Vocab> all = [] {
    try {
      return load_vocabs();
    } catch (const Error& e) {
      std::fprintf(stderr, "fuzz_tokenizer: %s (set SPECULA_VOCAB_DIR to tests/data/vocab)\n",
                   e.what());
      std::abort();
    }
  }();
  return all;
}

[[noreturn]] void violated(const Vocab& v, const char* what, std::string_view text) {
  std::fprintf(stderr, "fuzz_tokenizer: %s: %s (input of %zu bytes)\n", v.name.c_str(), what,
               text.size());
  std::abort();
}

std::string streamed(const Tokenizer& tokenizer, std::span<const int32_t> ids, const Vocab& v) {
  specula::StreamingDecoder decoder(tokenizer);
  std::string out;
  for (int32_t id : ids) {
    const std::string part = decoder.push(id);
    if (!specula::utf8::is_valid(part)) violated(v, "streamed piece is not valid UTF-8", out);
    out += part;
  }
  out += decoder.flush();
  return out;
}

// What StreamingDecoder must yield for `ids` (tokenizer.h): a whole text
// when they start with BOS, else a continuation that keeps every space.
std::string expected_stream(const Tokenizer& t, std::span<const int32_t> ids,
                            const std::string& decoded) {
  if (!ids.empty() && t.bos() >= 0 && ids[0] == t.bos()) return specula::utf8::sanitize(decoded);
  std::string pieces;
  for (int32_t id : ids) pieces += t.token_to_piece(id);
  return specula::utf8::sanitize(pieces);
}

// Whether decode(encode(text)) must give text back (see the header comment).
bool promises_round_trip(const Vocab& v, std::string_view text) {
  const Tokenizer& t = *v.tokenizer;
  if (t.add_space_prefix() && text.find("\xE2\x96\x81") != std::string_view::npos) return false;
  if (v.name == "starcoder") {
    for (unsigned char c : text) {
      if (c == 0xC0 || c == 0xC1 || c == 0xF1 || c >= 0xF5) return false;
    }
  }
  return true;
}

void fuzz_text(const Vocab& v, std::string_view text, bool add_special, bool parse_special) {
  const Tokenizer& t = *v.tokenizer;
  const std::vector<int32_t> ids = t.encode(text, add_special, parse_special);
  for (int32_t id : ids) {
    if (id < 0 || id >= t.n_vocab()) violated(v, "encode gave an id outside the vocabulary", text);
  }
  const std::string decoded = t.decode(ids);
  if (streamed(t, ids, v) != expected_stream(t, ids, decoded)) {
    violated(v, "streaming decode differs from what decode and the pieces give", text);
  }
  // SPM puts a space in front of text that follows a special token, as
  // llama.cpp does (phi-3 matches its user-defined tokens, "</s>" among
  // them, even without parse_special): no round trip then.
  bool has_special = false;
  for (int32_t id : ids) has_special = has_special || t.is_special(id);
  if (!parse_special && !(has_special && t.add_space_prefix()) && promises_round_trip(v, text) &&
      decoded != text) {
    violated(v, "decode(encode(text)) != text", text);
  }
}

void fuzz_ids(const Vocab& v, std::span<const uint8_t> bytes) {
  const Tokenizer& t = *v.tokenizer;
  std::vector<int32_t> ids;
  bool out_of_range = false;
  for (size_t i = 0; i + 4 <= bytes.size(); i += 4) {
    int32_t id;
    std::memcpy(&id, bytes.data() + i, 4);
    // Mostly ids inside the vocabulary, sometimes anything.
    if ((bytes[i + 3] & 0x80) == 0)
      id = static_cast<int32_t>(static_cast<uint32_t>(id) % static_cast<uint32_t>(t.n_vocab()));
    out_of_range = out_of_range || id < 0 || id >= t.n_vocab();
    ids.push_back(id);
  }
  const std::string_view as_text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  try {
    const std::string decoded = t.decode(ids);
    if (out_of_range) violated(v, "decode accepted an id outside the vocabulary", as_text);
    if (streamed(t, ids, v) != expected_stream(t, ids, decoded)) {
      violated(v, "streaming decode of ids differs from what decode and the pieces give", as_text);
    }
    for (int32_t id : ids) {
      (void)t.token_text(id);
      (void)t.is_special(id);
      (void)t.is_end_of_generation(id);
    }
  } catch (const Error&) {
    if (!out_of_range) violated(v, "decode refused ids inside the vocabulary", as_text);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)vocabs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const std::vector<Vocab>& all = vocabs();
  const Vocab& v = all[data[0] % all.size()];
  const uint8_t flags = data[1];
  const std::span<const uint8_t> rest(data + 2, size - 2);
  if ((flags & 0x80) != 0) {
    fuzz_ids(v, rest);
  } else {
    const std::string_view text(reinterpret_cast<const char*>(rest.data()), rest.size());
    fuzz_text(v, text, (flags & 1) != 0, (flags & 2) != 0);
  }
  return 0;
}

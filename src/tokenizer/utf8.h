// UTF-8 helpers shared by the tokenizers: character boundaries that tolerate
// invalid input, the GPT-2 byte <-> character map, and the "complete prefix"
// rule the streaming decoder uses so that it never emits half a character.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace specula::utf8 {

// Length of the well-formed UTF-8 character starting at text[pos], or 0 when
// the bytes there are not one (a stray continuation byte, an overlong or
// surrogate form, a truncated sequence).
size_t valid_char_length(std::string_view text, size_t pos);

// Length of the "character" at text[pos] for splitting text into symbols:
// a well-formed character, else exactly one byte, so every byte of invalid
// input still lands in exactly one symbol.
inline size_t symbol_length(std::string_view text, size_t pos) {
  const size_t n = valid_char_length(text, pos);
  return n == 0 ? 1 : n;
}

void append_codepoint(std::string& out, uint32_t codepoint);

// Length of the longest prefix of `bytes` after which no later bytes can
// change how the prefix reads: everything except a trailing sequence that is
// still a valid beginning of a character (e.g. "\xE2\x82" awaiting its last
// byte).
size_t stable_prefix_length(std::string_view bytes);

// `bytes` with each maximal ill-formed subsequence replaced by U+FFFD (the
// Unicode "maximal subpart" practice), so the result is valid UTF-8.
std::string sanitize(std::string_view bytes);

bool is_valid(std::string_view bytes);

// GPT-2's byte-level map: each byte value as one printable character
// (printable Latin-1 bytes map to themselves, the others to U+0100 + n).
// byte_to_char()[b] is that character's UTF-8 text.
const std::array<std::string, 256>& byte_to_char();
// The inverse: the byte for a code point, or -1 when it is not in the map.
int char_to_byte(uint32_t codepoint);

// Decodes the code point of the valid character at text[pos] (length `n`
// from valid_char_length).
uint32_t decode_codepoint(std::string_view text, size_t pos, size_t n);

}  // namespace specula::utf8

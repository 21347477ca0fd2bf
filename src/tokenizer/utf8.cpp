#include "tokenizer/utf8.h"

namespace specula::utf8 {

size_t valid_char_length(std::string_view text, size_t pos) {
  const size_t left = text.size() - pos;
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(text[pos + i]); };
  const uint8_t lead = byte(0);
  if (lead < 0x80) return 1;
  const auto cont = [&](size_t i) { return i < left && (byte(i) & 0xC0) == 0x80; };
  if (lead >= 0xC2 && lead <= 0xDF) return cont(1) ? 2 : 0;
  if (lead >= 0xE0 && lead <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if (lead == 0xE0 && byte(1) < 0xA0) return 0;  // overlong
    if (lead == 0xED && byte(1) > 0x9F) return 0;  // surrogate
    return 3;
  }
  if (lead >= 0xF0 && lead <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (lead == 0xF0 && byte(1) < 0x90) return 0;  // overlong
    if (lead == 0xF4 && byte(1) > 0x8F) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

void append_codepoint(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

uint32_t decode_codepoint(std::string_view text, size_t pos, size_t n) {
  const auto b = [&](size_t i) {
    return static_cast<uint32_t>(static_cast<uint8_t>(text[pos + i]));
  };
  switch (n) {
    case 1:
      return b(0);
    case 2:
      return ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
    case 3:
      return ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
    default:
      return ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
  }
}

namespace {

// Bytes of a multi-byte character with this lead byte (2..4), or 0 when
// the byte is ASCII or leads no well-formed character.
size_t multibyte_length(uint8_t lead) {
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;
}

// Whether `c` may stand at `index` (1..3) of a character led by `lead`
// (Unicode Table 3-7: the second byte's range excludes overlong forms,
// surrogates and code points above U+10FFFF).
bool continuation_fits(uint8_t lead, size_t index, uint8_t c) {
  uint8_t lo = 0x80, hi = 0xBF;
  if (index == 1) {
    if (lead == 0xE0) lo = 0xA0;
    if (lead == 0xED) hi = 0x9F;
    if (lead == 0xF0) lo = 0x90;
    if (lead == 0xF4) hi = 0x8F;
  }
  return c >= lo && c <= hi;
}

// Length of the longest prefix of text[pos..] that could still grow into a
// well-formed character (1..3 bytes), or 0 when the bytes there are already
// ill-formed. Only meaningful when the character is truncated by the end.
size_t viable_partial_length(std::string_view text, size_t pos) {
  const uint8_t lead = static_cast<uint8_t>(text[pos]);
  const size_t need = multibyte_length(lead);
  if (need == 0) return 0;
  const size_t left = text.size() - pos;
  if (left >= need) return 0;  // not truncated: it is simply ill-formed
  for (size_t i = 1; i < left; ++i) {
    if (!continuation_fits(lead, i, static_cast<uint8_t>(text[pos + i]))) return 0;
  }
  return left;
}

// Length of the maximal ill-formed subpart at text[pos] (at least 1): the
// lead byte plus the continuation bytes that were still acceptable.
size_t ill_formed_length(std::string_view text, size_t pos) {
  const uint8_t lead = static_cast<uint8_t>(text[pos]);
  const size_t need = multibyte_length(lead);
  if (need == 0) return 1;
  size_t n = 1;
  while (n < need && pos + n < text.size() &&
         continuation_fits(lead, n, static_cast<uint8_t>(text[pos + n]))) {
    ++n;
  }
  return n;
}

}  // namespace

size_t stable_prefix_length(std::string_view bytes) {
  // Only the last (up to 3) bytes can be a viable truncated character.
  const size_t start = bytes.size() > 3 ? bytes.size() - 3 : 0;
  for (size_t pos = start; pos < bytes.size(); ++pos) {
    const uint8_t c = static_cast<uint8_t>(bytes[pos]);
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte starts nothing
    if (viable_partial_length(bytes, pos) == bytes.size() - pos) return pos;
  }
  return bytes.size();
}

std::string sanitize(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t pos = 0;
  while (pos < bytes.size()) {
    const size_t n = valid_char_length(bytes, pos);
    if (n > 0) {
      out.append(bytes.substr(pos, n));
      pos += n;
    } else {
      out += "\xEF\xBF\xBD";
      pos += ill_formed_length(bytes, pos);
    }
  }
  return out;
}

bool is_valid(std::string_view bytes) {
  for (size_t pos = 0; pos < bytes.size();) {
    const size_t n = valid_char_length(bytes, pos);
    if (n == 0) return false;
    pos += n;
  }
  return true;
}

namespace {

struct ByteMap {
  std::array<std::string, 256> to_char;
  std::array<int, 512> from_codepoint;  // every mapped code point is < 512
  ByteMap() {
    from_codepoint.fill(-1);
    uint32_t next_extra = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
      const uint32_t cp = printable ? b : next_extra++;
      append_codepoint(to_char[b], cp);
      from_codepoint[cp] = static_cast<int>(b);
    }
  }
};

const ByteMap& byte_map() {
  static const ByteMap map;
  return map;
}

}  // namespace

const std::array<std::string, 256>& byte_to_char() {
  return byte_map().to_char;
}

int char_to_byte(uint32_t codepoint) {
  return codepoint < 512 ? byte_map().from_codepoint[codepoint] : -1;
}

}  // namespace specula::utf8

#include "serve/http_auth.h"

#include <cstddef>

namespace specula {

bool constant_time_equal(std::string_view a, std::string_view b) {
  // Walk the whole of `a` (the client's guess) whatever b's length, so the
  // time depends only on what the client sent.
  unsigned char difference = a.size() == b.size() ? 0 : 1;
  const size_t nb = b.size();
  for (size_t i = 0; i < a.size(); ++i) {
    const unsigned char expected = nb > 0 ? static_cast<unsigned char>(b[i % nb]) : 0;
    difference |= static_cast<unsigned char>(static_cast<unsigned char>(a[i]) ^ expected);
  }
  // Read it through a volatile so the compiler cannot end the loop early.
  volatile unsigned char result = difference;
  return result == 0;
}

bool bearer_authorized(std::string_view authorization, std::string_view api_key) {
  if (api_key.empty()) return true;
  constexpr std::string_view kScheme = "Bearer ";
  if (authorization.size() < kScheme.size()) return false;
  // The scheme is case-insensitive (RFC 9110); it is no secret.
  for (size_t i = 0; i < kScheme.size(); ++i) {
    char c = authorization[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    char s = kScheme[i];
    if (s >= 'A' && s <= 'Z') s = static_cast<char>(s - 'A' + 'a');
    if (c != s) return false;
  }
  std::string_view key = authorization.substr(kScheme.size());
  while (!key.empty() && key.front() == ' ') key.remove_prefix(1);
  while (!key.empty() && key.back() == ' ') key.remove_suffix(1);
  return constant_time_equal(key, api_key);
}

}  // namespace specula

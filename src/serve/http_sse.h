// Server-sent events as OpenAI streams them: each chunk one `data:` event,
// then `data: [DONE]`. A comment event keeps a quiet stream alive and
// finds a client that went away (a write to a closed connection fails).
#pragma once

#include <string>
#include <string_view>

namespace specula {

inline std::string sse_event(std::string_view json_text) {
  std::string event;
  event.reserve(json_text.size() + 8);
  event += "data: ";
  event += json_text;
  event += "\n\n";
  return event;
}

inline constexpr std::string_view kSseDone = "data: [DONE]\n\n";
// Lines starting with ':' are comments, which SSE clients ignore.
inline constexpr std::string_view kSseKeepAlive = ": keep-alive\n\n";

}  // namespace specula

// --api-key: requests carry "Authorization: Bearer <key>". The key is
// compared in constant time (no early exit on the first differing byte,
// and the length is not leaked through timing either), so its bytes cannot
// be guessed one at a time from response times.
#pragma once

#include <string_view>

namespace specula {

bool constant_time_equal(std::string_view a, std::string_view b);

// True when `authorization` (the header's value) is "Bearer <api_key>".
// An empty api_key lets every request in.
bool bearer_authorized(std::string_view authorization, std::string_view api_key);

}  // namespace specula

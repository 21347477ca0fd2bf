// Names read from files (metadata keys, tensor names) as they may be shown
// on a terminal: a hostile file must not be able to move the cursor, clear
// the screen or hide text in a message.
#pragma once

#include <string>
#include <string_view>

namespace specula {

// `text` with control characters (bytes below 0x20, and 0x7f) written as
// \n, \r, \t or \xNN, and backslash as \\; everything else, UTF-8 included,
// as is.
std::string printable(std::string_view text);

}  // namespace specula

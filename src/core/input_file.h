// Reading a file the user named (a corpus, a prompt file, text to
// tokenize): a folder, a device or a missing file is one clear message
// naming the path and the flag, never a stream library's internal error.
#pragma once

#include <string>
#include <string_view>

namespace specula {

// Throws Error unless `path` can be opened for reading as a regular file
// (a symlink counts as what it points to; a FIFO such as /dev/stdin is
// accepted too). `what` names the file in the message, e.g. "--input" or
// "the prompt file".
void check_input_file(const std::string& path, std::string_view what);

// The whole file, after check_input_file. Throws Error naming `what` and
// the path when reading fails part way.
std::string read_input_file(const std::string& path, std::string_view what);

}  // namespace specula

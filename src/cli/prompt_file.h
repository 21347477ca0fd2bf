// `--prompt-file FILE`: several prompts for one process, so that what the
// engine learns on one request (the policy's estimates, the bandit, the
// suffix cache, an online-distilled draft) serves the next, as in a server.
#pragma once

#include <string>
#include <vector>

namespace specula::cli {

// Splits `text` into prompts at lines that hold exactly `separator`
// (a trailing '\r' is ignored, so CRLF files work). The newline before a
// separator line belongs to neither prompt; prompts that are empty or only
// whitespace are skipped. Throws Error for an empty separator or when no
// prompt remains.
std::vector<std::string> split_prompts(const std::string& text, const std::string& separator,
                                       const std::string& where);

// Reads `path` ("-": standard input) and splits it as above. Throws Error
// naming the path when it cannot be read.
std::vector<std::string> read_prompt_file(const std::string& path, const std::string& separator);

}  // namespace specula::cli

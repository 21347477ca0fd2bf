// One list written on one line, such as a flag's "1,2,4" or "model;lookup",
// cut into its items. Every command and option that takes such a list
// splits it here, so all of them treat spaces and typos alike.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace specula {

// Cuts `text` at each `separator` and drops the spaces and tabs around each
// item: split_list(" 1, 2,4,", "--ids") is {"1", "2", "4"}; one separator at
// the end is allowed, as lists written by programs often have one. An
// empty item inside ("1,,2") or no item at all is almost always a typo,
// so it throws Error naming `what` (the flag or field being parsed), the
// text and the empty item's position.
std::vector<std::string> split_list(std::string_view text, std::string_view what,
                                    char separator = ',');

// split_list, then each item as a decimal int32: split_int_list("1, 15,42",
// "--prompt-ids") is {1, 15, 42}. Throws Error naming `what` and the item
// that is not an integer or does not fit in 32 bits.
std::vector<int32_t> split_int_list(std::string_view text, std::string_view what,
                                    char separator = ',');

}  // namespace specula

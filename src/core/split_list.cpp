#include "core/split_list.h"

#include <charconv>

#include "core/error.h"

namespace specula {
namespace {

std::string_view trim_blanks(std::string_view item) {
  const size_t begin = item.find_first_not_of(" \t");
  if (begin == std::string_view::npos) return {};
  const size_t end = item.find_last_not_of(" \t");
  return item.substr(begin, end - begin + 1);
}

}  // namespace

std::vector<std::string> split_list(std::string_view text, std::string_view what, char separator) {
  std::vector<std::string> items;
  const std::string_view all = text;
  text = trim_blanks(text);
  if (!text.empty() && text.back() == separator)
    text = trim_blanks(text.substr(0, text.size() - 1));
  if (text.empty()) {
    fail(what, " \"", all, "\" holds no items: write them separated by '", separator, "', e.g. a",
         separator, "b");
  }
  size_t begin = 0;
  while (true) {
    const size_t end = text.find(separator, begin);
    const std::string_view item =
        trim_blanks(text.substr(begin, end == std::string_view::npos ? end : end - begin));
    if (item.empty()) {
      fail(what, " \"", all, "\" has an empty item (number ", items.size() + 1,
           "): write the items separated by single '", separator, "', e.g. a", separator, "b");
    }
    items.emplace_back(item);
    if (end == std::string_view::npos) return items;
    begin = end + 1;
  }
}

std::vector<int32_t> split_int_list(std::string_view text, std::string_view what, char separator) {
  std::vector<int32_t> values;
  for (const std::string& item : split_list(text, what, separator)) {
    int32_t value = 0;
    const char* end = item.data() + item.size();
    const auto [next, error] = std::from_chars(item.data(), end, value);
    if (error == std::errc::result_out_of_range) {
      fail(what, ": ", item, " does not fit in a 32-bit integer");
    }
    if (error != std::errc() || next != end) {
      fail(what, ": \"", item, "\" is not an integer; write integers separated by '", separator,
           "', e.g. 1", separator, "2", separator, "3");
    }
    values.push_back(value);
  }
  return values;
}

}  // namespace specula

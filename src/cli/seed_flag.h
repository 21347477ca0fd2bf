// --seed takes a uint64. CLI11 reads unsigned values with strtoull, which
// turns "-1" into 2^64 - 1, saturates 2^64 and reads "010" as octal, so a
// typo silently gives another seed: this validator lets through only plain
// decimal numbers that fit.
#pragma once

#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdint>
#include <string>

namespace specula::cli {

inline CLI::Validator seed_value() {
  return CLI::Validator(
      [](std::string& input) -> std::string {
        uint64_t value = 0;
        const char* end = input.data() + input.size();
        const auto [ptr, error] = std::from_chars(input.data(), end, value);
        if (input.empty() || error != std::errc() || ptr != end) {
          return "'" + input + "' is not a whole number from 0 to 18446744073709551615 (2^64 - 1)";
        }
        input = std::to_string(value);  // "007" -> "7", so strtoull cannot read octal
        return {};
      },
      "0..2^64-1");
}

}  // namespace specula::cli

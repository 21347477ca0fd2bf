// The library's errors name the API field at fault
// ("EngineConfig::online_distill.cpu_fraction is 0: ..."), since a library
// user set a field; a CLI user set a flag. A command lists which flag sets
// which field and runs its work through with_flag_names, so its messages
// name the flags ("--osd-cpu is 0: ...").
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "core/error.h"

namespace specula::cli {

struct FieldFlag {
  std::string_view field;  // "GenerateOptions::n_ctx"
  std::string_view flag;   // "--ctx"
};

// `message` with every field of `names` replaced by its flag.
inline std::string name_flags(std::string message, std::span<const FieldFlag> names) {
  for (const FieldFlag& name : names) {
    for (size_t at = message.find(name.field); at != std::string::npos;
         at = message.find(name.field, at + name.flag.size())) {
      message.replace(at, name.field.size(), name.flag);
    }
  }
  return message;
}

// Runs `work`; an Error it throws is thrown again naming flags.
template <typename Work>
void with_flag_names(std::span<const FieldFlag> names, Work&& work) {
  try {
    work();
  } catch (const Error& e) {
    throw Error(name_flags(e.what(), names));
  }
}

}  // namespace specula::cli

// --kv-type f16|f32: the element type of the KV caches, for every command
// that runs a model (generate, chat, serve, bench).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "specula/engine.h"

namespace specula::cli {

inline CLI::Option* add_kv_type_flag(CLI::App& sub, std::string& name) {
  return sub
      .add_option("--kv-type", name,
                  "KV cache element type: f16 (half the memory, as llama.cpp's default) or f32 "
                  "(keys and values exactly as computed)")
      ->check(CLI::IsMember({"f16", "f32"}))
      ->capture_default_str();
}

// The parsed --kv-type (checked by add_kv_type_flag's validator).
inline KvCacheType kv_cache_type(const std::string& name) {
  return name == "f32" ? KvCacheType::kF32 : KvCacheType::kF16;
}

}  // namespace specula::cli

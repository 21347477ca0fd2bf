// `specula quantize IN.gguf OUT.gguf TYPE`: converts a model's weight
// matrices to another type, in llama.cpp's layouts, copying all metadata.
//
// Which tensors change (as llama-quantize does): 2-D and larger tensors
// whose name ends in "weight", except normalization weights; 1-D tensors
// (norms, biases) are copied unchanged (F32). TYPE is one of
//   f32 f16 bf16 q8_0 q4_0 q4_k q5_k q6_k   every matrix gets this type
//                                           (llama-quantize --pure)
//   q4_k_m                                  llama.cpp's Q4_K_M mix:
//     Q4_K for most matrices; Q6_K for output.weight (or token_embd.weight
//     when there is no output.weight, since then it doubles as the output);
//     Q6_K for attn_v.weight and ffn_down of the layers use_more_bits picks
//     (the first and last eighth of the layers and every third in between);
//     Q5_K for a fused attn_qkv.weight.
// A matrix whose rows are not a whole number of the chosen type's blocks
// falls back (with a warning) to Q8_0 when rows are a multiple of 32, else
// F16. llama.cpp picks Q5_0 / Q5_1 for Q4_K / Q5_K there, which specula
// does not compute; its Q6_K -> Q8_0 and last-resort F16 are the same.
// general.file_type is set to llama.cpp's llama_ftype value for TYPE.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "cli/command_registry.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "gguf/gguf_reader.h"
#include "gguf/gguf_writer.h"
#include "kernels/quantize.h"

namespace specula::cli {
namespace {

struct Recipe {
  std::string name;    // as typed on the command line
  DType type;          // the type of most matrices
  bool k_mix;          // the Q4_K_M rules above
  uint32_t file_type;  // llama.cpp's llama_ftype
};

const std::vector<Recipe>& recipes() {
  static const std::vector<Recipe> list = {
      {"f32", DType::kF32, false, 0},     {"f16", DType::kF16, false, 1},
      {"bf16", DType::kBF16, false, 32},  {"q8_0", DType::kQ8_0, false, 7},
      {"q4_0", DType::kQ4_0, false, 2},   {"q4_k", DType::kQ4_K, false, 14},
      {"q5_k", DType::kQ5_K, false, 16},  {"q6_k", DType::kQ6_K, false, 18},
      {"q4_k_m", DType::kQ4_K, true, 15},
  };
  return list;
}

const Recipe& recipe_by_name(const std::string& name) {
  std::string lower = name;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string valid;
  for (const Recipe& r : recipes()) {
    if (r.name == lower) return r;
    valid += (valid.empty() ? "" : ", ") + r.name;
  }
  fail("unknown quantization type '", name, "'; valid types: ", valid);
}

bool ends_with(const std::string& s, std::string_view tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

bool is_quantizable(const GgufTensorInfo& t) {
  return t.dims.size() >= 2 && ends_with(t.name, "weight") &&
         t.name.find("_norm.weight") == std::string::npos;
}

// llama.cpp's use_more_bits: the first and last eighth of the layers and
// every third layer in between get more bits in the _M mixes.
bool use_more_bits(int i_layer, int n_layers) {
  return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 || (i_layer - n_layers / 8) % 3 == 2;
}

// Chooses each tensor's type; counts follow the file's tensor order, as
// llama.cpp's do.
class TypePlanner {
 public:
  TypePlanner(const Recipe& recipe, const GgufReader& in) : recipe_(recipe) {
    for (const GgufTensorInfo& t : in.tensors()) {
      if (t.name == "output.weight") has_output_ = true;
      if (t.name.find("attn_v.weight") != std::string::npos) ++n_attn_v_;
      if (t.name.find("ffn_down") != std::string::npos) ++n_ffn_down_;
    }
  }

  DType choose(const GgufTensorInfo& t) {
    DType type = recipe_.type;
    if (recipe_.k_mix) {
      if (t.name == "output.weight" || (!has_output_ && t.name == "token_embd.weight")) {
        type = DType::kQ6_K;
      } else if (t.name.find("attn_v.weight") != std::string::npos) {
        if (use_more_bits(i_attn_v_++, n_attn_v_)) type = DType::kQ6_K;
      } else if (t.name.find("ffn_down") != std::string::npos) {
        if (use_more_bits(i_ffn_down_++, n_ffn_down_)) type = DType::kQ6_K;
      } else if (t.name.find("attn_qkv.weight") != std::string::npos) {
        type = DType::kQ5_K;
      }
    }
    return type;
  }

 private:
  const Recipe& recipe_;
  bool has_output_ = false;
  int n_attn_v_ = 0, i_attn_v_ = 0, n_ffn_down_ = 0, i_ffn_down_ = 0;
};

// `type`, or the fall-back when a row of n values is not whole blocks.
DType fit_row(DType type, uint64_t n, const std::string& name) {
  if (dtype_row_bytes(type, n)) return type;
  const DType fallback = dtype_row_bytes(DType::kQ8_0, n) ? DType::kQ8_0 : DType::kF16;
  std::fprintf(stderr,
               "warning: %s has rows of %llu values, not a multiple of the %u-value blocks of "
               "%s; using %s for it\n",
               name.c_str(), static_cast<unsigned long long>(n), dtype_info(type).block_size,
               std::string(dtype_name(type)).c_str(), std::string(dtype_name(fallback)).c_str());
  return fallback;
}

std::vector<uint8_t> convert(const GgufTensorInfo& t, DType to, ThreadPool& pool) {
  if (!quantize_supports(t.type)) {
    fail("tensor ", t.name, " is stored as ", dtype_name(t.type),
         ", which specula cannot read back to convert; start from an F32, F16, BF16, Q8_0, "
         "Q4_0 or K-quant (Q4_K/Q5_K/Q6_K) file");
  }
  const uint64_t n = t.dims[0];
  const uint64_t rows = t.n_elements / n;
  const uint64_t in_row = *dtype_row_bytes(t.type, n);
  const uint64_t out_row = *dtype_row_bytes(to, n);
  std::vector<uint8_t> out(out_row * rows);
  const int64_t n_tasks = std::min<int64_t>(static_cast<int64_t>(rows), pool.n_threads() * 8);
  pool.parallel_for(n_tasks, [&](int64_t task) {
    std::vector<float> values(n);
    const uint64_t begin = rows * static_cast<uint64_t>(task) / static_cast<uint64_t>(n_tasks);
    const uint64_t end = rows * static_cast<uint64_t>(task + 1) / static_cast<uint64_t>(n_tasks);
    for (uint64_t r = begin; r < end; ++r) {
      dequantize_values(t.type, t.data + r * in_row, static_cast<int64_t>(n), values.data());
      quantize_row(to, values.data(), static_cast<int64_t>(n), out.data() + r * out_row);
    }
  });
  return out;
}

struct QuantizeOptions {
  std::string in, out, type, name;
  int threads = 2;
};

void run(const QuantizeOptions& options, const CLI::App& /*sub*/) {
  const Recipe& recipe = recipe_by_name(options.type);
  if (options.threads < 1) fail("--threads must be at least 1 (got ", options.threads, ")");
  check_output_path(options.out);
  const std::unique_ptr<GgufReader> in = GgufReader::open(options.in);
  GgufWriter out;
  if (in->alignment() != 32) out.set_alignment(static_cast<uint32_t>(in->alignment()));
  // A training checkpoint (docs/training.md) becomes a plain model file: its
  // train.* keys and adam_* moment tensors are optimizer state, not model.
  for (const GgufKv& kv : in->metadata()) {
    if (kv.key == "general.alignment" || kv.key == "general.file_type" ||
        kv.key == "general.quantization_version" || kv.key.starts_with("train.") ||
        (kv.key == "general.name" && !options.name.empty()))
      continue;
    out.set_value(kv.key, kv.value);
  }
  if (!options.name.empty()) out.set_string("general.name", options.name);
  out.set_uint32("general.file_type", recipe.file_type);
  // ggml's quantization format version (2 since the 2023 Q4/Q5/Q8 change).
  out.set_uint32("general.quantization_version", 2);

  ThreadPool pool(options.threads);
  TypePlanner planner(recipe, *in);
  const size_t count = in->tensors().size();
  uint64_t bytes_in = 0, bytes_out = 0;
  std::map<std::string, int> type_counts;
  for (size_t i = 0; i < count; ++i) {
    const GgufTensorInfo& t = in->tensors()[i];
    if (t.name.starts_with("adam_")) continue;
    DType to = t.type;
    if (is_quantizable(t)) to = fit_row(planner.choose(t), t.dims[0], t.name);
    std::string dims;
    for (uint64_t d : t.dims) dims += (dims.empty() ? "" : " x ") + std::to_string(d);
    std::fprintf(stderr, "[%zu/%zu] %-32s %-5s -> %-5s [%s]\n", i + 1, count, t.name.c_str(),
                 std::string(dtype_name(t.type)).c_str(), std::string(dtype_name(to)).c_str(),
                 dims.c_str());
    bytes_in += t.n_bytes;
    ++type_counts[std::string(dtype_name(to))];
    if (to == t.type) {
      out.add_tensor(t.name, t.dims, t.type, std::span<const uint8_t>(t.data, t.n_bytes));
      bytes_out += t.n_bytes;
    } else {
      std::vector<uint8_t> bytes = convert(t, to, pool);
      bytes_out += bytes.size();
      out.add_tensor(t.name, t.dims, to, std::move(bytes));
    }
  }
  out.write(options.out);
  std::string summary;
  for (const auto& [name, n] : type_counts)
    summary += (summary.empty() ? "" : ", ") + std::to_string(n) + " " + name;
  std::fprintf(stderr, "wrote %s: %s, tensor data %.1f MB -> %.1f MB (%s)\n", options.out.c_str(),
               recipe.name.c_str(), static_cast<double>(bytes_in) / 1e6,
               static_cast<double>(bytes_out) / 1e6, summary.c_str());
}

void add_flags(CLI::App& sub, QuantizeOptions& options) {
  sub.add_option("input", options.in, "GGUF model to read")->required();
  sub.add_option("output", options.out, "GGUF file to write")->required();
  sub.add_option("type", options.type,
                 "f32, f16, bf16, q8_0, q4_0, q4_k, q5_k, q6_k, or q4_k_m (llama.cpp's mix)")
      ->required();
  sub.add_option("-t,--threads", options.threads, "Threads for quantizing (default 2)");
  sub.add_option("--name", options.name, "Set general.name of the output");
}

const bool registered = register_command_with_flags<QuantizeOptions>(
    "quantize",
    "Convert a GGUF model's weight matrices to f32, f16, bf16, q8_0, q4_0, q4_k, q5_k, q6_k "
    "or q4_k_m",
    add_flags, run);

}  // namespace
}  // namespace specula::cli

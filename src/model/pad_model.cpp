#include "model/pad_model.h"

#include <unistd.h>

#include <array>
#include <cstring>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "gguf/gguf_reader.h"
#include "gguf/gguf_writer.h"
#include "kernels/quantize.h"
#include "model/model_config.h"

namespace specula {
namespace {

constexpr int32_t kMaxLayers = 4096;
constexpr int32_t kMaxFeedForward = 1 << 20;

// How a tensor of the padded model gets its values from its source tensor.
enum class Fill {
  kCopy,         // the same values (converted when the type changes)
  kZero,         // all zero: what the block adds to the residual stream
  kMoreRows,     // ffn_gate / ffn_up: rows r >= n_ff repeat row r % n_ff
  kMoreColumns,  // ffn_down: each row continues with zeros up to F
};

struct PlannedTensor {
  std::string name;
  std::vector<uint64_t> dims;  // ggml order
  DType type;
  const GgufTensorInfo* source;
  Fill fill;
  uint64_t n_bytes;
};

struct PadPlan {
  std::string architecture;
  int32_t target_layers = 0;
  int32_t target_ff = 0;
  int32_t n_layer = 0;
  int32_t n_ff = 0;
  std::vector<PlannedTensor> tensors;
  uint64_t bytes = 0;
};

// The tensors a llama / qwen2 block may hold; padding knows how to extend
// each of them.
constexpr std::array<std::string_view, 12> kBlockTensors = {
    "attn_norm.weight", "attn_q.weight",   "attn_k.weight", "attn_v.weight",
    "attn_q.bias",      "attn_k.bias",     "attn_v.bias",   "attn_output.weight",
    "ffn_norm.weight",  "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight",
};

// "blk.12.attn_q.weight" -> {12, "attn_q.weight"}; index -1 outside blocks.
struct BlockName {
  int64_t index = -1;
  std::string suffix;
};

BlockName parse_block_name(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return {};
  int64_t index = 0;
  size_t i = 4;
  for (; i < name.size() && name[i] >= '0' && name[i] <= '9'; ++i) {
    index = index * 10 + (name[i] - '0');
    if (index > kMaxLayers) return {};
  }
  if (i == 4 || i >= name.size() || name[i] != '.') return {};
  return {index, name.substr(i + 1)};
}

// Which tensors take --type: `specula quantize`'s rule (2-D and larger
// weights except normalization weights).
bool is_matrix(const GgufTensorInfo& t) {
  return t.dims.size() >= 2 && std::string_view(t.name).ends_with("weight") &&
         t.name.find("_norm.weight") == std::string::npos;
}

uint64_t rows_of(const std::vector<uint64_t>& dims) {
  uint64_t rows = 1;
  for (size_t i = 1; i < dims.size(); ++i) rows *= dims[i];
  return rows;
}

// llama.cpp's llama_ftype for a file whose matrices are all `type`.
uint32_t file_type_of(DType type) {
  switch (type) {
    case DType::kF32:
      return 0;
    case DType::kF16:
      return 1;
    case DType::kQ4_0:
      return 2;
    case DType::kQ8_0:
      return 7;
    case DType::kQ4_K:
      return 14;
    case DType::kQ5_K:
      return 16;
    case DType::kQ6_K:
      return 18;
    case DType::kBF16:
      return 32;
    default:
      fail("make-model: no llama.cpp file type for ", dtype_name(type));
  }
}

void check_type(const PadModelOptions& options) {
  if (!options.type) return;
  if (!quantize_supports(*options.type)) {
    fail("make-model: --type ", dtype_name(*options.type),
         " is not supported for padding; use f32, f16, bf16, q8_0, q4_0, q4_k, q5_k or q6_k "
         "(or leave --type out to keep the target's types)");
  }
}

// The tensor as it will be written, with every check of its type and shape.
PlannedTensor plan_tensor(const std::string& target_path, const GgufTensorInfo& source,
                          std::string name, std::vector<uint64_t> dims, Fill fill,
                          const PadModelOptions& options) {
  const DType type = (options.type && is_matrix(source)) ? *options.type : source.type;
  if (type != source.type && !quantize_supports(source.type)) {
    fail("make-model: ", source.name, " of ", target_path, " is ", dtype_name(source.type),
         ", which specula cannot convert to ", dtype_name(type),
         "; leave --type out to keep the target's types");
  }
  if (type != source.type && !dtype_row_bytes(type, source.dims[0])) {
    fail("make-model: ", source.name, " of ", target_path, " has rows of ", source.dims[0],
         " values, not a multiple of ", dtype_info(type).block_size, " (the block size of ",
         dtype_name(type), "), so it cannot be converted; use another --type");
  }
  const std::optional<uint64_t> row_bytes = dtype_row_bytes(type, dims[0]);
  if (!row_bytes) {
    fail("make-model: ", name, " would have rows of ", dims[0], " values, not a multiple of ",
         dtype_info(type).block_size, " (the block size of ", dtype_name(type), ")",
         fill == Fill::kMoreColumns || fill == Fill::kZero
             ? str_cat("; use an --ff that is a multiple of ", dtype_info(type).block_size)
             : str_cat("; use a --type whose blocks divide ", dims[0]));
  }
  const uint64_t n_bytes = *row_bytes * rows_of(dims);
  return {std::move(name), std::move(dims), type, &source, fill, n_bytes};
}

PadPlan plan_padding(const std::string& target_path, const GgufReader& target,
                     const PadModelOptions& options) {
  check_type(options);
  const ModelConfig config = read_model_config(target);
  PadPlan plan;
  plan.architecture = config.architecture;
  plan.target_layers = config.n_layer;
  plan.target_ff = config.n_ff;
  plan.n_layer = options.n_layer == 0 ? config.n_layer : options.n_layer;
  plan.n_ff = options.n_ff == 0 ? config.n_ff : options.n_ff;
  if (plan.n_layer < config.n_layer || plan.n_layer > kMaxLayers) {
    fail("make-model: --layers ", plan.n_layer, " must be in [", config.n_layer, ", ", kMaxLayers,
         "]: a padded copy keeps the ", config.n_layer, " layers of ", target_path,
         " and may add more");
  }
  if (plan.n_ff < config.n_ff || plan.n_ff > kMaxFeedForward) {
    fail("make-model: --ff ", plan.n_ff, " must be in [", config.n_ff, ", ", kMaxFeedForward,
         "]: a padded copy keeps the feed-forward width ", config.n_ff, " of ", target_path,
         " and may widen it");
  }
  const uint64_t n_embd = static_cast<uint64_t>(config.n_embd);
  const uint64_t target_ff = static_cast<uint64_t>(config.n_ff);
  const uint64_t n_ff = static_cast<uint64_t>(plan.n_ff);

  // The target's blocks, checked, and where the last block tensor sits.
  std::vector<std::vector<const GgufTensorInfo*>> blocks(static_cast<size_t>(config.n_layer));
  size_t last_block_tensor = 0;
  const std::vector<GgufTensorInfo>& tensors = target.tensors();
  for (size_t i = 0; i < tensors.size(); ++i) {
    const GgufTensorInfo& t = tensors[i];
    const BlockName block = parse_block_name(t.name);
    if (block.index < 0) continue;
    if (block.index >= config.n_layer) {
      fail("make-model: ", target_path, " has tensor ", t.name, " but only ", config.n_layer,
           " blocks (", config.architecture, ".block_count)");
    }
    bool known = false;
    for (const std::string_view suffix : kBlockTensors) known = known || block.suffix == suffix;
    if (!known) {
      fail("make-model: ", target_path, " has tensor ", t.name,
           ", which padding does not know how to extend (it handles the tensors of llama and "
           "qwen2 blocks)");
    }
    const bool gate_or_up = block.suffix == "ffn_gate.weight" || block.suffix == "ffn_up.weight";
    const std::vector<uint64_t> expected =
        gate_or_up ? std::vector<uint64_t>{n_embd, target_ff}
                   : (block.suffix == "ffn_down.weight" ? std::vector<uint64_t>{target_ff, n_embd}
                                                        : t.dims);
    if (t.dims != expected) {
      fail("make-model: ", target_path, ": ", t.name, " does not have the shape [", expected[0],
           ", ", expected[1], "] that embd ", n_embd, " and ff ", target_ff, " give");
    }
    blocks[static_cast<size_t>(block.index)].push_back(&t);
    last_block_tensor = i;
  }

  // A tensor of block `layer` made from `source` (of some target block).
  auto plan_block_tensor = [&](const GgufTensorInfo& source, int32_t layer, bool extra) {
    const std::string suffix = parse_block_name(source.name).suffix;
    std::string name = str_cat("blk.", layer, ".", suffix);
    if (suffix == "ffn_gate.weight" || suffix == "ffn_up.weight") {
      return plan_tensor(target_path, source, std::move(name), {n_embd, n_ff},
                         n_ff > target_ff ? Fill::kMoreRows : Fill::kCopy, options);
    }
    if (suffix == "ffn_down.weight") {
      return plan_tensor(
          target_path, source, std::move(name), {n_ff, n_embd},
          extra ? Fill::kZero : (n_ff > target_ff ? Fill::kMoreColumns : Fill::kCopy), options);
    }
    const bool zero = extra && suffix.starts_with("attn_output.");
    return plan_tensor(target_path, source, std::move(name), source.dims,
                       zero ? Fill::kZero : Fill::kCopy, options);
  };

  for (size_t i = 0; i < tensors.size(); ++i) {
    const GgufTensorInfo& t = tensors[i];
    const BlockName block = parse_block_name(t.name);
    if (block.index < 0) {
      plan.tensors.push_back(plan_tensor(target_path, t, t.name, t.dims, Fill::kCopy, options));
    } else {
      plan.tensors.push_back(plan_block_tensor(t, static_cast<int32_t>(block.index), false));
    }
    if (i != last_block_tensor) continue;
    // The extra blocks follow the target's last block; block l copies
    // target block l mod n_layer (its attention and FFN inputs are real
    // trained weights) with its outputs zeroed.
    for (int32_t l = config.n_layer; l < plan.n_layer; ++l) {
      for (const GgufTensorInfo* source : blocks[static_cast<size_t>(l % config.n_layer)]) {
        plan.tensors.push_back(plan_block_tensor(*source, l, true));
      }
    }
  }
  for (const PlannedTensor& t : plan.tensors) plan.bytes += t.n_bytes;

  // The writer holds the whole file in memory before writing it.
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_size = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page_size > 0) {
    const uint64_t memory = static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size);
    if (plan.bytes > memory / 10 * 8) {
      fail("make-model: the padded model would hold ", plan.bytes / 1e9,
           " GB of weights, which are built in memory before the file is written; this machine "
           "has ",
           memory / 1e9, " GB: use a smaller --layers or --ff");
    }
  }
  return plan;
}

// The source tensor's bytes in `type` (converted row by row when it differs).
std::vector<uint8_t> bytes_in_type(const GgufTensorInfo& source, DType type) {
  if (type == source.type) return std::vector<uint8_t>(source.data, source.data + source.n_bytes);
  const uint64_t n = source.dims[0];
  const uint64_t in_row = *dtype_row_bytes(source.type, n);
  const uint64_t out_row = *dtype_row_bytes(type, n);
  const uint64_t rows = rows_of(source.dims);
  std::vector<uint8_t> out(out_row * rows);
  std::vector<float> values(n);
  for (uint64_t r = 0; r < rows; ++r) {
    dequantize_values(source.type, source.data + r * in_row, static_cast<int64_t>(n),
                      values.data());
    quantize_row(type, values.data(), static_cast<int64_t>(n), out.data() + r * out_row);
  }
  return out;
}

// The values of one planned tensor, in its type. All-zero bytes are the
// value 0 in every supported type (the block scales are 0 too).
std::vector<uint8_t> fill_tensor(const PlannedTensor& t) {
  if (t.fill == Fill::kZero) return std::vector<uint8_t>(t.n_bytes, 0);
  std::vector<uint8_t> base = bytes_in_type(*t.source, t.type);
  if (t.fill == Fill::kCopy) return base;
  std::vector<uint8_t> out(t.n_bytes, 0);
  if (t.fill == Fill::kMoreRows) {
    const uint64_t row_bytes = *dtype_row_bytes(t.type, t.dims[0]);
    const uint64_t base_rows = base.size() / row_bytes;
    for (uint64_t r = 0; r < rows_of(t.dims); ++r) {
      std::memcpy(out.data() + r * row_bytes, base.data() + (r % base_rows) * row_bytes, row_bytes);
    }
    return out;
  }
  // kMoreColumns: source rows of n_ff values, then zeros to the new width.
  const uint64_t base_row_bytes = *dtype_row_bytes(t.type, t.source->dims[0]);
  const uint64_t row_bytes = *dtype_row_bytes(t.type, t.dims[0]);
  for (uint64_t r = 0; r < rows_of(t.dims); ++r) {
    std::memcpy(out.data() + r * row_bytes, base.data() + r * base_row_bytes, base_row_bytes);
  }
  return out;
}

}  // namespace

uint64_t padded_model_bytes(const std::string& target_path, const PadModelOptions& options) {
  const std::unique_ptr<GgufReader> target = GgufReader::open(target_path);
  return plan_padding(target_path, *target, options).bytes;
}

void write_padded_model(const std::string& target_path, const PadModelOptions& options,
                        const std::string& out_path, const MakeModelProgress& progress) {
  const std::unique_ptr<GgufReader> target = GgufReader::open(target_path);
  const PadPlan plan = plan_padding(target_path, *target, options);
  const std::string block_count_key = plan.architecture + ".block_count";
  const std::string ff_key = plan.architecture + ".feed_forward_length";
  const std::string description = str_cat("padded to ", plan.n_layer, " layers, ff ", plan.n_ff,
                                          " from ", plan.target_layers, ", ", plan.target_ff);
  GgufWriter writer;
  bool has_name = false;
  bool has_ff = false;
  bool has_file_type = false;
  for (const GgufKv& kv : target->metadata()) {
    if (kv.key == block_count_key) {
      writer.set_uint32(kv.key, static_cast<uint32_t>(plan.n_layer));
    } else if (kv.key == ff_key) {
      if (kv.value.type == GgufType::kArray) {
        fail("make-model: ", target_path, ": ", ff_key,
             " is an array (a width per layer), which padding does not handle");
      }
      writer.set_uint32(kv.key, static_cast<uint32_t>(plan.n_ff));
      has_ff = true;
    } else if (kv.key == "general.alignment") {
      writer.set_alignment(static_cast<uint32_t>(*target->get_uint(kv.key)));
    } else if (kv.key == "general.name" && kv.value.type == GgufType::kString) {
      writer.set_string(kv.key, str_cat(kv.value.str, " (", description, ")"));
      has_name = true;
    } else if (kv.key == "general.file_type" && options.type) {
      writer.set_uint32(kv.key, file_type_of(*options.type));
      has_file_type = true;
    } else if (kv.value.type == GgufType::kArray && kv.value.array_type == GgufType::kArray) {
      log_warn("make-model: metadata key ", kv.key, " of ", target_path,
               " is an array of arrays, which the writer cannot reproduce; left out of the copy");
    } else {
      writer.set_value(kv.key, kv.value);
    }
  }
  if (!has_ff) writer.set_uint32(ff_key, static_cast<uint32_t>(plan.n_ff));
  if (!has_name) writer.set_string("general.name", description);
  if (!has_file_type && options.type) {
    writer.set_uint32("general.file_type", file_type_of(*options.type));
  }
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    const PlannedTensor& t = plan.tensors[i];
    writer.add_tensor(t.name, t.dims, t.type, fill_tensor(t));
    if (progress) progress(t.name, i + 1, plan.tensors.size());
  }
  writer.write(out_path);
}

}  // namespace specula

#include "reference_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "gguf/gguf_reader.h"

namespace specula::test {
namespace {

using Vec = std::vector<double>;

// IEEE half and bfloat16 decoded from their definitions.
double half_value(uint16_t h) {
  const int sign = (h >> 15) ? -1 : 1;
  const int exponent = (h >> 10) & 31;
  const int mantissa = h & 1023;
  if (exponent == 0) return sign * std::ldexp(mantissa, -24);
  if (exponent == 31) return sign * INFINITY;
  return sign * std::ldexp(1024 + mantissa, exponent - 25);
}

// x rounded to the nearest IEEE half, ties to even (the default rounding
// mode of nearbyint), from the definition: 11 significant bits down to
// 2^-14, a fixed step of 2^-24 below. The test models stay far from the
// largest half (65504).
double half_rounded(double x) {
  if (x == 0.0) return x;
  const double step = std::ldexp(1.0, std::max(std::ilogb(x), -14) - 10);
  return std::nearbyint(x / step) * step;
}

double bfloat_value(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// A tensor as doubles; `rows` rows of `cols` values (ggml dims[0] = cols).
struct Tensor {
  Vec values;
  uint64_t cols = 0, rows = 1;
  const double* row(uint64_t r) const { return values.data() + r * cols; }
};

Tensor load(const GgufReader& file, const std::string& name) {
  const GgufTensorInfo* info = file.find_tensor(name);
  if (info == nullptr) throw std::runtime_error("reference: missing tensor " + name);
  Tensor t;
  t.cols = info->dims[0];
  for (size_t i = 1; i < info->dims.size(); ++i) t.rows *= info->dims[i];
  t.values.resize(info->n_elements);
  for (uint64_t i = 0; i < info->n_elements; ++i) {
    if (info->type == DType::kF32) {
      float f;
      std::memcpy(&f, info->data + 4 * i, 4);
      t.values[i] = f;
    } else {
      uint16_t h;
      std::memcpy(&h, info->data + 2 * i, 2);
      t.values[i] = info->type == DType::kF16 ? half_value(h) : bfloat_value(h);
    }
  }
  return t;
}

// y = W x: output r is the dot product of row r with x.
Vec matvec(const Tensor& w, const Vec& x) {
  Vec y(w.rows, 0.0);
  for (uint64_t r = 0; r < w.rows; ++r) {
    for (uint64_t c = 0; c < w.cols; ++c) y[r] += w.row(r)[c] * x[c];
  }
  return y;
}

Vec rms_normalized(const Vec& x, const Tensor& weight, double eps) {
  double mean_square = 0.0;
  for (double v : x) mean_square += v * v;
  mean_square /= static_cast<double>(x.size());
  Vec y(x.size());
  for (size_t i = 0; i < x.size(); ++i)
    y[i] = x[i] / std::sqrt(mean_square + eps) * weight.values[i];
  return y;
}

struct Layer {
  Tensor attn_norm, wq, wk, wv, bq, bk, bv, wo, ffn_norm, gate, up, down;
};

}  // namespace

std::vector<double> reference_logits(const std::string& gguf_path,
                                     const std::vector<int32_t>& tokens, bool half_kv) {
  const auto file = GgufReader::open(gguf_path);
  const std::string arch(*file->get_string("general.architecture"));
  const bool neox = arch == "qwen2";
  const int n_layer = static_cast<int>(*file->get_uint(arch + ".block_count"));
  const int n_head = static_cast<int>(*file->get_uint(arch + ".attention.head_count"));
  const int n_head_kv =
      static_cast<int>(file->get_uint(arch + ".attention.head_count_kv").value_or(n_head));
  const double eps = *file->get_float(arch + ".attention.layer_norm_rms_epsilon");
  const double base = file->get_float(arch + ".rope.freq_base").value_or(10000.0);
  double position_scale = 1.0;
  if (file->get_string(arch + ".rope.scaling.type").value_or("none") == "linear") {
    position_scale = 1.0 / *file->get_float(arch + ".rope.scaling.factor");
  }

  const Tensor embeddings = load(*file, "token_embd.weight");
  const Tensor output_norm = load(*file, "output_norm.weight");
  const Tensor output =
      file->find_tensor("output.weight") ? load(*file, "output.weight") : embeddings;
  const int n_embd = static_cast<int>(embeddings.cols);
  const int head_dim = n_embd / n_head;
  std::vector<Layer> layers(n_layer);
  for (int l = 0; l < n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    Layer& L = layers[l];
    L.attn_norm = load(*file, p + "attn_norm.weight");
    L.wq = load(*file, p + "attn_q.weight");
    L.wk = load(*file, p + "attn_k.weight");
    L.wv = load(*file, p + "attn_v.weight");
    if (file->find_tensor(p + "attn_q.bias")) {
      L.bq = load(*file, p + "attn_q.bias");
      L.bk = load(*file, p + "attn_k.bias");
      L.bv = load(*file, p + "attn_v.bias");
    }
    L.wo = load(*file, p + "attn_output.weight");
    L.ffn_norm = load(*file, p + "ffn_norm.weight");
    L.gate = load(*file, p + "ffn_gate.weight");
    L.up = load(*file, p + "ffn_up.weight");
    L.down = load(*file, p + "ffn_down.weight");
  }

  // Rotates each head of `x` by the angles of position t.
  auto rotate = [&](Vec& x, int heads, int t) {
    for (int h = 0; h < heads; ++h) {
      double* head = x.data() + h * head_dim;
      for (int i = 0; i < head_dim / 2; ++i) {
        const double angle = t * position_scale * std::pow(base, -2.0 * i / head_dim);
        const int a = neox ? i : 2 * i;
        const int b = neox ? i + head_dim / 2 : 2 * i + 1;
        const double x0 = head[a], x1 = head[b];
        head[a] = x0 * std::cos(angle) - x1 * std::sin(angle);
        head[b] = x0 * std::sin(angle) + x1 * std::cos(angle);
      }
    }
  };
  auto add = [](Vec& x, const Tensor& bias) {
    for (size_t i = 0; i < x.size() && !bias.values.empty(); ++i) x[i] += bias.values[i];
  };

  // keys[l][t], values[l][t]: n_head_kv * head_dim each.
  std::vector<std::vector<Vec>> keys(n_layer), values(n_layer);
  std::vector<double> logits;
  for (size_t t = 0; t < tokens.size(); ++t) {
    Vec x(embeddings.row(tokens[t]), embeddings.row(tokens[t]) + n_embd);
    for (int l = 0; l < n_layer; ++l) {
      const Layer& L = layers[l];
      const Vec xn = rms_normalized(x, L.attn_norm, eps);
      Vec q = matvec(L.wq, xn), k = matvec(L.wk, xn), v = matvec(L.wv, xn);
      add(q, L.bq);
      add(k, L.bk);
      add(v, L.bv);
      rotate(q, n_head, static_cast<int>(t));
      rotate(k, n_head_kv, static_cast<int>(t));
      if (half_kv) {
        for (double& e : k) e = half_rounded(e);
        for (double& e : v) e = half_rounded(e);
      }
      keys[l].push_back(k);
      values[l].push_back(v);

      Vec attended(n_head * head_dim, 0.0);
      for (int h = 0; h < n_head; ++h) {
        const int kv_head = h * n_head_kv / n_head;
        Vec weights(t + 1);
        double max_score = -INFINITY;
        for (size_t j = 0; j <= t; ++j) {
          double dot = 0.0;
          for (int d = 0; d < head_dim; ++d) {
            dot += q[h * head_dim + d] * keys[l][j][kv_head * head_dim + d];
          }
          weights[j] = dot / std::sqrt(static_cast<double>(head_dim));
          max_score = std::max(max_score, weights[j]);
        }
        double total = 0.0;
        for (double& w : weights) total += (w = std::exp(w - max_score));
        for (size_t j = 0; j <= t; ++j) {
          for (int d = 0; d < head_dim; ++d) {
            attended[h * head_dim + d] += weights[j] / total * values[l][j][kv_head * head_dim + d];
          }
        }
      }
      const Vec projected = matvec(L.wo, attended);
      for (int i = 0; i < n_embd; ++i) x[i] += projected[i];

      const Vec xf = rms_normalized(x, L.ffn_norm, eps);
      const Vec g = matvec(L.gate, xf), u = matvec(L.up, xf);
      Vec hidden(g.size());
      for (size_t i = 0; i < g.size(); ++i) hidden[i] = g[i] / (1.0 + std::exp(-g[i])) * u[i];
      const Vec down = matvec(L.down, hidden);
      for (int i = 0; i < n_embd; ++i) x[i] += down[i];
    }
    const Vec row_logits = matvec(output, rms_normalized(x, output_norm, eps));
    logits.insert(logits.end(), row_logits.begin(), row_logits.end());
  }
  return logits;
}

}  // namespace specula::test

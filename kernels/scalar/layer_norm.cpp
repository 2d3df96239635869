// Scalar reference LayerNorm, residual add + LayerNorm, and LayerNorm + GELU + residual add:
// llama.cpp's norm op followed by the mul and add ops its graphs put after it (build_norm with
// LLM_NORM), and the ops the fusions name, each step rounded as ggml does.
#include <cmath>

#include "kernels/scalar/gelu_fp16.h"
#include "kernels/scalar/scalar.h"

namespace tern::kernels::scalar {
namespace {

// ggml_compute_forward_norm_f32 from its first sum on, then ggml_mul and ggml_add; element i of
// the result goes to finish(i, value), which may write over x[i] (x is not read after that).
// `sum` is the row's double sum in element order. The sums are doubles added one element at a
// time (ggml is built without -ffast-math, so GCC keeps that order); the square is rounded to
// float before it is widened.
template <class Finish>
void normalise(const float* x, double sum, const float* w, const float* b, int64_t n, float eps,
               Finish finish) {
  const auto nd = static_cast<double>(n);
  const auto mean = static_cast<float>(sum / nd);
  double sum2 = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i] - mean;
    sum2 += static_cast<double>(v * v);
  }
  const auto var = static_cast<float>(sum2 / nd);
  const float scale = 1.0f / std::sqrt(var + eps);
  for (int64_t i = 0; i < n; ++i) {
    float v = (x[i] - mean) * scale;  // ggml_vec_scale_f32
    if (w != nullptr) v = v * w[i];   // ggml_mul
    if (b != nullptr) v = v + b[i];   // ggml_add
    finish(i, v);
  }
}

void normalise(const float* x, double sum, const float* w, const float* b, float* y, int64_t n,
               float eps) {
  normalise(x, sum, w, b, n, eps, [y](int64_t i, float v) { y[i] = v; });
}

}  // namespace

void layer_norm(const float* x, const float* w, const float* b, float* y, int64_t n, float eps) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]);
  normalise(x, sum, w, b, y, n, eps);
}

void add_layer_norm(const float* x, const float* r, float* sum, const float* w, const float* b,
                    float* y, int64_t n, float eps) {
  // ggml_add (one rounding per element), then the norm of the stored sum.
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const float s = x[i] + r[i];
    sum[i] = s;
    total += static_cast<double>(s);
  }
  normalise(sum, total, w, b, y, n, eps);
}

void layer_norm_gelu_add(const float* x, const float* w, const float* b, const float* residual,
                         float* out, int64_t n, float eps) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]);
  const float* table = gelu_fp16_table();
  // ggml_gelu of the normalised element, then ggml_add of the residual.
  normalise(x, sum, w, b, n, eps,
            [=](int64_t i, float v) { out[i] = residual[i] + gelu_fp16(v, table); });
}

}  // namespace tern::kernels::scalar

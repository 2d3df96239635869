// Scalar reference element-wise kernels: RMSNorm, RoPE, SiLU-gated multiply, softmax. Accumulation
// order and precision follow llama.cpp's CPU ops so that greedy output stays token-identical.
#include <cmath>

#include "kernels/scalar/scalar.h"
#include "kernels/scalar/vexpf.h"
#include "quant/float_dot.h"

namespace tern::kernels::scalar {

void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
  // Sum of squares in double, as ggml does: it keeps long rows from losing low bits.
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i] * x[i]);
  const auto mean = static_cast<float>(sum / static_cast<double>(n));
  const float scale = 1.0f / std::sqrt(mean + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = (x[i] * scale) * w[i];
}

void rope(float* x, int64_t n_heads, int64_t head_dim, const float* cos_sin, int64_t n_pairs) {
  // ggml computes x0*c - x1*s and x0*s + x1*c in a loop GCC vectorised 4 and 8 pairs at a time
  // with fmaddsub, which fuses the x0 products and rounds the x1 products first; the last
  // n_pairs % 4 pairs go through a 128-bit epilogue with separate multiplies and addsub. (Checked
  // bit for bit against llama.cpp's rope for every even head size up to 256.)
  const int64_t n_fused = n_pairs - n_pairs % 4;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* v = x + h * head_dim;
    for (int64_t i = 0; i < n_pairs; ++i) {
      const float c = cos_sin[2 * i];
      const float s = cos_sin[2 * i + 1];
      const float x0 = v[2 * i];
      const float x1 = v[2 * i + 1];
      if (i < n_fused) {
        v[2 * i] = std::fma(x0, c, -(x1 * s));
        v[2 * i + 1] = std::fma(x0, s, x1 * c);
      } else {
        v[2 * i] = x0 * c - x1 * s;
        v[2 * i + 1] = x0 * s + x1 * c;
      }
    }
  }
}

void silu_mul(const float* gate, const float* up, float* out, int64_t n) {
  // ggml_vec_silu_f32 (AVX-512): full groups of 16 from the start of the row use ggml_v_silu,
  // the remaining n % 16 elements x / (1 + expf(-x)). ggml then multiplies by up separately.
  const int64_t n_vec = n / 16 * 16;
  for (int64_t i = 0; i < n_vec; ++i) out[i] = ggml_v_silu(gate[i]) * up[i];
  for (int64_t i = n_vec; i < n; ++i) {
    const float g = gate[i];
    out[i] = (g / (1.0f + std::exp(-g))) * up[i];
  }
}

void softmax(float* x, int64_t n, int64_t n_span) {
  // ggml_vec_max_f32, then ggml_vec_soft_max_f32 (AVX-512) over the n_span cells: every full group
  // of 16 goes through ggml_v_expf and is reduced with _mm512_reduce_add_ps into a double sum, the
  // rest through expf; masked cells are exp(-inf) = 0. Then ggml_vec_scale_f32 by 1/sum in f32.
  float max = -INFINITY;
  for (int64_t p = 0; p < n; ++p) max = std::fmax(max, x[p]);
  double sum = 0.0;
  const int64_t n_vec = n_span / 16 * 16;
  for (int64_t p0 = 0; p0 < n_vec; p0 += 16) {
    float lanes[16];
    for (int l = 0; l < 16; ++l) {
      const int64_t p = p0 + l;
      lanes[l] = 0.0f;
      if (p < n) lanes[l] = x[p] = ggml_v_expf(x[p] - max);
    }
    sum += static_cast<double>(quant::reduce_add_16(lanes));
  }
  for (int64_t p = n_vec; p < n; ++p) {
    x[p] = std::exp(x[p] - max);
    sum += static_cast<double>(x[p]);
  }
  const auto inv = static_cast<float>(1.0 / sum);
  for (int64_t p = 0; p < n; ++p) x[p] *= inv;
}

}  // namespace tern::kernels::scalar

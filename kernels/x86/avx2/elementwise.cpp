// AVX2 element-wise kernels: RMSNorm, RoPE, SiLU-gated multiply and softmax, bit-identical to the
// scalar reference (kernels/scalar/elementwise.cpp).
//
// Theory of operation. As the AVX-512 file (kernels/x86/avx512/elementwise.cpp): the reference's
// operations lane for lane, its 16-lane groups as two 8-lane registers (simd.h), its sequential
// double sums in element order, and libm's expf for the tails.
#include <math.h>  // expf: a libm call, no inline code compiled with this ISA's flags

#include <cstddef>
#include <cstdint>

#include "kernels/x86/avx2/avx2.h"
#include "kernels/x86/avx2/simd.h"
#include "kernels/x86/intrinsics.h"

namespace tern::kernels::avx2 {

void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
  // The reference's sequential double sum is the bound (one dependent add per element); vector
  // squares would only add a round trip through memory.
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i] * x[i]);
  const auto mean = static_cast<float>(sum / static_cast<double>(n));
  const __m256 scale = _mm256_set1_ps(1.0f / __builtin_sqrtf(mean + eps));
  for (int64_t i0 = 0; i0 < n; i0 += 8) {
    const __m256 v = load_first(x + i0, n - i0);
    store_first(y + i0, n - i0, _mm256_mul_ps(_mm256_mul_ps(v, scale), load_first(w + i0, n - i0)));
  }
}

void rope(float* x, int64_t n_heads, int64_t head_dim, const float* cos_sin, int64_t n_pairs) {
  // Interleaved (x0, x1) and (c, s): even lanes get x0*c - x1*s, odd lanes x0*s + x1*c, one
  // fmaddsub for the first n_pairs - n_pairs % 4 pairs (x1's products rounded first), the rest with
  // separately rounded products.
  const int64_t n_fused = n_pairs - n_pairs % 4;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* v = x + h * head_dim;
    int64_t i = 0;
    for (; i < n_fused; i += 4) {
      const __m256 xv = _mm256_loadu_ps(v + 2 * i);
      const __m256 cs = _mm256_loadu_ps(cos_sin + 2 * i);
      const __m256 x1s = _mm256_mul_ps(_mm256_movehdup_ps(xv), _mm256_permute_ps(cs, 0xb1));
      _mm256_storeu_ps(v + 2 * i, _mm256_fmaddsub_ps(_mm256_moveldup_ps(xv), cs, x1s));
    }
    // One pair per step with explicit addsub: GCC 12's SLP vectorizer turns the plain scalar
    // form into fmaddsub despite -ffp-contract=off.
    for (; i < n_pairs; ++i) {
      const auto pair = [](const float* p) {
        return _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(p)));
      };
      const __m128 xv = pair(v + 2 * i), cs = pair(cos_sin + 2 * i);
      const __m128 x0cs = _mm_mul_ps(_mm_moveldup_ps(xv), cs);
      const __m128 x1sc = _mm_mul_ps(_mm_movehdup_ps(xv), _mm_shuffle_ps(cs, cs, 0xb1));
      _mm_store_sd(reinterpret_cast<double*>(v + 2 * i), _mm_castps_pd(_mm_addsub_ps(x0cs, x1sc)));
    }
  }
}

void silu_mul(const float* gate, const float* up, float* out, int64_t n) {
  const int64_t n_vec = n / 16 * 16;
  const __m256 one = _mm256_set1_ps(1.0f);
  for (int64_t i = 0; i < n_vec; i += 8) {
    const __m256 g = _mm256_loadu_ps(gate + i);
    const __m256 e = v_expf(_mm256_sub_ps(_mm256_setzero_ps(), g));
    const __m256 silu = _mm256_div_ps(g, _mm256_add_ps(one, e));
    _mm256_storeu_ps(out + i, _mm256_mul_ps(silu, _mm256_loadu_ps(up + i)));
  }
  for (int64_t i = n_vec; i < n; ++i) {
    const float g = gate[i];
    out[i] = (g / (1.0f + expf(-g))) * up[i];
  }
}

void softmax(float* x, int64_t n, int64_t n_span) {
  // max_ps(x, acc) returns acc when x is NaN: std::fmax's choice. The order of a max is free.
  const __m256 neg_inf = _mm256_set1_ps(-__builtin_inff());
  __m256 vmax = neg_inf;
  for (int64_t p0 = 0; p0 < n; p0 += 8) {
    const __m256 v = n - p0 >= 8 ? _mm256_loadu_ps(x + p0)
                                 : _mm256_blendv_ps(neg_inf, load_first(x + p0, n - p0),
                                                    _mm256_castsi256_ps(first_lanes(n - p0)));
    vmax = _mm256_max_ps(v, vmax);
  }
  __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(vmax, 1), _mm256_castps256_ps128(vmax));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  const float max = _mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4)));
  const __m256 vm = _mm256_set1_ps(max);
  // Groups past n hold only masked cells: they add +0 to a sum that is never -0.
  double sum = 0.0;
  const int64_t n_vec = n_span / 16 * 16;
  const int64_t n_groups_end = n < n_vec ? n : n_vec;
  for (int64_t p0 = 0; p0 < n_groups_end; p0 += 16) {
    __m256 e[2];
    for (int h = 0; h < 2; ++h) {
      const int64_t cnt = n - p0 - 8 * h;
      e[h] = _mm256_setzero_ps();
      if (cnt <= 0) continue;
      e[h] = v_expf(_mm256_sub_ps(load_first(x + p0 + 8 * h, cnt), vm));
      if (cnt < 8) e[h] = _mm256_and_ps(e[h], _mm256_castsi256_ps(first_lanes(cnt)));
      store_first(x + p0 + 8 * h, cnt, e[h]);
    }
    sum += static_cast<double>(reduce_add_16(e[0], e[1]));
  }
  for (int64_t p = n_vec; p < n; ++p) {
    x[p] = expf(x[p] - max);
    sum += static_cast<double>(x[p]);
  }
  const __m256 inv = _mm256_set1_ps(static_cast<float>(1.0 / sum));
  for (int64_t p0 = 0; p0 < n; p0 += 8) {
    store_first(x + p0, n - p0, _mm256_mul_ps(load_first(x + p0, n - p0), inv));
  }
}

}  // namespace tern::kernels::avx2

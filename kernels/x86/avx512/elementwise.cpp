// AVX-512 element-wise kernels: RMSNorm, RoPE, SiLU-gated multiply and softmax, bit-identical to
// the scalar reference (kernels/scalar/elementwise.cpp).
//
// Theory of operation. Every float step is the reference's operation on the same operands, only
// run on 16 lanes at once: ggml_v_expf is the sequence of kernels/scalar/vexpf.h (which is itself
// llama.cpp's AVX-512 code), the 16-lane groups of SiLU and softmax start at the row's start as in
// the reference, and the reductions that the reference does in a fixed order (the double sums of
// rms_norm and softmax, the reduce_add_16 tree) keep that order. Tails (n % 16) call libm's expf as
// the reference does.
#include <math.h>  // expf: a libm call, no inline code compiled with this ISA's flags

#include <cstddef>
#include <cstdint>

#include "kernels/x86/avx512/avx512.h"
#include "kernels/x86/avx512/simd.h"
#include "kernels/x86/intrinsics.h"

namespace tern::kernels::avx512 {
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
  // The reference's sequential double sum is the bound (one dependent add per element); vector
  // squares would only add a round trip through memory.
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i] * x[i]);
  const auto mean = static_cast<float>(sum / static_cast<double>(n));
  const __m512 scale = _mm512_set1_ps(1.0f / __builtin_sqrtf(mean + eps));
  for (int64_t i0 = 0; i0 < n; i0 += 16) {
    const __mmask16 m = first_lanes(n - i0);
    const __m512 v = _mm512_maskz_loadu_ps(m, x + i0);
    const __m512 r = _mm512_mul_ps(_mm512_mul_ps(v, scale), _mm512_maskz_loadu_ps(m, w + i0));
    _mm512_mask_storeu_ps(y + i0, m, r);
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
    for (; i + 8 <= n_fused; i += 8) {
      const __m512 xv = _mm512_loadu_ps(v + 2 * i);
      const __m512 cs = _mm512_loadu_ps(cos_sin + 2 * i);
      const __m512 x1s = _mm512_mul_ps(_mm512_movehdup_ps(xv), _mm512_permute_ps(cs, 0xb1));
      _mm512_storeu_ps(v + 2 * i, _mm512_fmaddsub_ps(_mm512_moveldup_ps(xv), cs, x1s));
    }
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
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n_vec; i += 16) {
    const __m512 g = _mm512_loadu_ps(gate + i);
    const __m512 e = v_expf(_mm512_sub_ps(_mm512_setzero_ps(), g));
    const __m512 silu = _mm512_div_ps(g, _mm512_add_ps(one, e));
    _mm512_storeu_ps(out + i, _mm512_mul_ps(silu, _mm512_loadu_ps(up + i)));
  }
  for (int64_t i = n_vec; i < n; ++i) {
    const float g = gate[i];
    out[i] = (g / (1.0f + expf(-g))) * up[i];
  }
}

void softmax(float* x, int64_t n, int64_t n_span) {
  // max_ps(x, acc) returns acc when x is NaN: std::fmax's choice. The order of a max is free.
  __m512 vmax = _mm512_set1_ps(-__builtin_inff());
  for (int64_t p0 = 0; p0 < n; p0 += 16) {
    const __m512 v = _mm512_mask_loadu_ps(vmax, first_lanes(n - p0), x + p0);
    vmax = _mm512_max_ps(v, vmax);
  }
  const float max = _mm512_reduce_max_ps(vmax);
  const __m512 vm = _mm512_set1_ps(max);
  // Groups past n hold only masked cells: they add +0 to a sum that is never -0.
  double sum = 0.0;
  const int64_t n_vec = n_span / 16 * 16;
  const int64_t n_groups_end = n < n_vec ? n : n_vec;
  for (int64_t p0 = 0; p0 < n_groups_end; p0 += 16) {
    const __mmask16 m = first_lanes(n - p0);
    const __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + p0), vm);
    const __m512 e = _mm512_maskz_mov_ps(m, v_expf(d));
    _mm512_mask_storeu_ps(x + p0, m, e);
    sum += static_cast<double>(reduce_add_16(e));
  }
  for (int64_t p = n_vec; p < n; ++p) {
    x[p] = expf(x[p] - max);
    sum += static_cast<double>(x[p]);
  }
  const __m512 inv = _mm512_set1_ps(static_cast<float>(1.0 / sum));
  for (int64_t p0 = 0; p0 < n; p0 += 16) {
    const __mmask16 m = first_lanes(n - p0);
    _mm512_mask_storeu_ps(x + p0, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + p0), inv));
  }
}

}  // namespace tern::kernels::avx512

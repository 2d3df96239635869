// Helpers shared by the AVX-512 kernel files (and only by them: this header is compiled with the
// AVX-512 flags alone, so its inline functions live in tern::kernels::avx512).
#pragma once

#include <cstdint>

#include "kernels/x86/intrinsics.h"

namespace tern::kernels::avx512 {

// The lanes [0, n) of a 16-lane vector.
inline __mmask16 first_lanes(int64_t n) {
  return n >= 16 ? __mmask16{0xffff} : static_cast<__mmask16>((1u << n) - 1u);
}

// ggml_v_expf, lane for lane the sequence of kernels/scalar/vexpf.h.
inline __m512 v_expf(__m512 x) {
  const __m512 r = _mm512_set1_ps(0x1.8p23f);
  const __m512 z = _mm512_fmadd_ps(x, _mm512_set1_ps(0x1.715476p+0f), r);
  const __m512 n = _mm512_sub_ps(z, r);
  const __m512 b = _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.7f7d1cp-20f),
                                    _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.62e4p-1f), x));
  const __m512 u = _mm512_mul_ps(b, b);
  const __m512 j = _mm512_fmadd_ps(
      _mm512_fmadd_ps(
          _mm512_fmadd_ps(_mm512_set1_ps(0x1.0e4020p-7f), b, _mm512_set1_ps(0x1.573e2ep-5f)), u,
          _mm512_fmadd_ps(_mm512_set1_ps(0x1.555e66p-3f), b, _mm512_set1_ps(0x1.fffdb6p-2f))),
      u, _mm512_fmadd_ps(_mm512_set1_ps(0x1.ffffecp-1f), b, _mm512_set1_ps(1.0f)));
  const __m512 res = _mm512_scalef_ps(j, n);
  // |n| > 192 or NaN (unordered): 0 or inf by the sign of n, and n itself when it is NaN (the
  // reference returns n; scalef would return j's NaN, whose sign may differ).
  const __mmask16 special =
      _mm512_cmp_ps_mask(_mm512_abs_ps(n), _mm512_set1_ps(192.0f), _CMP_NLE_UQ);
  if (special == 0) return res;
  const __m512 zero = _mm512_setzero_ps();
  __m512 alt = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(n, zero, _CMP_LE_OQ),
                                    _mm512_set1_ps(__builtin_inff()), zero);
  alt = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(n, n, _CMP_UNORD_Q), alt, n);
  return _mm512_mask_blend_ps(special, res, alt);
}

inline float reduce_add_16(__m512 v) {
  // quant::reduce_add_16: upper half plus lower half, then 4 lanes, then (t0 + t2) + (t1 + t3).
  const __m256 t8 = _mm256_add_ps(_mm512_extractf32x8_ps(v, 1), _mm512_castps512_ps256(v));
  const __m128 t4 = _mm_add_ps(_mm256_extractf128_ps(t8, 1), _mm256_castps256_ps128(t8));
  const __m128 t2 = _mm_add_ps(t4, _mm_movehl_ps(t4, t4));
  return _mm_cvtss_f32(_mm_add_ss(t2, _mm_movehdup_ps(t2)));
}

}  // namespace tern::kernels::avx512

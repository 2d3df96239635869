// Helpers shared by the AVX2 kernel files (and only by them: this header is compiled with the AVX2
// flags alone, so its inline functions live in tern::kernels::avx2). The reference's 16-lane
// vectors are two 8-lane registers here: lanes 0..7 and 8..15.
#pragma once

#include <cstdint>

#include "kernels/x86/intrinsics.h"

namespace tern::kernels::avx2 {

// A mask for _mm256_maskload_ps/_mm256_maskstore_ps: lanes [0, n).
inline __m256i first_lanes(int64_t n) {
  const int c = n >= 8 ? 8 : static_cast<int>(n);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(c), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// The first n lanes at p, zeros after, and the store of the first n lanes: plain moves when n >= 8
// (vmaskmovps stores are microcoded and slow on AMD cores).
inline __m256 load_first(const float* p, int64_t n) {
  return n >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, first_lanes(n));
}
inline void store_first(float* p, int64_t n, __m256 v) {
  if (n >= 8) {
    _mm256_storeu_ps(p, v);
  } else {
    _mm256_maskstore_ps(p, first_lanes(n), v);
  }
}

// 2^e for integer lanes e in [-126, 127].
inline __m256 pow2i(__m256i e) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(e, _mm256_set1_epi32(127)), 23));
}

// ggml_v_expf, lane for lane the sequence of kernels/scalar/vexpf.h. AVX2 has no scalef: j * 2^n
// is (j * 2^(n/2)) * 2^(n - n/2); the first product is exact (|n/2| <= 96 and j is near 1), so
// only the second rounds, once, as scalef does (subnormal and overflowing results included).
inline __m256 v_expf(__m256 x) {
  const __m256 r = _mm256_set1_ps(0x1.8p23f);
  const __m256 z = _mm256_fmadd_ps(x, _mm256_set1_ps(0x1.715476p+0f), r);
  const __m256 n = _mm256_sub_ps(z, r);
  const __m256 b = _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.7f7d1cp-20f),
                                    _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.62e4p-1f), x));
  const __m256 u = _mm256_mul_ps(b, b);
  const __m256 j = _mm256_fmadd_ps(
      _mm256_fmadd_ps(
          _mm256_fmadd_ps(_mm256_set1_ps(0x1.0e4020p-7f), b, _mm256_set1_ps(0x1.573e2ep-5f)), u,
          _mm256_fmadd_ps(_mm256_set1_ps(0x1.555e66p-3f), b, _mm256_set1_ps(0x1.fffdb6p-2f))),
      u, _mm256_fmadd_ps(_mm256_set1_ps(0x1.ffffecp-1f), b, _mm256_set1_ps(1.0f)));
  const __m256 abs_n = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), n);
  // |n| > 192 or NaN (unordered): those lanes are replaced below, whatever their integers are.
  const __m256 special = _mm256_cmp_ps(abs_n, _mm256_set1_ps(192.0f), _CMP_NLE_UQ);
  const __m256i ni = _mm256_cvtps_epi32(_mm256_andnot_ps(special, n));
  const __m256i n1 = _mm256_srai_epi32(ni, 1);
  const __m256 res = _mm256_mul_ps(_mm256_mul_ps(j, pow2i(n1)), pow2i(_mm256_sub_epi32(ni, n1)));
  if (_mm256_movemask_ps(special) == 0) return res;
  const __m256 zero = _mm256_setzero_ps();
  __m256 alt =
      _mm256_blendv_ps(_mm256_set1_ps(__builtin_inff()), zero, _mm256_cmp_ps(n, zero, _CMP_LE_OQ));
  alt = _mm256_blendv_ps(alt, n, _mm256_cmp_ps(n, n, _CMP_UNORD_Q));
  return _mm256_blendv_ps(res, alt, special);
}

// quant::reduce_add_16 of the 16 lanes (lo, hi): hi + lo, then 4 lanes, then (t0 + t2) + (t1 + t3).
inline float reduce_add_16(__m256 lo, __m256 hi) {
  const __m256 t8 = _mm256_add_ps(hi, lo);
  const __m128 t4 = _mm_add_ps(_mm256_extractf128_ps(t8, 1), _mm256_castps256_ps128(t8));
  const __m128 t2 = _mm_add_ps(t4, _mm_movehl_ps(t4, t4));
  return _mm_cvtss_f32(_mm_add_ss(t2, _mm_movehdup_ps(t2)));
}

}  // namespace tern::kernels::avx2

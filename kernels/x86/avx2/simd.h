// The AVX2 vector policies of the kernels written once for both x86 ISAs: `Lanes` (floats) for
// kernels/attention_lanes.h, elementwise_lanes.h and layer_norm_lanes.h, and `Regs`
// (register wrappers) under the matmul policies of kernels/x86/tq2_0_lut.h and q4_0_orders.h.
// Included only by AVX2 kernel files; everything here has internal linkage. The reference's 16-lane
// vectors are two 8-lane registers here: lanes 0..7 and 8..15.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/layer_norm_lanes.h"
#include "kernels/x86/avx2/gelu8.h"
#include "kernels/x86/intrinsics.h"

namespace tern::kernels::avx2 {
namespace {

// 2^e for integer lanes e in [-126, 127].
inline __m256 pow2i(__m256i e) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(e, _mm256_set1_epi32(127)), 23));
}

struct Lanes {
  using V = __m256;
  using DV = __m256d;  // half of V's lanes as doubles
  static constexpr int64_t kWidth = 8;
  // Lanes [0, t); t >= kWidth is every lane.
  using Tail = int64_t;

  static Tail tail(int64_t n) { return n; }
  static bool full(Tail t) { return t >= kWidth; }
  // A mask for _mm256_maskload_ps/_mm256_maskstore_ps: lanes [0, n).
  static __m256i mask(int64_t n) {
    const int c = n >= 8 ? 8 : static_cast<int>(n);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(c), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }

  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  // The first n lanes at p, zeros after, and the store of the first n lanes: plain moves when
  // n >= 8 (vmaskmovps stores are microcoded and slow on AMD cores).
  static V load_n(const float* p, Tail n) {
    return n >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, mask(n));
  }
  static void store_n(float* p, V v, Tail n) {
    if (n >= 8) {
      _mm256_storeu_ps(p, v);
    } else {
      _mm256_maskstore_ps(p, mask(n), v);
    }
  }
  // load_n with `fill` in the lanes past n.
  static V load_n_or(const float* p, Tail n, V fill) {
    return n >= 8 ? _mm256_loadu_ps(p)
                  : _mm256_blendv_ps(fill, load_n(p, n), _mm256_castsi256_ps(mask(n)));
  }
  // v with the lanes past n cleared.
  static V keep_n(V v, Tail n) {
    return n >= 8 ? v : _mm256_and_ps(v, _mm256_castsi256_ps(mask(n)));
  }
  static V load_h(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  // The first n halves of p, zeros after.
  static V load_h(const uint16_t* p, Tail n) {
    if (n >= 8) return load_h(p);
    uint16_t tmp[8] = {};
    std::memcpy(tmp, p, static_cast<size_t>(n) * sizeof(uint16_t));
    return load_h(tmp);
  }
  static V round_fp16(V v) {
    return _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
  }

  static V zero() { return _mm256_setzero_ps(); }
  static V splat(float f) { return _mm256_set1_ps(f); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V div(V a, V b) { return _mm256_div_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V fnma(V a, V b, V c) { return _mm256_fnmadd_ps(a, b, c); }
  static V max(V a, V b) { return _mm256_max_ps(a, b); }
  static float sqrt(float f) { return _mm_cvtss_f32(_mm_sqrt_ss(_mm_set_ss(f))); }
  static V gelu(V v, const float* table) { return gelu8(v, table); }

  // The largest lane (any order: a max is exact).
  static float hmax(V v) {
    __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    return _mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4)));
  }

  // quant::reduce_add_16 of the 16 lanes (lo, hi): hi + lo, then 4 lanes, then
  // (t0 + t2) + (t1 + t3).
  static float reduce_add_16(const V (&v)[2]) {
    const __m256 t8 = _mm256_add_ps(v[1], v[0]);
    const __m128 t4 = _mm_add_ps(_mm256_extractf128_ps(t8, 1), _mm256_castps256_ps128(t8));
    const __m128 t2 = _mm_add_ps(t4, _mm_movehl_ps(t4, t4));
    return _mm_cvtss_f32(_mm_add_ss(t2, _mm_movehdup_ps(t2)));
  }

  // Lanes as doubles and back.
  static void widen(V v, DV (&d)[2]) {
    d[0] = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
    d[1] = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
  }
  static V narrow(const DV (&d)[2]) {
    return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm256_cvtpd_ps(d[0])),
                                _mm256_cvtpd_ps(d[1]), 1);
  }
  static DV add(DV a, DV b) { return _mm256_add_pd(a, b); }

  // ggml_v_expf's last step (elementwise_lanes.h's v_expf): j * 2^n as scalef rounds it, and its
  // overflow, underflow and NaN lanes. AVX2 has no scalef: j * 2^n is (j * 2^(n/2)) * 2^(n - n/2);
  // the first product is exact (|n/2| <= 96 and j is near 1), so only the second rounds, once, as
  // scalef does (subnormal and overflowing results included).
  static V scale_exp2(V j, V n) {
    const __m256 abs_n = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), n);
    // |n| > 192 or NaN (unordered): those lanes are replaced below, whatever their integers are.
    const __m256 special = _mm256_cmp_ps(abs_n, _mm256_set1_ps(192.0f), _CMP_NLE_UQ);
    const __m256i ni = _mm256_cvtps_epi32(_mm256_andnot_ps(special, n));
    const __m256i n1 = _mm256_srai_epi32(ni, 1);
    const __m256 res = _mm256_mul_ps(_mm256_mul_ps(j, pow2i(n1)), pow2i(_mm256_sub_epi32(ni, n1)));
    if (_mm256_movemask_ps(special) == 0) return res;
    const __m256 zero = _mm256_setzero_ps();
    __m256 alt = _mm256_blendv_ps(_mm256_set1_ps(__builtin_inff()), zero,
                                  _mm256_cmp_ps(n, zero, _CMP_LE_OQ));
    alt = _mm256_blendv_ps(alt, n, _mm256_cmp_ps(n, n, _CMP_UNORD_Q));
    return _mm256_blendv_ps(res, alt, special);
  }

  template <bool kNonNegative>
  static layer_norm_lanes::ChunkSums chunk_sums(const V (&d)[layer_norm_lanes::kChunk / kWidth]) {
    const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff);
    const __m256i exp_mask = _mm256_set1_epi32(0x7f800000);
    const __m256i min_exp = _mm256_set1_epi32(0x00800000);  // subnormals: the step of exponent 1
    __m256i e = exp_mask;
    __m256d sum = _mm256_setzero_pd();
    __m256 abs_sum = _mm256_setzero_ps();
    for (const V& v : d) {
      const __m256i a = _mm256_and_si256(_mm256_castps_si256(v), abs_mask);
      // The exponent field (at least 1) of a nonzero element; 255 for a zero.
      const __m256i zero = _mm256_cmpeq_epi32(a, _mm256_setzero_si256());
      const __m256i field = _mm256_max_epu32(_mm256_and_si256(a, exp_mask), min_exp);
      e = _mm256_min_epu32(e, _mm256_or_si256(field, _mm256_and_si256(zero, exp_mask)));
      sum = _mm256_add_pd(sum, _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)),
                                             _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1))));
      if (!kNonNegative) abs_sum = _mm256_add_ps(abs_sum, _mm256_castsi256_ps(a));
    }
    __m128i e4 = _mm_min_epu32(_mm256_castsi256_si128(e), _mm256_extracti128_si256(e, 1));
    e4 = _mm_min_epu32(e4, _mm_shuffle_epi32(e4, 0x4e));
    e4 = _mm_min_epu32(e4, _mm_shuffle_epi32(e4, 0xb1));
    const __m128d q = _mm_add_pd(_mm256_castpd256_pd128(sum), _mm256_extractf128_pd(sum, 1));
    __m128 r = _mm_add_ps(_mm256_castps256_ps128(abs_sum), _mm256_extractf128_ps(abs_sum, 1));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    return {.sum = _mm_cvtsd_f64(_mm_add_sd(q, _mm_unpackhi_pd(q, q))),
            .min_field = static_cast<int>(static_cast<uint32_t>(_mm_cvtsi128_si32(e4)) >> 23),
            .abs_sum = _mm_cvtss_f32(_mm_add_ss(r, _mm_movehdup_ps(r)))};
  }
};

// Integer and float register wrappers of the matmul policies (kernels/x86/tq2_0_lut.h,
// kernels/x86/q4_0_orders.h).
struct Regs {
  using I = __m256i;
  using F = __m256;
  static I loadu(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const I*>(p)); }
  static I load(const uint8_t* p) { return _mm256_load_si256(reinterpret_cast<const I*>(p)); }
  static I splat8(char v) { return _mm256_set1_epi8(v); }
  static I and_(I a, I b) { return _mm256_and_si256(a, b); }
  static I srli16(I a, int n) { return _mm256_srli_epi16(a, n); }
  static I shuffle8(I t, I i) { return _mm256_shuffle_epi8(t, i); }
  static I add16(I a, I b) { return _mm256_add_epi16(a, b); }
  static I add32(I a, I b) { return _mm256_add_epi32(a, b); }
  static I unpacklo8(I a, I b) { return _mm256_unpacklo_epi8(a, b); }
  static I unpackhi8(I a, I b) { return _mm256_unpackhi_epi8(a, b); }
  static I unpacklo16(I a, I b) { return _mm256_unpacklo_epi16(a, b); }
  static I unpackhi16(I a, I b) { return _mm256_unpackhi_epi16(a, b); }
  static I unpacklo32(I a, I b) { return _mm256_unpacklo_epi32(a, b); }
  static I unpackhi32(I a, I b) { return _mm256_unpackhi_epi32(a, b); }
  static I unpacklo64(I a, I b) { return _mm256_unpacklo_epi64(a, b); }
  static I unpackhi64(I a, I b) { return _mm256_unpackhi_epi64(a, b); }
  static F fzero() { return _mm256_setzero_ps(); }
  static F fsplat(float f) { return _mm256_set1_ps(f); }
  static F fadd(F a, F b) { return _mm256_add_ps(a, b); }
  static F fmul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F fma(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static F to_float(I v) { return _mm256_cvtepi32_ps(v); }
};

}  // namespace
}  // namespace tern::kernels::avx2

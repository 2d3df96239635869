// The AVX-512 vector policies of the kernels written once for both x86 ISAs: `Lanes` (floats) for
// kernels/attention_lanes.h, elementwise_lanes.h and layer_norm_lanes.h, and `Regs`
// (register wrappers) under the matmul policies of kernels/x86/tq2_0_lut.h and q4_0_orders.h.
// Included only by AVX-512 kernel files; everything here has internal linkage.
#pragma once

#include <cstdint>

#include "kernels/layer_norm_lanes.h"
#include "kernels/x86/avx512/gelu16.h"
#include "kernels/x86/intrinsics.h"

namespace tern::kernels::avx512 {
namespace {

struct Lanes {
  using V = __m512;
  using DV = __m512d;  // half of V's lanes as doubles
  static constexpr int64_t kWidth = 16;
  // Lanes [0, n) of a 16-lane vector.
  using Tail = __mmask16;

  static Tail tail(int64_t n) {
    return n >= 16 ? __mmask16{0xffff} : static_cast<__mmask16>((1u << n) - 1u);
  }
  static bool full(Tail m) { return m == 0xffff; }

  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V load_n(const float* p, Tail m) { return _mm512_maskz_loadu_ps(m, p); }
  static void store_n(float* p, V v, Tail m) { _mm512_mask_storeu_ps(p, m, v); }
  // The first k floats (kernels/layer_norm_lanes.h's interface).
  static V load_n(const float* p, int64_t k) { return load_n(p, tail(k)); }
  static void store_n(float* p, V v, int64_t k) { store_n(p, v, tail(k)); }
  // load_n with `fill` in the lanes past the tail.
  static V load_n_or(const float* p, Tail m, V fill) { return _mm512_mask_loadu_ps(fill, m, p); }
  // v with the lanes past the tail cleared.
  static V keep_n(V v, Tail m) { return _mm512_maskz_mov_ps(m, v); }
  static V load_h(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static V load_h(const uint16_t* p, Tail m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
  }
  static V round_fp16(V v) {
    return _mm512_cvtph_ps(_mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
  }

  static V zero() { return _mm512_setzero_ps(); }
  static V splat(float f) { return _mm512_set1_ps(f); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V div(V a, V b) { return _mm512_div_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V fnma(V a, V b, V c) { return _mm512_fnmadd_ps(a, b, c); }
  static V max(V a, V b) { return _mm512_max_ps(a, b); }
  static float sqrt(float f) { return _mm_cvtss_f32(_mm_sqrt_ss(_mm_set_ss(f))); }
  static V gelu(V v, const float* table) { return gelu16(v, table); }

  // Eight interleaved RoPE pairs (x86/rope_pairs.h's rope4, twice as wide).
  static void rope8(float* v, const float* cs) {
    const __m512 xv = _mm512_loadu_ps(v);
    const __m512 c = _mm512_loadu_ps(cs);
    const __m512 x1s = _mm512_mul_ps(_mm512_movehdup_ps(xv), _mm512_permute_ps(c, 0xb1));
    _mm512_storeu_ps(v, _mm512_fmaddsub_ps(_mm512_moveldup_ps(xv), c, x1s));
  }

  // The largest lane (any order: a max is exact).
  static float hmax(V v) { return _mm512_reduce_max_ps(v); }

  // quant::reduce_add_16: upper half plus lower half, then 4 lanes, then (t0 + t2) + (t1 + t3).
  static float reduce_add_16(const V (&v)[1]) {
    const __m256 t8 = _mm256_add_ps(_mm512_extractf32x8_ps(v[0], 1), _mm512_castps512_ps256(v[0]));
    const __m128 t4 = _mm_add_ps(_mm256_extractf128_ps(t8, 1), _mm256_castps256_ps128(t8));
    const __m128 t2 = _mm_add_ps(t4, _mm_movehl_ps(t4, t4));
    return _mm_cvtss_f32(_mm_add_ss(t2, _mm_movehdup_ps(t2)));
  }

  // Lanes as doubles and back.
  static void widen(V v, DV (&d)[2]) {
    d[0] = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
    d[1] = _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1));
  }
  static V narrow(const DV (&d)[2]) {
    return _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(d[0])), _mm512_cvtpd_ps(d[1]),
                              1);
  }
  static DV add(DV a, DV b) { return _mm512_add_pd(a, b); }

  // ggml_v_expf's last step (elementwise_lanes.h's v_expf): j * 2^n, and its overflow, underflow
  // and NaN lanes.
  static V scale_exp2(V j, V n) {
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

  template <bool kNonNegative>
  static layer_norm_lanes::ChunkSums chunk_sums(const V (&d)[layer_norm_lanes::kChunk / kWidth]) {
    const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff);
    const __m512i exp_mask = _mm512_set1_epi32(0x7f800000);
    const __m512i min_exp = _mm512_set1_epi32(0x00800000);  // subnormals: the step of exponent 1
    __m512i e = exp_mask;
    __m512d sum = _mm512_setzero_pd();
    __m512 abs_sum = _mm512_setzero_ps();
    for (const V& v : d) {
      const __m512i a = _mm512_and_si512(_mm512_castps_si512(v), abs_mask);
      e = _mm512_mask_min_epu32(e, _mm512_test_epi32_mask(a, a), e,
                                _mm512_max_epu32(_mm512_and_si512(a, exp_mask), min_exp));
      sum = _mm512_add_pd(sum, _mm512_add_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(v)),
                                             _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1))));
      if (!kNonNegative) abs_sum = _mm512_add_ps(abs_sum, _mm512_castsi512_ps(a));
    }
    const __m256d h = _mm256_add_pd(_mm512_castpd512_pd256(sum), _mm512_extractf64x4_pd(sum, 1));
    const __m128d q = _mm_add_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1));
    return {.sum = _mm_cvtsd_f64(_mm_add_sd(q, _mm_unpackhi_pd(q, q))),
            .min_field = static_cast<int>(_mm512_reduce_min_epu32(e) >> 23),
            .abs_sum = kNonNegative ? 0.0f : _mm512_reduce_add_ps(abs_sum)};
  }
};

// Integer and float register wrappers of the matmul policies (kernels/x86/tq2_0_lut.h,
// kernels/x86/q4_0_orders.h).
struct Regs {
  using I = __m512i;
  using F = __m512;
  static I loadu(const uint8_t* p) { return _mm512_loadu_si512(p); }
  static I load(const uint8_t* p) { return _mm512_load_si512(p); }
  static I splat8(char v) { return _mm512_set1_epi8(v); }
  static I and_(I a, I b) { return _mm512_and_si512(a, b); }
  static I srli16(I a, int n) { return _mm512_srli_epi16(a, n); }
  static I shuffle8(I t, I i) { return _mm512_shuffle_epi8(t, i); }
  static I add16(I a, I b) { return _mm512_add_epi16(a, b); }
  static I add32(I a, I b) { return _mm512_add_epi32(a, b); }
  static I unpacklo8(I a, I b) { return _mm512_unpacklo_epi8(a, b); }
  static I unpackhi8(I a, I b) { return _mm512_unpackhi_epi8(a, b); }
  static I unpacklo16(I a, I b) { return _mm512_unpacklo_epi16(a, b); }
  static I unpackhi16(I a, I b) { return _mm512_unpackhi_epi16(a, b); }
  static I unpacklo32(I a, I b) { return _mm512_unpacklo_epi32(a, b); }
  static I unpackhi32(I a, I b) { return _mm512_unpackhi_epi32(a, b); }
  static I unpacklo64(I a, I b) { return _mm512_unpacklo_epi64(a, b); }
  static I unpackhi64(I a, I b) { return _mm512_unpackhi_epi64(a, b); }
  static F fzero() { return _mm512_setzero_ps(); }
  static F fsplat(float f) { return _mm512_set1_ps(f); }
  static F fadd(F a, F b) { return _mm512_add_ps(a, b); }
  static F fmul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F fma(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static F to_float(I v) { return _mm512_cvtepi32_ps(v); }
};

}  // namespace
}  // namespace tern::kernels::avx512

// The AVX-512 vector of the K-quant tiles (kernels/x86/kquant_tiles.h), KQuantLanes: 64 bytes,
// two 32-element groups per step. Included by matmul_kquants.cpp and by matmul_q6_k_dense.cpp
// (built with -mavx512vbmi); internal linkage, each object keeps its own copy.
#pragma once

#include <cstdint>

#include "kernels/x86/intrinsics.h"

namespace tern::kernels::avx512 {
namespace {

struct KQuantLanes {
  using I = __m512i;
  using S = __m512i;
  static constexpr int kGroups = 2;

  static I zero() { return _mm512_setzero_si512(); }
  static I load(const uint8_t* p) { return _mm512_loadu_si512(p); }
  static I set1_8(int v) { return _mm512_set1_epi8(static_cast<char>(v)); }
  static I and_(I a, I b) { return _mm512_and_si512(a, b); }
  static I or_(I a, I b) { return _mm512_or_si512(a, b); }
  static I slli16(I v, int n) { return _mm512_slli_epi16(v, static_cast<unsigned>(n)); }
  // The offsets and shifts are constants once the step loop is unrolled: one load (broadcast,
  // whole or two halves) and at most one shift.
  static I pieces(const uint8_t* base, int off0, int sh0, int off1, int sh1) {
    const auto half = [base](int off) {
      return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(base + off));
    };
    I v;
    if (off1 == off0) {
      v = _mm512_broadcast_i64x4(half(off0));
    } else if (off1 == off0 + 32) {
      v = load(base + off0);
    } else {
      v = _mm512_inserti64x4(_mm512_castsi256_si512(half(off0)), half(off1), 1);
    }
    if (sh0 == sh1) return sh0 == 0 ? v : _mm512_srli_epi16(v, static_cast<unsigned>(sh0));
    const I counts = _mm512_inserti64x4(_mm512_set1_epi16(static_cast<int16_t>(sh0)),
                                        _mm256_set1_epi16(static_cast<int16_t>(sh1)), 1);
    return _mm512_srlv_epi16(v, counts);
  }
  static I maddubs(I u, I s) { return _mm512_maddubs_epi16(u, s); }
  static I sub16(I a, I b) { return _mm512_sub_epi16(a, b); }
  static I dot_add(I acc, I pairs, I scale) { return _mm512_dpwssd_epi32(acc, pairs, scale); }
  static __m256i fold(I v) {
    return _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
  }
  // Eight int16 scales; groups g and g + 1 in the 16-bit lanes of the low and high half.
  static S k4_scales(__m128i sc) { return _mm512_castsi128_si512(sc); }
  static I k4_scale(S s, int g) {
    const I idx = _mm512_inserti64x4(_mm512_set1_epi16(static_cast<int16_t>(g)),
                                     _mm256_set1_epi16(static_cast<int16_t>(g + 1)), 1);
    return _mm512_permutexvar_epi16(idx, s);
  }
  // Sixteen int16 scales; pair i of groups g, g + 1 takes scale 2 g + i / 8.
  static S q6_scales(__m256i sc) { return _mm512_castsi256_si512(sc); }
  static I q6_scale(S s, int g) {
    constexpr int64_t k1 = 0x0001000100010001;
    const I idx = _mm512_add_epi16(_mm512_set1_epi16(static_cast<int16_t>(2 * g)),
                                   _mm512_setr_epi64(0, 0, k1, k1, 2 * k1, 2 * k1, 3 * k1, 3 * k1));
    return _mm512_permutexvar_epi16(idx, s);
  }
  // The mins' vectors: four activation rows, one per 128-bit part.
  using MI = __m512i;
  using MF = __m512;
  static constexpr int kMinCols = 4;
  static MF zero_m() { return _mm512_setzero_ps(); }
  static MI min_row(__m128i m) { return _mm512_broadcast_i32x4(m); }
  static MI join_m(const __m128i (&p)[4]) {
    const __m256i lo = _mm256_setr_m128i(p[0], p[1]);
    const __m256i hi = _mm256_setr_m128i(p[2], p[3]);
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
  }
  static MF join_m(const float (&v)[4]) {
    const __m256 lo = _mm256_setr_m128(_mm_set1_ps(v[0]), _mm_set1_ps(v[1]));
    const __m256 hi = _mm256_setr_m128(_mm_set1_ps(v[2]), _mm_set1_ps(v[3]));
    return _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1);
  }
  static __m128 part_m(MF v, int q) {
    switch (q) {
      case 0:
        return _mm512_castps512_ps128(v);
      case 1:
        return _mm512_extractf32x4_ps(v, 1);
      case 2:
        return _mm512_extractf32x4_ps(v, 2);
      default:
        return _mm512_extractf32x4_ps(v, 3);
    }
  }
  static MI madd_m(MI a, MI b) { return _mm512_madd_epi16(a, b); }
  static MI dot_add_m(MI acc, MI a, MI b) { return _mm512_dpwssd_epi32(acc, a, b); }
  static MI add_m(MI a, MI b) { return _mm512_add_epi32(a, b); }
  template <int kImm>
  static MI shuffle_m(MI v) {
    return _mm512_shuffle_epi32(v, static_cast<_MM_PERM_ENUM>(kImm));
  }
  static MF cvt_m(MI v) { return _mm512_cvtepi32_ps(v); }
  static MF mul_m(MF a, MF b) { return _mm512_mul_ps(a, b); }
  static MF set1_m(float v) { return _mm512_set1_ps(v); }
  static MF fma_m(MF a, MF b, MF acc) { return _mm512_fmadd_ps(a, b, acc); }
};

}  // namespace
}  // namespace tern::kernels::avx512

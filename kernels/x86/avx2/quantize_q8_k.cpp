// Activation rows to Q8_K with AVX2, the same bytes as quant::quantize_row_q8_K (what the engine
// runs before every TQ2_0 and K-quant matmul): kernels/quantize_q8_k_lanes.h over the policy
// below, as AVX-512's quantize_q8_k.cpp.
//  - The largest |x| by vmaxps with the running maximum as the second operand (vmaxps returns it
//    when x is NaN), then the first element equal to it in magnitude from a compare mask.
//  - q by the reference's float steps, clamped at 127 and narrowed to int8 by truncation (AVX2
//    has no vpmovdb: the low bytes, masked, go through two unsigned packs, which then cannot
//    saturate); the bsums in int32, truncated to int16 as the reference.
#include <cstdint>

#include "kernels/quantize_q8_k_lanes.h"
#include "kernels/x86/avx2/avx2.h"
#include "kernels/x86/avx2/simd.h"
#include "kernels/x86/intrinsics.h"
#include "kernels/x86/tile_driver.h"
#include "quant/blocks.h"

namespace tern::kernels::avx2 {
namespace {

struct Q8KLanes {
  static __m256 abs8(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

  static float largest_magnitude(const float* x) {
    __m256 vmax = _mm256_setzero_ps();
    for (int i = 0; i < kQkK / 8; ++i) vmax = _mm256_max_ps(abs8(_mm256_loadu_ps(x + 8 * i)), vmax);
    return Lanes::hmax(vmax);
  }

  static float first_of_magnitude(const float* x, float amax) {
    const __m256 vamax = _mm256_set1_ps(amax);
    for (int i = 0; i < kQkK / 8; ++i) {
      const int hit =
          _mm256_movemask_ps(_mm256_cmp_ps(abs8(_mm256_loadu_ps(x + 8 * i)), vamax, _CMP_EQ_OQ));
      if (hit != 0) return x[8 * i + __builtin_ctz(static_cast<unsigned>(hit))];
    }
    return 0.0f;
  }

  static int16_t quantize16(const float* x, float iscale, int8_t* qs) {
    __m256i low[2];
    for (int h = 0; h < 2; ++h) {
      const __m256 biased =
          _mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(iscale), _mm256_loadu_ps(x + 8 * h)),
                        _mm256_set1_ps(12582912.0f));
      const __m256i v = _mm256_sub_epi32(
          _mm256_and_si256(_mm256_castps_si256(biased), _mm256_set1_epi32(0x007fffff)),
          _mm256_set1_epi32(0x00400000));
      low[h] =
          _mm256_and_si256(_mm256_min_epi32(v, _mm256_set1_epi32(127)), _mm256_set1_epi32(0xff));
    }
    // packus_epi32 works within 128-bit halves: the permute puts the 16 words in element order.
    const __m256i w = _mm256_permute4x64_epi64(_mm256_packus_epi32(low[0], low[1]), 0xd8);
    const __m128i q = _mm_packus_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(qs), q);
    return static_cast<int16_t>(
        x86::hsum_epi32(_mm256_madd_epi16(_mm256_cvtepi8_epi16(q), _mm256_set1_epi16(1))));
  }
};

}  // namespace

void quantize_row_q8_K(const float* src, void* dst, int64_t n) {
  q8_k_lanes::quantize_row_q8_K<Q8KLanes>(src, dst, n);
}

}  // namespace tern::kernels::avx2

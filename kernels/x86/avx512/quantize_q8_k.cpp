// Activation rows to Q8_K with AVX-512, the same bytes as quant::quantize_row_q8_K (what the
// engine runs before every TQ2_0 and K-quant matmul; scalar, it was ~5% of a pp128 profile).
//
// The reference's steps, each reproduced exactly:
//  - the scale comes from the first element of largest magnitude (strict > over |x|, so NaN is
//    never picked): the block's largest |x| by vmaxps with the running maximum as the second
//    operand (vmaxps returns it when x is NaN), then the first element equal to it in magnitude;
//  - q = nearest_int(iscale * x) by the same float steps: one multiply, then + 1.5 * 2^23 and the
//    low mantissa bits (bit-exact even for inf or NaN products), clamped at 127, stored as int8;
//  - bsums sum the stored int8 values, 16 per sum, in int32, truncated to int16 as the reference.
#include <cstdint>
#include <cstring>

#include "kernels/x86/avx512/avx512.h"
#include "kernels/x86/intrinsics.h"
#include "quant/blocks.h"

namespace tern::kernels::avx512 {

void quantize_row_q8_K(const float* src, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockQ8_K*>(dst);
  const __m512 magic = _mm512_set1_ps(12582912.0f);
  const __m512i mantissa = _mm512_set1_epi32(0x007fffff);
  const __m512i half = _mm512_set1_epi32(0x00400000);
  const __m512i top = _mm512_set1_epi32(127);
  for (int64_t b = 0; b < n / kQkK; ++b) {
    const float* x = src + b * kQkK;
    BlockQ8_K& y = blocks[b];
    __m512 vmax = _mm512_setzero_ps();
    for (int i = 0; i < kQkK / 16; ++i)
      vmax = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + 16 * i)), vmax);
    const float amax = _mm512_reduce_max_ps(vmax);
    if (amax == 0.0f) {
      y.d = 0.0f;
      std::memset(y.qs, 0, sizeof y.qs);
      std::memset(y.bsums, 0, sizeof y.bsums);
      continue;
    }
    float max = 0.0f;
    const __m512 vamax = _mm512_set1_ps(amax);
    for (int i = 0; i < kQkK / 16; ++i) {
      const __mmask16 hit =
          _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(x + 16 * i)), vamax, _CMP_EQ_OQ);
      if (hit != 0) {
        max = x[16 * i + __builtin_ctz(hit)];
        break;
      }
    }
    const float iscale = -127.0f / max;
    const __m512 vscale = _mm512_set1_ps(iscale);
    for (int i = 0; i < kQkK / 16; ++i) {
      const __m512 biased =
          _mm512_add_ps(_mm512_mul_ps(vscale, _mm512_loadu_ps(x + 16 * i)), magic);
      const __m512i v =
          _mm512_sub_epi32(_mm512_and_si512(_mm512_castps_si512(biased), mantissa), half);
      const __m128i q = _mm512_cvtepi32_epi8(_mm512_min_epi32(v, top));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(y.qs + 16 * i), q);
      y.bsums[i] = static_cast<int16_t>(_mm512_reduce_add_epi32(_mm512_cvtepi8_epi32(q)));
    }
    y.d = 1.0f / iscale;
  }
}

}  // namespace tern::kernels::avx512

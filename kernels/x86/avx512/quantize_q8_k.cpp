// Activation rows to Q8_K with AVX-512, the same bytes as quant::quantize_row_q8_K (what the
// engine runs before every TQ2_0 and K-quant matmul; scalar, it was ~5% of a pp128 profile):
// kernels/quantize_q8_k_lanes.h over the policy below.
//  - The largest |x| by vmaxps with the running maximum as the second operand (vmaxps returns it
//    when x is NaN), then the first element equal to it in magnitude from a compare mask.
//  - q by the reference's float steps, clamped at 127, narrowed to int8 by truncation (vpmovdb);
//    the bsums in int32, truncated to int16 as the reference.
#include <cstdint>

#include "kernels/quantize_q8_k_lanes.h"
#include "kernels/x86/avx512/avx512.h"
#include "kernels/x86/intrinsics.h"
#include "quant/blocks.h"

namespace tern::kernels::avx512 {
namespace {

struct Q8KLanes {
  static float largest_magnitude(const float* x) {
    __m512 vmax = _mm512_setzero_ps();
    for (int i = 0; i < kQkK / 16; ++i)
      vmax = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + 16 * i)), vmax);
    return _mm512_reduce_max_ps(vmax);
  }

  static float first_of_magnitude(const float* x, float amax) {
    const __m512 vamax = _mm512_set1_ps(amax);
    for (int i = 0; i < kQkK / 16; ++i) {
      const __mmask16 hit =
          _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(x + 16 * i)), vamax, _CMP_EQ_OQ);
      if (hit != 0) return x[16 * i + __builtin_ctz(hit)];
    }
    return 0.0f;
  }

  static int16_t quantize16(const float* x, float iscale, int8_t* qs) {
    const __m512 biased = _mm512_add_ps(_mm512_mul_ps(_mm512_set1_ps(iscale), _mm512_loadu_ps(x)),
                                        _mm512_set1_ps(12582912.0f));
    const __m512i v = _mm512_sub_epi32(
        _mm512_and_si512(_mm512_castps_si512(biased), _mm512_set1_epi32(0x007fffff)),
        _mm512_set1_epi32(0x00400000));
    const __m128i q = _mm512_cvtepi32_epi8(_mm512_min_epi32(v, _mm512_set1_epi32(127)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(qs), q);
    return static_cast<int16_t>(_mm512_reduce_add_epi32(_mm512_cvtepi8_epi32(q)));
  }
};

}  // namespace

void quantize_row_q8_K(const float* src, void* dst, int64_t n) {
  q8_k_lanes::quantize_row_q8_K<Q8KLanes>(src, dst, n);
}

}  // namespace tern::kernels::avx512

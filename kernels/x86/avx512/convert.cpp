// f32 -> fp16 rows with AVX-512 vcvtps2ph, bit-identical to the scalar reference (quant/fp16.h).
// Rounding and the NaN fix-up as in x86/avx2/convert.cpp: finite floats round exactly like the
// reference; a NaN keeps its sign and becomes the canonical quiet NaN 0x7e00 by clearing payload
// bits 0..8 of the converted half.
#include <cstddef>
#include <cstdint>

#include "kernels/x86/avx512/avx512.h"
#include "kernels/x86/intrinsics.h"

namespace tern::kernels::avx512 {
namespace {

// 16 floats to 16 halves with the reference's NaN.
__m256i to_fp16(__m512 v) {
  const __m256i h = _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT);
  const __mmask16 nan = _mm256_cmpgt_epi16_mask(_mm256_and_si256(h, _mm256_set1_epi16(0x7fff)),
                                                _mm256_set1_epi16(0x7c00));
  const __m256i canonical = _mm256_and_si256(h, _mm256_set1_epi16(static_cast<int16_t>(0xfe00)));
  return _mm256_mask_mov_epi16(h, nan, canonical);
}

}  // namespace

void fp32_to_fp16_row(const float* x, uint16_t* y, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), to_fp16(_mm512_loadu_ps(x + i)));
  }
  if (i == n) return;
  const auto m = static_cast<__mmask16>((1u << (n - i)) - 1);
  _mm256_mask_storeu_epi16(y + i, m, to_fp16(_mm512_maskz_loadu_ps(m, x + i)));
}

}  // namespace tern::kernels::avx512

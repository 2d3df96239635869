// f32 -> fp16 rows with F16C, bit-identical to the scalar reference (quant/fp16.h).
//
// vcvtps2ph with round-to-nearest-even rounds every finite float, subnormal halves and the
// overflow to infinity included, exactly as the reference's integer code does. Only NaNs differ:
// F16C keeps the sign and the top payload bits (quieted), the reference returns the sign and one
// canonical quiet NaN (0x7e00, ggml's software conversion). A converted NaN is sign | 0x7e00 |
// payload bits 0..8, so clearing bits 0..8 of NaN lanes gives the reference's half.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/x86/avx2/avx2.h"
#include "kernels/x86/intrinsics.h"

namespace tern::kernels::avx2 {
namespace {

// 8 floats to 8 halves with the reference's NaN.
__m128i to_fp16(__m256 v) {
  const __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT);
  // Halves are NaN when |h| > 0x7c00; |h| <= 0x7fff, so the signed compare is exact.
  const __m128i nan =
      _mm_cmpgt_epi16(_mm_and_si128(h, _mm_set1_epi16(0x7fff)), _mm_set1_epi16(0x7c00));
  return _mm_andnot_si128(_mm_and_si128(nan, _mm_set1_epi16(0x01ff)), h);
}

}  // namespace

void fp32_to_fp16_row(const float* x, uint16_t* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), to_fp16(_mm256_loadu_ps(x + i)));
  }
  if (i == n) return;
  // Tail: load only the remaining floats (the rest of the row may be unmapped).
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n - i)), lane);
  uint16_t out[8];
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), to_fp16(_mm256_maskload_ps(x + i, mask)));
  std::memcpy(y + i, out, static_cast<size_t>(n - i) * sizeof(uint16_t));
}

}  // namespace tern::kernels::avx2

// GELU (a gather from ggml's fp16 table) and squared ReLU with AVX-512, bit-identical to
// scalar::gelu and scalar::relu_sqr.
#include <cstdint>

#include "kernels/x86/avx512/avx512.h"
#include "kernels/x86/avx512/gelu16.h"
#include "kernels/x86/intrinsics.h"

namespace tern::kernels::avx512 {
namespace {

// max(x, 0) returns its second operand unless x > 0: the reference's x > 0 ? x : 0 for -0 and
// NaN too.
__m512 relu_sqr16(__m512 x) {
  const __m512 r = _mm512_max_ps(x, _mm512_setzero_ps());
  return _mm512_mul_ps(r, r);
}

__mmask16 tail_mask(int64_t left) {
  return left >= 16 ? __mmask16{0xffff} : static_cast<__mmask16>((1u << left) - 1);
}

}  // namespace

void gelu(const float* x, float* y, int64_t n) {
  const float* table = gelu_fp16_table();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, gelu16(_mm512_loadu_ps(x + i), table));
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(y + i, m, gelu16(_mm512_maskz_loadu_ps(m, x + i), table));
  }
}

void relu_sqr(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, relu_sqr16(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(y + i, m, relu_sqr16(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

}  // namespace tern::kernels::avx512

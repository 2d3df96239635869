// GELU (a gather from ggml's fp16 table) and squared ReLU with AVX2, bit-identical to
// scalar::gelu and scalar::relu_sqr.
#include <cstdint>

#include "kernels/x86/avx2/avx2.h"
#include "kernels/x86/avx2/gelu8.h"
#include "kernels/x86/intrinsics.h"

namespace tern::kernels::avx2 {
namespace {

// max(x, 0) returns its second operand unless x > 0: the reference's x > 0 ? x : 0 for -0 and
// NaN too.
__m256 relu_sqr8(__m256 x) {
  const __m256 r = _mm256_max_ps(x, _mm256_setzero_ps());
  return _mm256_mul_ps(r, r);
}

// Lanes [0, left) of a row tail: maskload/maskstore read and write nothing else.
__m256i tail_mask(int64_t left) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(left)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

}  // namespace

void gelu(const float* x, float* y, int64_t n) {
  const float* table = gelu_fp16_table();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, gelu8(_mm256_loadu_ps(x + i), table));
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    _mm256_maskstore_ps(y + i, m, gelu8(_mm256_maskload_ps(x + i, m), table));
  }
}

void relu_sqr(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, relu_sqr8(_mm256_loadu_ps(x + i)));
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    _mm256_maskstore_ps(y + i, m, relu_sqr8(_mm256_maskload_ps(x + i, m)));
  }
}

}  // namespace tern::kernels::avx2

// GELU (ggml's fp16 table, gelu4.h) and squared ReLU with NEON, bit-identical to scalar::gelu and
// scalar::relu_sqr; the n % 4 tail goes through the reference itself. fmax would not do for the
// ReLU: it returns NaN for a NaN, where the reference's x > 0 ? x : 0 gives +0, so it is a compare
// and a select.
#include <arm_neon.h>

#include <cstdint>

#include "kernels/arm/neon/gelu4.h"
#include "kernels/arm/neon/neon.h"
#include "kernels/scalar/scalar.h"

namespace tern::kernels::neon {
namespace {

float32x4_t relu_sqr4(float32x4_t x) {
  const float32x4_t zero = vdupq_n_f32(0.0f);
  const float32x4_t r = vbslq_f32(vcgtq_f32(x, zero), x, zero);
  return vmulq_f32(r, r);
}

}  // namespace

void gelu(const float* x, float* y, int64_t n) {
  const float* table = gelu_fp16_table();
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, gelu4(vld1q_f32(x + i), table));
  if (i < n) scalar::gelu(x + i, y + i, n - i);
}

void relu_sqr(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, relu_sqr4(vld1q_f32(x + i)));
  if (i < n) scalar::relu_sqr(x + i, y + i, n - i);
}

}  // namespace tern::kernels::neon

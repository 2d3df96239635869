// SiLU-gated multiply with NEON, bit-identical to scalar::silu_mul: full groups of 16 from the
// start of the row through ggml's vectorised exp (scalar/vexpf.h) four lanes at a time, the n % 16
// tail through the reference itself (libm's expf).
//
// Theory of operation. Every fused step of ggml_v_expf is a vfmaq/vfmsq here (fma(-n, c, x) and
// x - n * c fused are the same operation), every separate one a separate instruction, in the same
// order. Only _mm512_scalef_ps has no NEON counterpart: j * 2^n rounded once, n an integer in
// [-192, 192]. Here it is (j * 2^(n - n/2)) * 2^(n/2): both powers are normal floats, the first
// product is exact (j is near 1), so the second is the only rounding, subnormal results included.
#include <arm_neon.h>

#include <cstdint>

#include "kernels/arm/neon/neon.h"
#include "kernels/scalar/scalar.h"

namespace tern::kernels::neon {
namespace {

// 2^k for integer k in [-126, 127].
float32x4_t pow2(int32x4_t k) {
  return vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(k, vdupq_n_s32(127)), 23));
}

float32x4_t v_expf(float32x4_t x) {
  const float32x4_t r = vdupq_n_f32(0x1.8p23f);
  const float32x4_t z = vfmaq_f32(r, x, vdupq_n_f32(0x1.715476p+0f));
  const float32x4_t n = vsubq_f32(z, r);
  const float32x4_t b =
      vfmsq_f32(vfmsq_f32(x, n, vdupq_n_f32(0x1.62e4p-1f)), n, vdupq_n_f32(0x1.7f7d1cp-20f));
  const float32x4_t u = vmulq_f32(b, b);
  const float32x4_t p3 = vfmaq_f32(vdupq_n_f32(0x1.573e2ep-5f), vdupq_n_f32(0x1.0e4020p-7f), b);
  const float32x4_t p1 = vfmaq_f32(vdupq_n_f32(0x1.fffdb6p-2f), vdupq_n_f32(0x1.555e66p-3f), b);
  const float32x4_t p0 = vfmaq_f32(vdupq_n_f32(1.0f), vdupq_n_f32(0x1.ffffecp-1f), b);
  const float32x4_t j = vfmaq_f32(p0, vfmaq_f32(p1, p3, u), u);

  // j * 2^n for |n| <= 192 (n is an integer there; elsewhere the lane is replaced below).
  const float32x4_t n_clamped = vminq_f32(vmaxq_f32(n, vdupq_n_f32(-192.0f)), vdupq_n_f32(192.0f));
  const int32x4_t ni = vcvtq_s32_f32(n_clamped);
  const int32x4_t half = vshrq_n_s32(ni, 1);  // floor(n / 2)
  const float32x4_t scaled = vmulq_f32(vmulq_f32(j, pow2(vsubq_s32(ni, half))), pow2(half));

  // |n| > 192: 0 below, infinity above; NaN stays n.
  const float32x4_t zero = vdupq_n_f32(0.0f);
  const float32x4_t out_of_range =
      vbslq_f32(vcleq_f32(n, zero), zero, vdupq_n_f32(__builtin_inff()));
  float32x4_t e = vbslq_f32(vcagtq_f32(n, vdupq_n_f32(192.0f)), out_of_range, scaled);
  return vbslq_f32(vceqq_f32(n, n), e, n);
}

}  // namespace

void silu_mul(const float* gate, const float* up, float* out, int64_t n) {
  const int64_t n_vec = n / 16 * 16;
  const float32x4_t one = vdupq_n_f32(1.0f);
  const float32x4_t zero = vdupq_n_f32(0.0f);
  for (int64_t i = 0; i < n_vec; i += 4) {
    const float32x4_t g = vld1q_f32(gate + i);
    // ggml_v_silu: x / (1 + v_expf(0 - x)), then the separate product with up.
    const float32x4_t silu = vdivq_f32(g, vaddq_f32(one, v_expf(vsubq_f32(zero, g))));
    vst1q_f32(out + i, vmulq_f32(silu, vld1q_f32(up + i)));
  }
  if (n_vec < n) scalar::silu_mul(gate + n_vec, up + n_vec, out + n_vec, n - n_vec);
}

}  // namespace tern::kernels::neon

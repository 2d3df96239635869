// Activation rows to Q8_K with NEON, the same bytes as quant::quantize_row_q8_K (what the engine
// runs before every TQ2_0 and K-quant matmul).
//
// The reference's steps, each reproduced exactly:
//  - the scale comes from the first element of largest magnitude (strict > over |x|, so NaN is
//    never picked): the block's largest |x| by a compare and select per lane (fmaxnm would turn a
//    signalling NaN into a NaN maximum), then the first element equal to it in magnitude;
//  - q = nearest_int(iscale * x) by the same float steps: one multiply, then + 1.5 * 2^23 and the
//    low mantissa bits (bit-exact even for inf or NaN products), clamped at 127, stored as int8
//    (the low byte, as the reference's conversion);
//  - bsums sum the stored int8 values, 16 per sum (exact in int16).
#include <arm_neon.h>

#include <cstdint>
#include <cstring>

#include "kernels/arm/neon/neon.h"
#include "quant/blocks.h"

namespace tern::kernels::neon {

void quantize_row_q8_K(const float* src, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockQ8_K*>(dst);
  const float32x4_t magic = vdupq_n_f32(12582912.0f);
  const int32x4_t mantissa = vdupq_n_s32(0x007fffff);
  const int32x4_t half = vdupq_n_s32(0x00400000);
  const int32x4_t top = vdupq_n_s32(127);
  for (int64_t b = 0; b < n / kQkK; ++b) {
    const float* x = src + b * kQkK;
    BlockQ8_K& y = blocks[b];
    float32x4_t vmax = vdupq_n_f32(0.0f);
    for (int i = 0; i < kQkK; i += 4) {
      const float32x4_t a = vabsq_f32(vld1q_f32(x + i));
      vmax = vbslq_f32(vcgtq_f32(a, vmax), a, vmax);
    }
    const float amax = vmaxvq_f32(vmax);
    if (amax == 0.0f) {
      y.d = 0.0f;
      std::memset(y.qs, 0, sizeof y.qs);
      std::memset(y.bsums, 0, sizeof y.bsums);
      continue;
    }
    float max = 0.0f;
    const float32x4_t vamax = vdupq_n_f32(amax);
    for (int i = 0; i < kQkK; i += 4) {
      if (vmaxvq_u32(vceqq_f32(vabsq_f32(vld1q_f32(x + i)), vamax)) == 0) continue;
      int j = i;
      while (!(x[j] == amax || x[j] == -amax)) ++j;
      max = x[j];
      break;
    }
    const float iscale = -127.0f / max;
    const float32x4_t vscale = vdupq_n_f32(iscale);
    for (int g = 0; g < kQkK; g += 16) {
      int16x4_t q16[4];
      for (int h = 0; h < 4; ++h) {
        const float32x4_t biased = vaddq_f32(vmulq_f32(vscale, vld1q_f32(x + g + 4 * h)), magic);
        const int32x4_t v = vsubq_s32(vandq_s32(vreinterpretq_s32_f32(biased), mantissa), half);
        q16[h] = vmovn_s32(vminq_s32(v, top));
      }
      const int8x16_t q = vcombine_s8(vmovn_s16(vcombine_s16(q16[0], q16[1])),
                                      vmovn_s16(vcombine_s16(q16[2], q16[3])));
      vst1q_s8(y.qs + g, q);
      y.bsums[g / 16] = vaddlvq_s8(q);
    }
    y.d = 1.0f / iscale;
  }
}

}  // namespace tern::kernels::neon

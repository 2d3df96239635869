// Activation rows to Q8_K with NEON, the same bytes as quant::quantize_row_q8_K (what the engine
// runs before every TQ2_0 and K-quant matmul): kernels/quantize_q8_k_lanes.h over the policy
// below.
//  - The largest |x| by a compare and select per lane (strict >, as the reference): fmaxnm would
//    let a signalling NaN through and lose the lane's maximum. Then the first element equal to it
//    in magnitude.
//  - q by the reference's float steps, clamped at 127, narrowed to int8 by truncation (xtn, as
//    the reference's conversion); the bsums by saddlv (16 int8 values: exact in int16).
#include <arm_neon.h>

#include <cstdint>

#include "kernels/arm/neon/neon.h"
#include "kernels/quantize_q8_k_lanes.h"
#include "quant/blocks.h"

namespace tern::kernels::neon {
namespace {

struct Q8KLanes {
  static float largest_magnitude(const float* x) {
    float32x4_t vmax = vdupq_n_f32(0.0f);
    for (int i = 0; i < kQkK; i += 4) {
      const float32x4_t a = vabsq_f32(vld1q_f32(x + i));
      vmax = vbslq_f32(vcgtq_f32(a, vmax), a, vmax);
    }
    return vmaxvq_f32(vmax);
  }

  static float first_of_magnitude(const float* x, float amax) {
    const float32x4_t vamax = vdupq_n_f32(amax);
    for (int i = 0; i < kQkK; i += 4) {
      if (vmaxvq_u32(vceqq_f32(vabsq_f32(vld1q_f32(x + i)), vamax)) == 0) continue;
      for (int j = i;; ++j) {
        if (x[j] == amax || x[j] == -amax) return x[j];
      }
    }
    return 0.0f;
  }

  static int16_t quantize16(const float* x, float iscale, int8_t* qs) {
    int16x4_t q16[4];
    for (int h = 0; h < 4; ++h) {
      const float32x4_t biased =
          vaddq_f32(vmulq_f32(vdupq_n_f32(iscale), vld1q_f32(x + 4 * h)), vdupq_n_f32(12582912.0f));
      const int32x4_t v =
          vsubq_s32(vandq_s32(vreinterpretq_s32_f32(biased), vdupq_n_s32(0x007fffff)),
                    vdupq_n_s32(0x00400000));
      q16[h] = vmovn_s32(vminq_s32(v, vdupq_n_s32(127)));
    }
    const int8x16_t q = vcombine_s8(vmovn_s16(vcombine_s16(q16[0], q16[1])),
                                    vmovn_s16(vcombine_s16(q16[2], q16[3])));
    vst1q_s8(qs, q);
    return vaddlvq_s8(q);
  }
};

}  // namespace

void quantize_row_q8_K(const float* src, void* dst, int64_t n) {
  q8_k_lanes::quantize_row_q8_K<Q8KLanes>(src, dst, n);
}

}  // namespace tern::kernels::neon

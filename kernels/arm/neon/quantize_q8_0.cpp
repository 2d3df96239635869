// Activation rows to Q8_0/Q8_1 with NEON, the same bytes as quant::quantize_row_q8_0_activation
// and quant::quantize_row_q8_1 (what the engine runs before every Q4_0, Q5_x, Q8_0 and MXFP4
// product): kernels/quantize_q8_0_lanes.h over eight 4-lane registers per block.
//  - max by compare and select (strict >: fmaxnm would let a signalling NaN through).
//  - fcvtns rounds to nearest even as the reference, but saturates and maps NaN to 0 where x86's
//    cvtps2dq (the reference) gives INT32_MIN: such lanes are selected to INT32_MIN.
#include <arm_neon.h>

#include <cstdint>

#include "kernels/arm/neon/neon.h"
#include "kernels/arm/neon/simd.h"
#include "kernels/quantize_q8_0_lanes.h"

namespace tern::kernels::neon {
namespace {

struct Q8Lanes : Lanes {
  static V abs(V v) { return vabsq_f32(v); }
  static V max(V a, V b) { return vbslq_f32(vcgtq_f32(a, b), a, b); }
  static float hmax(V v) { return vmaxvq_f32(v); }

  static int32_t round_pack(const V (&v)[8], int8_t* qs) {
    int32x4_t q[8];
    int32x4_t sum = vdupq_n_s32(0);
    for (int r = 0; r < 8; ++r) {
      const uint32x4_t in_range = vcaltq_f32(v[r], vdupq_n_f32(2147483648.0f));
      q[r] = vbslq_s32(in_range, vcvtnq_s32_f32(v[r]), vdupq_n_s32(INT32_MIN));
      sum = vaddq_s32(sum, q[r]);
    }
    for (int h = 0; h < 2; ++h) {
      const int16x8_t lo = vcombine_s16(vqmovn_s32(q[4 * h]), vqmovn_s32(q[4 * h + 1]));
      const int16x8_t hi = vcombine_s16(vqmovn_s32(q[4 * h + 2]), vqmovn_s32(q[4 * h + 3]));
      vst1q_s8(qs + 16 * h, vcombine_s8(vqmovn_s16(lo), vqmovn_s16(hi)));
    }
    return vaddvq_s32(sum);
  }

  static uint16_t to_fp16(float f) {
    return vget_lane_u16(vreinterpret_u16_f16(vcvt_f16_f32(vdupq_n_f32(f))), 0);
  }
};

}  // namespace

void quantize_row_q8_0(const float* src, void* dst, int64_t n) {
  q8_0_lanes::quantize_row_q8_0<Q8Lanes>(src, dst, n);
}
void quantize_row_q8_1(const float* src, void* dst, int64_t n) {
  q8_0_lanes::quantize_row_q8_1<Q8Lanes>(src, dst, n);
}

}  // namespace tern::kernels::neon

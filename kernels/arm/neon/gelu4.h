// GELU of 4 lanes through ggml's fp16 table, shared by activations.cpp and the fused
// LayerNorm + GELU + add of layer_norm.cpp; private to each translation unit (anonymous namespace).
#pragma once

#include <arm_neon.h>

namespace tern::kernels::neon {
namespace {

// fcvtn rounds to half as FPCR says, which Linux leaves at round to nearest even with subnormals
// kept (FZ and FZ16 clear): the reference's fp32_to_fp16 for every float. NEON has no gather, so
// the four table entries are loaded one lane at a time.
inline float32x4_t gelu4(float32x4_t x, const float* table) {
  const uint16x4_t h = vreinterpret_u16_f16(vcvt_f16_f32(x));
  float32x4_t t = vld1q_dup_f32(table + vget_lane_u16(h, 0));
  t = vld1q_lane_f32(table + vget_lane_u16(h, 1), t, 1);
  t = vld1q_lane_f32(table + vget_lane_u16(h, 2), t, 2);
  t = vld1q_lane_f32(table + vget_lane_u16(h, 3), t, 3);
  // x <= -10: 0; x >= 10: x (a NaN is neither and keeps the table's NaN).
  const uint32x4_t low = vcleq_f32(x, vdupq_n_f32(-10.0f));
  const uint32x4_t high = vcgeq_f32(x, vdupq_n_f32(10.0f));
  return vbslq_f32(low, vdupq_n_f32(0.0f), vbslq_f32(high, x, t));
}

}  // namespace
}  // namespace tern::kernels::neon

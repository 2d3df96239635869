// f32 -> fp16 rows with NEON (fcvtn), bit-identical to the scalar reference (quant/fp16.h).
//
// fcvtn rounds as FPCR says, which Linux leaves at round to nearest even with subnormals kept (FZ16
// clear): every finite float, subnormal halves and the overflow to infinity included, comes out as
// the reference's integer code rounds it. Only NaNs differ: with default-NaN mode off (Linux's
// setting) the conversion keeps the sign and the top payload bits and sets the quiet bit, where the
// reference returns the sign and one canonical quiet NaN (0x7e00, ggml's software conversion). A
// converted NaN is sign | 0x7e00 | payload bits 0..8, so clearing bits 0..8 of NaN lanes gives the
// reference's half.
#include <arm_neon.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/arm/neon/neon.h"

namespace tern::kernels::neon {
namespace {

// 8 floats to 8 halves with the reference's NaN.
uint16x8_t to_fp16(float32x4_t lo, float32x4_t hi) {
  const uint16x8_t h = vreinterpretq_u16_f16(vcvt_high_f16_f32(vcvt_f16_f32(lo), hi));
  const uint16x8_t nan = vcgtq_u16(vandq_u16(h, vdupq_n_u16(0x7fff)), vdupq_n_u16(0x7c00));
  return vbicq_u16(h, vandq_u16(nan, vdupq_n_u16(0x01ff)));
}

}  // namespace

void fp32_to_fp16_row(const float* x, uint16_t* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) vst1q_u16(y + i, to_fp16(vld1q_f32(x + i), vld1q_f32(x + i + 4)));
  if (i == n) return;
  // Tail: read and write only the remaining elements (the rest of the row may be unmapped).
  const auto left = static_cast<size_t>(n - i);
  float in[8] = {};
  std::memcpy(in, x + i, left * sizeof(float));
  uint16_t out[8];
  vst1q_u16(out, to_fp16(vld1q_f32(in), vld1q_f32(in + 4)));
  std::memcpy(y + i, out, left * sizeof(uint16_t));
}

}  // namespace tern::kernels::neon

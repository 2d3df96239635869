// The NEON tile for weights in 32-element blocks with an fp16 scale first (Q8_0, Q4_0) times
// Q8_0 activations, private to each translation unit; each weight format adds its decoding.
//
// Theory of operation. Per block, GroupLanes (lanes.h) computes the reference's exact integers:
// lane l sums w * a over elements 4l..4l+3. Two float orders follow, as llama.cpp's x86 kernels:
// - kLanes (vec_dot): acc[l] = fma(d_w * d_a, lane l, acc[l]) per lane, block after block, then
//   hsum_float_8 over the eight lanes;
// - kBlockSums (the Q4_0 repacked gemv/gemm): one accumulator per output,
//   acc = fma(float(sum of the 8 lanes), d_w * d_a, acc).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/arm/neon/lanes.h"
#include "quant/blocks.h"

namespace tern::kernels::neon {
namespace {

enum class FloatOrder { kLanes, kBlockSums };

// Weights: kBlockBytes per block with its fp16 scale at offset 0, and
// decode(block, lo, hi) giving elements 0..15 and 16..31 as int8.
template <class Weights, FloatOrder kOrder>
struct Block32Tile {
  static constexpr size_t kXBlock = sizeof(BlockQ8_0);
  static constexpr size_t kXQs = offsetof(BlockQ8_0, qs);

  template <int R, int C>
  static void tile(const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, int64_t nb,
                   float* y, int64_t ldy) {
    float32x4_t acc[R][C][2];  // kLanes: lanes 0..3, 4..7
    float sum[R][C];           // kBlockSums
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) {
        acc[r][c][0] = acc[r][c][1] = vdupq_n_f32(0.0f);
        sum[r][c] = 0.0f;
      }
    }
    for (int64_t b = 0; b < nb; ++b) {
      int8x16_t a[C][2];
      float ad[C];
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) {
        const uint8_t* xb = x + c * x_stride + static_cast<size_t>(b) * kXBlock;
        ad[c] = fp16_at(xb);
        a[c][0] = vld1q_s8(reinterpret_cast<const int8_t*>(xb + kXQs));
        a[c][1] = vld1q_s8(reinterpret_cast<const int8_t*>(xb + kXQs + 16));
      }
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const uint8_t* wb = w + r * w_stride + static_cast<size_t>(b) * Weights::kBlockBytes;
        const float wd = fp16_at(wb);
        int8x16_t q0, q1;
        Weights::decode(wb, q0, q1);
#pragma GCC unroll 8
        for (int c = 0; c < C; ++c) {
          GroupLanes lanes;
          lanes.add(q0, a[c][0], q1, a[c][1]);
          // d = d_w * d_a rounded once, as the reference.
          const float d = wd * ad[c];
          if constexpr (kOrder == FloatOrder::kLanes) {
            acc[r][c][0] = vfmaq_f32(acc[r][c][0], vcvtq_f32_s32(lanes.lo()), vdupq_n_f32(d));
            acc[r][c][1] = vfmaq_f32(acc[r][c][1], vcvtq_f32_s32(lanes.hi()), vdupq_n_f32(d));
          } else {
            const int32_t s = vaddvq_s32(vaddq_s32(lanes.lo(), lanes.hi()));
            sum[r][c] = __builtin_fmaf(static_cast<float>(s), d, sum[r][c]);
          }
        }
      }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) {
        y[c * ldy + r] =
            kOrder == FloatOrder::kLanes ? hsum8(acc[r][c][0], acc[r][c][1]) : sum[r][c];
      }
    }
  }
};

}  // namespace
}  // namespace tern::kernels::neon

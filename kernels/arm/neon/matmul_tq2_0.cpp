// TQ2_0 x Q8_K matrix product with NEON, bit-identical to quant::vec_dot_tq2_0_q8_K. Also runs
// TQ1_0 weights repacked to TQ2_0 at load.
//
// Theory of operation. The reference's int32 lane l of a block sums code * q8 over offsets
// 4l..4l+3 of each group of 32, minus bsums[2l] + bsums[2l+1]; each lane is then accumulated in
// float as fma(float(lane), d_x * d_w, acc[l]) and the eight lanes summed in hsum_float_8's tree.
// A group's 32 codes (0..3, one shift and mask of the 32 bytes that hold four groups) and its 32
// activations go into GroupLanes (lanes.h: sdot, or int16 element sums paired at the block's end);
// the bsums pairs, widened by vpaddl, are subtracted in int32 so that any bsums give the
// reference's integer. Lanes 0..3 and 4..7 are two float32x4 accumulators per output. Each group's
// codes are unpacked once for every activation row of the tile.
#include <cstddef>
#include <cstdint>

#include "kernels/arm/neon/lanes.h"
#include "kernels/arm/neon/neon.h"
#include "quant/blocks.h"

namespace tern::kernels::neon {
namespace {

struct Tq2Tile {
  static constexpr size_t kWBlock = sizeof(BlockTQ2_0);
  static constexpr size_t kWScale = offsetof(BlockTQ2_0, d);
  static constexpr size_t kXBlock = sizeof(BlockQ8_K);
  static constexpr size_t kXQs = offsetof(BlockQ8_K, qs);
  static constexpr size_t kXBsums = offsetof(BlockQ8_K, bsums);

  template <int R, int C>
  static void tile(const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, int64_t nb,
                   float* y, int64_t ldy) {
    const uint8x16_t mask3 = vdupq_n_u8(3);
    float32x4_t acc[R][C][2];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) acc[r][c][0] = acc[r][c][1] = vdupq_n_f32(0.0f);
    }
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* wq[R];
      const uint8_t* xb[C];
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) wq[r] = w + r * w_stride + static_cast<size_t>(b) * kWBlock;
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) xb[c] = x + c * x_stride + static_cast<size_t>(b) * kXBlock;

      GroupLanes lanes[R][C];
      // qs[32 h + m] holds element 128 h + 32 n + m in bits 2n..2n+1: group g = 4 h + n.
#pragma GCC unroll 2
      for (int h = 0; h < 2; ++h) {
        uint8x16_t q[R][2];
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
          q[r][0] = vld1q_u8(wq[r] + 32 * h);
          q[r][1] = vld1q_u8(wq[r] + 32 * h + 16);
        }
#pragma GCC unroll 4
        for (int n = 0; n < 4; ++n) {
          const int g = 4 * h + n;
          int8x16_t a[C][2];
#pragma GCC unroll 8
          for (int c = 0; c < C; ++c) {
            a[c][0] = vld1q_s8(reinterpret_cast<const int8_t*>(xb[c] + kXQs + 32 * g));
            a[c][1] = vld1q_s8(reinterpret_cast<const int8_t*>(xb[c] + kXQs + 32 * g + 16));
          }
#pragma GCC unroll 8
          for (int r = 0; r < R; ++r) {
            const int8x16_t c0 = vreinterpretq_s8_u8(vandq_u8(q[r][0], mask3));
            const int8x16_t c1 = vreinterpretq_s8_u8(vandq_u8(q[r][1], mask3));
            q[r][0] = vshrq_n_u8(q[r][0], 2);
            q[r][1] = vshrq_n_u8(q[r][1], 2);
#pragma GCC unroll 8
            for (int c = 0; c < C; ++c) lanes[r][c].add(c0, a[c][0], c1, a[c][1]);
          }
        }
      }

      float wd[R];
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) wd[r] = fp16_at(wq[r] + kWScale);
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) {
        const float xd = f32_at(xb[c]);
        // bsums[2l] + bsums[2l + 1] for lanes 0..3, then 4..7.
        const int32x4_t bs_lo = vpaddlq_s16(vreinterpretq_s16_u8(vld1q_u8(xb[c] + kXBsums)));
        const int32x4_t bs_hi = vpaddlq_s16(vreinterpretq_s16_u8(vld1q_u8(xb[c] + kXBsums + 16)));
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
          // d = d_x * d_w rounded as the reference does, then one fused multiply-add per lane.
          const float32x4_t d = vdupq_n_f32(xd * wd[r]);
          const int32x4_t lo = vsubq_s32(lanes[r][c].lo(), bs_lo);
          const int32x4_t hi = vsubq_s32(lanes[r][c].hi(), bs_hi);
          acc[r][c][0] = vfmaq_f32(acc[r][c][0], vcvtq_f32_s32(lo), d);
          acc[r][c][1] = vfmaq_f32(acc[r][c][1], vcvtq_f32_s32(hi), d);
        }
      }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) y[c * ldy + r] = hsum8(acc[r][c][0], acc[r][c][1]);
    }
  }
};

}  // namespace

void TERN_NEON_NAME(matmul_tq2_0_q8_K)(const TypeTraits& /*w_type*/, const std::byte* w,
                                       size_t w_stride, int64_t /*n_rows*/, const std::byte* x,
                                       size_t x_stride, int64_t n_x, int64_t k, float* y,
                                       int64_t ldy, int64_t r0, int64_t r1) {
  run_tiles<Tq2Tile, kTq2RowTile, kTq2ColTile, kTq2GemvRows>(w, w_stride, x, x_stride, n_x,
                                                             k / kQkK, y, ldy, r0, r1);
}

}  // namespace tern::kernels::neon

// Q4_K, Q5_K and Q6_K x Q8_K matrix products with NEON (Q4_K_M files; Q6_K is also the output head
// and embeddings llama.cpp writes in Q4_0 and ternary files), bit-identical to
// quant::vec_dot_q4_K_q8_K, vec_dot_q5_K_q8_K and vec_dot_q6_K_q8_K.
//
// Theory of operation. Per super-block and output the reference keeps eight int32 lanes: lane l
// sums over the eight 32-element groups g the group's scale times the four products at
// 32 g + 4 l .. 4 l + 3 (Q6_K: the scale of the 16-element half that holds them, scales[2 g] for
// lanes 0..3 and scales[2 g + 1] for 4..7, and q - 32 for q). Then acc[l] = fma(d_a * d_w,
// float(lane l), acc[l]) across super-blocks and hsum_float_8 at the end. Here each group's 32
// codes are put together in element order as int8 (0..31, or -32..31 for Q6_K), GroupLanes
// (lanes.h: sdot, or int16 products paired up, exact for one group: |code x a| <= 32 x 128) gives
// the group's eight lanes, and a multiply-add by the group's scale adds them to the super-block's
// int32 lanes; only then come the reference's float steps, in its order. The mins (Q4_K, Q5_K)
// come from bsums in int32: m[g] (b[2 g] + b[2 g + 1]) per group, then Q4_K adds groups 2p and
// 2p + 1 into four lanes with one fma(-d_a * d_min, float, acc_m[p]) each and ends with
// (acc_m[0] + acc_m[2]) + (acc_m[1] + acc_m[3]); Q5_K adds all eight into one integer and one
// scalar fma. The mins' total is added after the lane sum, as in the reference.
#include <cstddef>
#include <cstdint>

#include "kernels/arm/neon/lanes.h"
#include "kernels/arm/neon/neon.h"
#include "kernels/kquant_scales.h"
#include "quant/blocks.h"
#include "quant/kquants.h"

namespace tern::kernels::neon {
namespace {

// Q4_K (kHighBit false) and Q5_K: codes from nibbles (and qh), one unsigned scale per group, mins.
template <class Block, bool kHighBit>
struct K4Format {
  static constexpr size_t kBlockBytes = sizeof(Block);
  static constexpr bool kMins = true;
  // Q4_K: the four acc_m lanes; Q5_K: the running sum in lane 0.
  using MinAcc = float32x4_t;

  struct Row {
    uint8_t sm[16];  // scales 0..7, mins 8..15
    float d, dmin;
    const uint8_t* qs;
    const uint8_t* qh;
    void load(const uint8_t* blk) {
      const K4ScaleWords w = k4_scale_words(blk + offsetof(Block, scales));
      const uint32_t words[4] = {w.sc_lo, w.sc_hi, w.m_lo, w.m_hi};
      std::memcpy(sm, words, sizeof sm);
      d = fp16_at(blk + offsetof(Block, d));
      dmin = fp16_at(blk + offsetof(Block, dmin));
      qs = blk + offsetof(Block, qs);
      if constexpr (kHighBit) qh = blk + offsetof(BlockQ5_K, qh);
    }
    // Group g's low four bits: qs[32 (g / 2) + l] at bit 4 (g % 2); Q5_K's fifth: qh[l] bit g.
    void codes(int g, int8x16_t& lo, int8x16_t& hi) const {
      const int8x16_t shift = vdupq_n_s8(static_cast<int8_t>(-4 * (g % 2)));
      const uint8x16_t low4 = vdupq_n_u8(0x0f);
      uint8x16_t c0 = vandq_u8(vshlq_u8(vld1q_u8(qs + 32 * (g / 2)), shift), low4);
      uint8x16_t c1 = vandq_u8(vshlq_u8(vld1q_u8(qs + 32 * (g / 2) + 16), shift), low4);
      if constexpr (kHighBit) {
        // Bit g moved to bit 4 (a negative count shifts right).
        const int8x16_t hshift = vdupq_n_s8(static_cast<int8_t>(4 - g));
        const uint8x16_t bit4 = vdupq_n_u8(0x10);
        c0 = vorrq_u8(c0, vandq_u8(vshlq_u8(vld1q_u8(qh), hshift), bit4));
        c1 = vorrq_u8(c1, vandq_u8(vshlq_u8(vld1q_u8(qh + 16), hshift), bit4));
      }
      lo = vreinterpretq_s8_u8(c0);
      hi = vreinterpretq_s8_u8(c1);
    }
    int32_t scale_lo(int g) const { return sm[g]; }
    int32_t scale_hi(int g) const { return sm[g]; }
  };

  // One super-block's mins term. bsums: the activation block's sixteen int16 sums; neg_xd: -d_a.
  static MinAcc add_mins(MinAcc acc, const Row& row, const uint8_t* bsums, float neg_xd) {
    const uint16x8_t m = vmovl_u8(vld1_u8(row.sm + 8));
    // b[2 g] + b[2 g + 1] for groups 0..3 and 4..7, times m[g].
    const int32x4_t bs_lo = vpaddlq_s16(vreinterpretq_s16_u8(vld1q_u8(bsums)));
    const int32x4_t bs_hi = vpaddlq_s16(vreinterpretq_s16_u8(vld1q_u8(bsums + 16)));
    const int32x4_t p_lo = vmulq_s32(vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(m))), bs_lo);
    const int32x4_t p_hi = vmulq_s32(vreinterpretq_s32_u32(vmovl_high_u16(m)), bs_hi);
    // -d_a * d_min rounded once, as the reference.
    const float dmin = neg_xd * row.dmin;
    if constexpr (kHighBit) {
      const int32_t total = vaddvq_s32(vaddq_s32(p_lo, p_hi));
      const float s = __builtin_fmaf(dmin, static_cast<float>(total), vgetq_lane_f32(acc, 0));
      return vsetq_lane_f32(s, acc, 0);
    } else {
      // Lane p: groups 2p and 2p + 1.
      const int32x4_t prod = vpaddq_s32(p_lo, p_hi);
      return vfmaq_f32(acc, vcvtq_f32_s32(prod), vdupq_n_f32(dmin));
    }
  }
  static float mins_total(MinAcc m) {
    if constexpr (kHighBit) {
      return vgetq_lane_f32(m, 0);
    } else {
      const float32x4_t s = vaddq_f32(m, vextq_f32(m, m, 2));
      return vgetq_lane_f32(s, 0) + vgetq_lane_f32(s, 1);
    }
  }
};

// Q6_K: 6-bit codes from ql and qh, a signed scale per 16 elements, codes biased by 32.
struct Q6Format {
  static constexpr size_t kBlockBytes = sizeof(BlockQ6_K);
  static constexpr bool kMins = false;
  using MinAcc = float32x4_t;  // unused

  struct Row {
    const int8_t* scales;
    float d;
    const uint8_t* ql;
    const uint8_t* qh;
    void load(const uint8_t* blk) {
      scales = reinterpret_cast<const int8_t*>(blk + offsetof(BlockQ6_K, scales));
      d = fp16_at(blk + offsetof(BlockQ6_K, d));
      ql = blk + offsetof(BlockQ6_K, ql);
      qh = blk + offsetof(BlockQ6_K, qh);
    }
    // Group g = 4 h + quarter: low 4 bits in ql[64 h + 32 (quarter % 2) + l] at bit
    // 4 (quarter / 2), high 2 bits in qh[32 h + l] at bit 2 quarter (kquants.h); minus 32.
    void codes(int g, int8x16_t& lo, int8x16_t& hi) const {
      const int h = g / 4, quarter = g % 4;
      const uint8_t* l = ql + 64 * h + 32 * (quarter % 2);
      const uint8_t* u = qh + 32 * h;
      const int8x16_t lshift = vdupq_n_s8(static_cast<int8_t>(-4 * (quarter / 2)));
      // The two high bits moved to bits 4..5 (a negative count shifts right).
      const int8x16_t hshift = vdupq_n_s8(static_cast<int8_t>(4 - 2 * quarter));
      const uint8x16_t low4 = vdupq_n_u8(0x0f), high2 = vdupq_n_u8(0x30);
      const int8x16_t bias = vdupq_n_s8(32);
      const uint8x16_t c0 = vorrq_u8(vandq_u8(vshlq_u8(vld1q_u8(l), lshift), low4),
                                     vandq_u8(vshlq_u8(vld1q_u8(u), hshift), high2));
      const uint8x16_t c1 = vorrq_u8(vandq_u8(vshlq_u8(vld1q_u8(l + 16), lshift), low4),
                                     vandq_u8(vshlq_u8(vld1q_u8(u + 16), hshift), high2));
      lo = vsubq_s8(vreinterpretq_s8_u8(c0), bias);
      hi = vsubq_s8(vreinterpretq_s8_u8(c1), bias);
    }
    int32_t scale_lo(int g) const { return scales[2 * g]; }
    int32_t scale_hi(int g) const { return scales[2 * g + 1]; }
  };

  static MinAcc add_mins(MinAcc acc, const Row& /*row*/, const uint8_t* /*bsums*/, float) {
    return acc;
  }
  static float mins_total(MinAcc /*m*/) { return 0.0f; }
};

template <class F>
struct KQuantTile {
  static constexpr size_t kXBlock = sizeof(BlockQ8_K);
  static constexpr size_t kXQs = offsetof(BlockQ8_K, qs);

  template <int R, int C>
  static void tile(const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, int64_t nb,
                   float* y, int64_t ldy) {
    float32x4_t acc[R][C][2];
    typename F::MinAcc macc[R][C];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) acc[r][c][0] = acc[r][c][1] = macc[r][c] = vdupq_n_f32(0.0f);
    }
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* xb[C];
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) xb[c] = x + c * x_stride + static_cast<size_t>(b) * kXBlock;
      typename F::Row rows[R];
      int32x4_t sum[R][C][2];
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        rows[r].load(w + r * w_stride + static_cast<size_t>(b) * F::kBlockBytes);
#pragma GCC unroll 8
        for (int c = 0; c < C; ++c) sum[r][c][0] = sum[r][c][1] = vdupq_n_s32(0);
      }
#pragma GCC unroll 8
      for (int g = 0; g < 8; ++g) {
        int8x16_t a[C][2];
#pragma GCC unroll 8
        for (int c = 0; c < C; ++c) {
          a[c][0] = vld1q_s8(reinterpret_cast<const int8_t*>(xb[c] + kXQs + 32 * g));
          a[c][1] = vld1q_s8(reinterpret_cast<const int8_t*>(xb[c] + kXQs + 32 * g + 16));
        }
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
          int8x16_t q0, q1;
          rows[r].codes(g, q0, q1);
          const int32_t s_lo = rows[r].scale_lo(g), s_hi = rows[r].scale_hi(g);
#pragma GCC unroll 8
          for (int c = 0; c < C; ++c) {
            GroupLanes lanes;
            lanes.add(q0, a[c][0], q1, a[c][1]);
            sum[r][c][0] = vmlaq_n_s32(sum[r][c][0], lanes.lo(), s_lo);
            sum[r][c][1] = vmlaq_n_s32(sum[r][c][1], lanes.hi(), s_hi);
          }
        }
      }
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) {
        const float xd = f32_at(xb[c] + offsetof(BlockQ8_K, d));
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
          if constexpr (F::kMins) {
            macc[r][c] = F::add_mins(macc[r][c], rows[r], xb[c] + offsetof(BlockQ8_K, bsums), -xd);
          }
          // d = d_a * d_w rounded once, as the reference; then one fused multiply-add per lane.
          const float32x4_t d = vdupq_n_f32(xd * rows[r].d);
          acc[r][c][0] = vfmaq_f32(acc[r][c][0], vcvtq_f32_s32(sum[r][c][0]), d);
          acc[r][c][1] = vfmaq_f32(acc[r][c][1], vcvtq_f32_s32(sum[r][c][1]), d);
        }
      }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) {
        float v = hsum8(acc[r][c][0], acc[r][c][1]);
        if constexpr (F::kMins) v += F::mins_total(macc[r][c]);
        y[c * ldy + r] = v;
      }
    }
  }
};

template <class F>
void run_kquant(const std::byte* w, size_t w_stride, const std::byte* x, size_t x_stride,
                int64_t n_x, int64_t k, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  run_tiles<KQuantTile<F>, kKQuantRowTile, kKQuantColTile, kKQuantGemvRows>(
      w, w_stride, x, x_stride, n_x, k / kQkK, y, ldy, r0, r1);
}

}  // namespace

void TERN_NEON_NAME(matmul_q4_K_q8_K)(const TypeTraits& /*w_type*/, const std::byte* w,
                                      size_t w_stride, int64_t /*n_rows*/, const std::byte* x,
                                      size_t x_stride, int64_t n_x, int64_t k, float* y,
                                      int64_t ldy, int64_t r0, int64_t r1) {
  run_kquant<K4Format<BlockQ4_K, false>>(w, w_stride, x, x_stride, n_x, k, y, ldy, r0, r1);
}

void TERN_NEON_NAME(matmul_q5_K_q8_K)(const TypeTraits& /*w_type*/, const std::byte* w,
                                      size_t w_stride, int64_t /*n_rows*/, const std::byte* x,
                                      size_t x_stride, int64_t n_x, int64_t k, float* y,
                                      int64_t ldy, int64_t r0, int64_t r1) {
  run_kquant<K4Format<BlockQ5_K, true>>(w, w_stride, x, x_stride, n_x, k, y, ldy, r0, r1);
}

void TERN_NEON_NAME(matmul_q6_K_q8_K)(const TypeTraits& /*w_type*/, const std::byte* w,
                                      size_t w_stride, int64_t /*n_rows*/, const std::byte* x,
                                      size_t x_stride, int64_t n_x, int64_t k, float* y,
                                      int64_t ldy, int64_t r0, int64_t r1) {
  run_kquant<Q6Format>(w, w_stride, x, x_stride, n_x, k, y, ldy, r0, r1);
}

}  // namespace tern::kernels::neon

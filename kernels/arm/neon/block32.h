// The NEON tile for weights in 32-element blocks with a scale first (Q8_0,
// Q4_0, Q5_0, Q5_1, MXFP4) times Q8_0 or Q8_1 activations, private to each
// translation unit; each weight format adds its decoding.
//
// Theory of operation. Per block, GroupLanes (lanes.h) computes the reference's
// exact integers: lane l sums w * a over elements 4l..4l+3. Three float orders
// follow, as llama.cpp's x86 kernels:
// - kLanes (vec_dot): acc[l] = fma(d_w * d_a, lane l, acc[l]) per lane, block
// after block, then
//   hsum_float_8 over the eight lanes;
// - kBlockSums (the Q4_0 repacked gemv/gemm): one accumulator per output,
//   acc = fma(float(sum of the 8 lanes), d_w * d_a, acc);
// - kPairedLanes (MXFP4's vec_dot): kLanes with even and odd blocks in two sets
// of lanes, added
//   lane by lane before hsum_float_8; an odd last block then adds fma(d,
//   float(its lane sum), sum).
// A format with a minimum (Q5_1 x Q8_1) also keeps vec_dot's scalar summs =
// fma(m_w, s_a, summs) per block, added after the lane sum.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/arm/neon/lanes.h"
#include "quant/blocks.h"

namespace tern::kernels::neon {
namespace {

enum class FloatOrder { kLanes, kBlockSums, kPairedLanes };

// Weights: kBlockBytes per block with its fp16 scale at offset 0 (or a `static
// float scale(block)` of its own), and decode(block, lo, hi) giving elements
// 0..15 and 16..31 as int8. Optionally `using Acts` (the activations' block,
// Q8_0 unless it says otherwise; fp16 scale at offset 0) and kMinOffset (the
// offset of an fp16 minimum, multiplied by the activations' fp16 sum at
// offsetof(Acts, s)).
template <class Weights>
struct ActsOf {
  using Type = BlockQ8_0;
};
template <class Weights>
requires requires {
  typename Weights::Acts;
}
struct ActsOf<Weights> {
  using Type = typename Weights::Acts;
};

// Which accumulators a block goes to: lane set 0 or 1, or (2) kPairedLanes' odd
// last block.
template <int P>
struct Slot {};

template <class Weights, FloatOrder kOrder>
struct Block32Tile {
  using Acts = typename ActsOf<Weights>::Type;
  static constexpr size_t kXBlock = sizeof(Acts);
  static constexpr size_t kXQs = offsetof(Acts, qs);
  static constexpr bool kMin = requires { Weights::kMinOffset; };

  static float weight_scale(const uint8_t* block) {
    if constexpr (requires { Weights::scale(block); }) {
      return Weights::scale(block);
    } else {
      return fp16_at(block);
    }
  }

  template <int R, int C>
  static void tile(const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, int64_t nb,
                   float* y, int64_t ldy) {
    float32x4_t acc[R][C][2][2];  // [lane set][lanes 0..3, 4..7]
    float sum[R][C];              // kBlockSums, then every order's result
    float summs[R][C];            // kMin
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) {
        acc[r][c][0][0] = acc[r][c][0][1] = acc[r][c][1][0] = acc[r][c][1][1] = vdupq_n_f32(0.0f);
        sum[r][c] = summs[r][c] = 0.0f;
      }
    }
    const auto block = [&]<int P>(int64_t b, Slot<P>) {
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
        const float wd = weight_scale(wb);
        int8x16_t q0, q1;
        Weights::decode(wb, q0, q1);
#pragma GCC unroll 8
        for (int c = 0; c < C; ++c) {
          if constexpr (kMin) {
            const uint8_t* xb = x + c * x_stride + static_cast<size_t>(b) * kXBlock;
            summs[r][c] = __builtin_fmaf(fp16_at(wb + Weights::kMinOffset),
                                         fp16_at(xb + offsetof(Acts, s)), summs[r][c]);
          }
          GroupLanes lanes;
          lanes.add(q0, a[c][0], q1, a[c][1]);
          // d = d_w * d_a rounded once, as the reference.
          const float d = wd * ad[c];
          if constexpr (kOrder == FloatOrder::kBlockSums || P == 2) {
            const int32_t s = vaddvq_s32(vaddq_s32(lanes.lo(), lanes.hi()));
            sum[r][c] = __builtin_fmaf(static_cast<float>(s), d, sum[r][c]);
          } else {
            acc[r][c][P][0] = vfmaq_f32(acc[r][c][P][0], vcvtq_f32_s32(lanes.lo()), vdupq_n_f32(d));
            acc[r][c][P][1] = vfmaq_f32(acc[r][c][P][1], vcvtq_f32_s32(lanes.hi()), vdupq_n_f32(d));
          }
        }
      }
    };
    int64_t b = 0;
    if constexpr (kOrder == FloatOrder::kPairedLanes) {
      for (; b + 1 < nb; b += 2) {
        block(b, Slot<0>{});
        block(b + 1, Slot<1>{});
      }
    } else {
      for (; b < nb; ++b) block(b, Slot<0>{});
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) {
        const auto& a = acc[r][c];
        if constexpr (kOrder == FloatOrder::kLanes) {
          sum[r][c] = hsum8(a[0][0], a[0][1]);
        } else if constexpr (kOrder == FloatOrder::kPairedLanes) {
          sum[r][c] = hsum8(vaddq_f32(a[0][0], a[1][0]), vaddq_f32(a[0][1], a[1][1]));
        }
      }
    }
    if constexpr (kOrder == FloatOrder::kPairedLanes) {
      if (b < nb) block(b, Slot<2>{});
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) {
        float v = sum[r][c];
        if constexpr (kMin) v += summs[r][c];
        y[c * ldy + r] = v;
      }
    }
  }
};

}  // namespace
}  // namespace tern::kernels::neon

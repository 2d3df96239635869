// What the NEON matmul kernels share, private to each translation unit (anonymous namespace): the
// reference's 8 integer lanes per 32-element group (with sdot when the file is built with dotprod,
// else widening multiply-adds), the float lane sum, fp16 scales, and the tile driver.
#pragma once

#include <arm_neon.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/tile_table.h"

// A kernel file defines its entry point as TERN_NEON_NAME(name): the name itself when it is built
// on its own, name_dotprod when dotprod.cpp includes it again under the dotprod flags.
#ifndef TERN_NEON_NAME
#define TERN_NEON_NAME(name) name
#endif

namespace tern::kernels::neon {
namespace {

// An fp16 scale, converted exactly (fcvt; FPCR's default-NaN mode is off on Linux, so a NaN keeps
// its payload and comes out quiet, as in quant::fp16_to_fp32).
inline float fp16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, sizeof h);
  return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
}

inline float f32_at(const uint8_t* p) {
  float f;
  std::memcpy(&f, p, sizeof f);
  return f;
}

// The integer lanes of llama.cpp's x86 dots: lane l (0..7) sums a * b over elements 4l..4l+3 of
// every 32-element group added. sdot computes exactly that per 16 bytes. Without it, vmlal keeps
// one int16 sum per element and the lanes are paired up in int32 at the end; that is exact while,
// for each element, the sum of |a * b| over the groups added fits int16: one group of int8 x int8
// (at most 128 x 128), or eight TQ2_0 groups (8 x 3 x 128).
class GroupLanes {
 public:
  // One group: elements 0..15 in (a0, b0), 16..31 in (a1, b1).
  void add(int8x16_t a0, int8x16_t b0, int8x16_t a1, int8x16_t b1) {
#ifdef __ARM_FEATURE_DOTPROD
    lo_ = vdotq_s32(lo_, a0, b0);
    hi_ = vdotq_s32(hi_, a1, b1);
#else
    e_[0] = vmlal_s8(e_[0], vget_low_s8(a0), vget_low_s8(b0));
    e_[1] = vmlal_high_s8(e_[1], a0, b0);
    e_[2] = vmlal_s8(e_[2], vget_low_s8(a1), vget_low_s8(b1));
    e_[3] = vmlal_high_s8(e_[3], a1, b1);
#endif
  }

  // Lanes 0..3 (lo) and 4..7 (hi).
  int32x4_t lo() const {
#ifdef __ARM_FEATURE_DOTPROD
    return lo_;
#else
    return vpaddq_s32(vpaddlq_s16(e_[0]), vpaddlq_s16(e_[1]));
#endif
  }
  int32x4_t hi() const {
#ifdef __ARM_FEATURE_DOTPROD
    return hi_;
#else
    return vpaddq_s32(vpaddlq_s16(e_[2]), vpaddlq_s16(e_[3]));
#endif
  }

 private:
#ifdef __ARM_FEATURE_DOTPROD
  int32x4_t lo_ = vdupq_n_s32(0), hi_ = vdupq_n_s32(0);
#else
  int16x8_t e_[4] = {vdupq_n_s16(0), vdupq_n_s16(0), vdupq_n_s16(0), vdupq_n_s16(0)};
#endif
};

// hsum_float_8 over lanes 0..3 (lo) and 4..7 (hi): ((a0+a4) + (a2+a6)) + ((a1+a5) + (a3+a7)), as
// quant::sum_dot_lanes.
inline float hsum8(float32x4_t lo, float32x4_t hi) {
  const float32x4_t r = vaddq_f32(lo, hi);
  const float32x4_t s = vaddq_f32(r, vextq_f32(r, r, 2));
  return vgetq_lane_f32(s, 0) + vgetq_lane_f32(s, 1);
}

// A register tile: R weight rows (w_stride apart) x C activation rows (x_stride apart) over nb
// blocks, writing y[c * ldy + r].
using TileFn = void (*)(const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride,
                        int64_t nb, float* y, int64_t ldy);

// Kernel::tile<R, C> as a TileTable's entry.
template <class Kernel>
struct MakeTile {
  template <int R, int C>
  static constexpr TileFn get() {
    return Kernel::template tile<R, C>;
  }
};

// Rows [r0, r1) of W times all n_x activation rows, in kRowTile x kColTile tiles (kGemvRows rows
// per step for a single activation row).
template <class Kernel, int kRowTile, int kColTile, int kGemvRows>
void run_tiles(const std::byte* w, size_t w_stride, const std::byte* x, size_t x_stride,
               int64_t n_x, int64_t nb, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  static constexpr TileTable<TileFn, (kRowTile > kGemvRows ? kRowTile : kGemvRows), kColTile,
                             MakeTile<Kernel>>
      kTiles;
  const auto* wb = reinterpret_cast<const uint8_t*>(w);
  const auto* xb = reinterpret_cast<const uint8_t*>(x);
  const int64_t rows_step = n_x == 1 ? kGemvRows : kRowTile;
  for (int64_t r = r0; r < r1; r += rows_step) {
    const int64_t nr = r1 - r < rows_step ? r1 - r : rows_step;
    for (int64_t m = 0; m < n_x; m += kColTile) {
      const int64_t nc = n_x - m < kColTile ? n_x - m : kColTile;
      kTiles.fn[nr - 1][nc - 1](wb + static_cast<size_t>(r) * w_stride, w_stride,
                                xb + static_cast<size_t>(m) * x_stride, x_stride, nb,
                                y + m * ldy + r, ldy);
    }
  }
}

}  // namespace
}  // namespace tern::kernels::neon

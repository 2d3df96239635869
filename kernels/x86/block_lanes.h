// The 8-lane order of llama.cpp's x86 vec_dot for 32-weight blocks times Q8_0 activations, as a
// tile provider for TileDriver; each ISA's weight formats (Q8_0, Q4_0) supply the integer
// lanes. Included only by per-ISA kernel files, with formats from their anonymous namespace (see
// tile_driver.h).
//
// Theory of operation. The reference keeps 8 int32 lanes per 32-weight block, lane l summing
// w * a over elements 4l..4l+3, then acc[l] = fma(d_w * d_a, lane, acc[l]) block after block and
// the lanes are summed in hsum_float_8's tree. One block is one ymm; the format computes lane l's
// integer exactly, with the help of a value it derives once per activation block for all the
// tile's rows. The float steps are the reference's.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/x86/intrinsics.h"
#include "kernels/x86/tile_driver.h"
#include "quant/blocks.h"

namespace tern::kernels::x86 {

// Format W: kBlock (bytes per block, fp16 scale first), kRowTile, kColTile, kGemvRows,
// `static __m256i prepare(__m256i a)` (once per activation block) and
// `static __m256i lanes(const uint8_t* block, __m256i a, __m256i prepared)`: the 8 int32 lanes.
template <class W>
struct BlockLanes : TileShape<W::kRowTile, W::kColTile, W::kGemvRows, kQk8_0> {
  template <int R, int C>
  static void tile(const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, int64_t nb,
                   float* y, int64_t ldy, const NoContext& /*ctx*/) {
    constexpr size_t kXBlock = sizeof(BlockQ8_0);
    constexpr size_t kXQs = offsetof(BlockQ8_0, qs);
    __m256 facc[R][C];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) facc[r][c] = _mm256_setzero_ps();
    }
    const WeightPrefetch<R, W::kBlock> prefetch(w, w_stride);
    for (int64_t b = 0; b < nb; ++b) {
      prefetch.at(b);
      __m256i a[C], prep[C];
      float ad[C];
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) {
        const uint8_t* xb =
            x + static_cast<size_t>(c) * x_stride + static_cast<size_t>(b) * kXBlock;
        ad[c] = fp16_at(xb);
        a[c] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb + kXQs));
        prep[c] = W::prepare(a[c]);
      }
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        const uint8_t* wb =
            w + static_cast<size_t>(r) * w_stride + static_cast<size_t>(b) * W::kBlock;
        const float wd = fp16_at(wb);
#pragma GCC unroll 16
        for (int c = 0; c < C; ++c) {
          const __m256i lanes = W::lanes(wb, a[c], prep[c]);
          // d = d_w * d_a rounded once, as the reference; then one fused multiply-add per lane.
          facc[r][c] =
              _mm256_fmadd_ps(_mm256_set1_ps(wd * ad[c]), _mm256_cvtepi32_ps(lanes), facc[r][c]);
        }
      }
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) y[static_cast<int64_t>(c) * ldy + r] = hsum8(facc[r][c]);
    }
  }
};

}  // namespace tern::kernels::x86

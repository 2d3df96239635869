// The 8-lane order of llama.cpp's x86 vec_dot for 32-weight blocks times Q8_0
// (or Q8_1) activations, as a tile provider for TileDriver; each ISA's weight
// formats (Q8_0, Q4_0; Q5_0, Q5_1 and MXFP4 in block32_formats.h) supply the
// integer lanes. Included only by per-ISA kernel files, with formats from their
// anonymous namespace (see tile_driver.h).
//
// Theory of operation. The reference keeps 8 int32 lanes per 32-weight block,
// lane l summing w * a over elements 4l..4l+3, then acc[l] = fma(d_w * d_a,
// lane, acc[l]) block after block and the lanes are summed in hsum_float_8's
// tree. One block is one ymm; the format computes lane l's integer exactly,
// with the help of a value it derives once per activation block for all the
// tile's rows. The float steps are the reference's.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/x86/intrinsics.h"
#include "kernels/x86/tile_driver.h"
#include "quant/blocks.h"

namespace tern::kernels::x86 {

// The optional members of a format W, with their defaults (Q8_0 activations, an
// fp16 scale first in the block, one accumulator per output).
template <class W>
struct LaneHooks {
  // `using Activation = BlockQ8_1;`: the activation block (fp16 d first, qs at
  // offsetof(A, qs)).
  static auto activation() {
    if constexpr (requires { typename W::Activation; }) {
      return typename W::Activation{};
    } else {
      return BlockQ8_0{};
    }
  }
  using A = decltype(activation());
  // `static float scale(const uint8_t* block)`: the block's scale, when not a
  // leading fp16.
  static float scale(const uint8_t* block) {
    if constexpr (requires { W::scale(block); }) {
      return W::scale(block);
    } else {
      return fp16_at(block);
    }
  }
  // `kMinOffset` (Q5_1 x Q8_1): an fp16 minimum m at that offset of the block,
  // summed apart as summs = fma(m, s_a, summs) block after block and added
  // after the lane sum.
  static constexpr bool kMin = requires { W::kMinOffset; };
  // `kAccumulators = 2` (MXFP4): even and odd blocks in two accumulators, added
  // lane by lane before the lane sum; an odd last block is added after it as
  // fma(d, its whole sum, sum).
  static constexpr int accumulators() {
    if constexpr (requires { W::kAccumulators; }) {
      return W::kAccumulators;
    } else {
      return 1;
    }
  }
};

namespace {

// fma(a, b, c) in f32, rounded once, as std::fma.
inline float fma_ss(float a, float b, float c) {
  return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c)));
}

}  // namespace

// Format W: kBlock (bytes per block), kRowTile, kColTile, kGemvRows,
// `static __m256i prepare(__m256i a)` (once per activation block) and
// `static __m256i lanes(const uint8_t* block, __m256i a, __m256i prepared)`:
// the 8 int32 lanes; and the optional members of LaneHooks.
template <class W>
struct BlockLanes : TileShape<W::kRowTile, W::kColTile, W::kGemvRows, kQk8_0> {
  using H = LaneHooks<W>;
  using A = typename H::A;
  static constexpr int kAccs = H::accumulators();

  template <int R, int C>
  static void tile(const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, int64_t nb,
                   float* y, int64_t ldy, const NoContext& /*ctx*/) {
    __m256 facc[kAccs][R][C];
    [[maybe_unused]] float summs[R][C];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) {
        for (int p = 0; p < kAccs; ++p) facc[p][r][c] = _mm256_setzero_ps();
        summs[r][c] = 0.0f;
      }
    }
    const WeightPrefetch<R, W::kBlock> prefetch(w, w_stride);
    const int64_t nb_whole = nb - nb % kAccs;
    for (int64_t b = 0; b < nb_whole; b += kAccs) {
#pragma GCC unroll 2
      for (int p = 0; p < kAccs; ++p) {
        prefetch.at(b + p);
        block<R, C>(w, w_stride, x, x_stride, b + p, facc[p], summs);
      }
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) {
        __m256 v = facc[0][r][c];
        if constexpr (kAccs == 2) v = _mm256_add_ps(v, facc[1][r][c]);
        float sum = hsum8(v);
        if constexpr (kAccs == 2) {
          if (nb_whole < nb) sum = last_block(w + r * w_stride, x + c * x_stride, nb_whole, sum);
        }
        if constexpr (H::kMin) sum += summs[r][c];
        y[static_cast<int64_t>(c) * ldy + r] = sum;
      }
    }
  }

 private:
  static const uint8_t* at(const uint8_t* base, size_t stride, int i, int64_t b, size_t bytes) {
    return base + static_cast<size_t>(i) * stride + static_cast<size_t>(b) * bytes;
  }

  template <int R, int C>
  [[gnu::always_inline]] static void block(const uint8_t* w, size_t w_stride, const uint8_t* x,
                                           size_t x_stride, int64_t b, __m256 (&facc)[R][C],
                                           float (&summs)[R][C]) {
    __m256i a[C], prep[C];
    float ad[C];
    [[maybe_unused]] float as[C];
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) {
      const uint8_t* xb = at(x, x_stride, c, b, sizeof(A));
      ad[c] = fp16_at(xb);
      if constexpr (H::kMin) as[c] = fp16_at(xb + offsetof(A, s));
      a[c] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb + offsetof(A, qs)));
      prep[c] = W::prepare(a[c]);
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const uint8_t* wb = at(w, w_stride, r, b, W::kBlock);
      const float wd = H::scale(wb);
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) {
        const __m256i lanes = W::lanes(wb, a[c], prep[c]);
        // d = d_w * d_a rounded once, as the reference; then one fused
        // multiply-add per lane.
        facc[r][c] =
            _mm256_fmadd_ps(_mm256_set1_ps(wd * ad[c]), _mm256_cvtepi32_ps(lanes), facc[r][c]);
        if constexpr (H::kMin)
          summs[r][c] = fma_ss(fp16_at(wb + W::kMinOffset), as[c], summs[r][c]);
      }
    }
  }

  // sum = fma(d, the block's whole integer sum, sum) for block b of one row and
  // activation row.
  static float last_block(const uint8_t* w, const uint8_t* x, int64_t b, float sum) {
    const uint8_t* wb = at(w, 0, 0, b, W::kBlock);
    const uint8_t* xb = at(x, 0, 0, b, sizeof(A));
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb + offsetof(A, qs)));
    const int32_t total = hsum_epi32(W::lanes(wb, a, W::prepare(a)));
    return fma_ss(H::scale(wb) * fp16_at(xb), static_cast<float>(total), sum);
  }
};

}  // namespace tern::kernels::x86

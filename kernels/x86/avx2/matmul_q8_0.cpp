// Q8_0 x Q8_0 matrix product with AVX2 (vpmaddubsw), bit-identical to quant::vec_dot_q8_0_q8_0
// (the output head of most quantized files) for activations from its from_float.
//
// Theory of operation. The reference keeps 8 int32 lanes per 32-weight block, lane l summing
// w * a over elements 4l..4l+3, then acc[l] = fma(d_w * d_a, lane, acc[l]) block after block and
// the lanes are summed in hsum_float_8's tree. One block is one ymm. As llama.cpp's AVX2 kernel,
// vpmaddubsw multiplies |w| (unsigned; -128 becomes 128) by a * sign(w) into int16 pairs, and
// vpmaddwd by 1 adds pairs 2l and 2l+1 into lane l. A pair is at most 2 x 128 x 127, so nothing
// saturates as long as a != -128, which Q8_0's from_float never produces (it rounds to
// -127..127); sign(w) * -128 would wrap.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/x86/avx2/avx2.h"
#include "kernels/x86/intrinsics.h"
#include "quant/blocks.h"

namespace tern::kernels::avx2 {
namespace {

constexpr size_t kBlock = sizeof(BlockQ8_0);
constexpr size_t kQs = offsetof(BlockQ8_0, qs);
// See matmul_tq2_0.cpp: prefetching a tile's weights in memory order keeps decode streaming.
constexpr int64_t kMinPrefetchBytes = 4096;

float fp16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, sizeof h);
  return _cvtsh_ss(h);
}

// hsum_float_8: ((a0+a4) + (a2+a6)) + ((a1+a5) + (a3+a7)), as quant::sum_dot_lanes.
float hsum8(__m256 v) {
  __m128 r = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
  r = _mm_add_ps(r, _mm_movehl_ps(r, r));
  r = _mm_add_ss(r, _mm_movehdup_ps(r));
  return _mm_cvtss_f32(r);
}

// R weight rows x C activation rows over nb blocks.
template <int R, int C>
void tile(const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, int64_t nb,
          float* y, int64_t ldy) {
  __m256 facc[R][C];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) facc[r][c] = _mm256_setzero_ps();
  }
  const __m256i ones16 = _mm256_set1_epi16(1);

  // At least one tile ahead: the tile's later rows must have arrived by the time it starts.
  const int64_t tile_bytes = R * static_cast<int64_t>(w_stride);
  const int64_t ahead = tile_bytes > kMinPrefetchBytes ? tile_bytes : kMinPrefetchBytes;
  for (int64_t b = 0; b < nb; ++b) {
    const char* pf = reinterpret_cast<const char*>(w) + ahead + b * R * kBlock;
#pragma GCC unroll 16
    for (int i = 0; i * 64 < R * static_cast<int>(kBlock) + 64; ++i) {
      _mm_prefetch(pf + 64 * i, _MM_HINT_T0);
    }
    __m256i a[C];
    float ad[C];
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) {
      const uint8_t* xb = x + static_cast<size_t>(c) * x_stride + static_cast<size_t>(b) * kBlock;
      ad[c] = fp16_at(xb);
      a[c] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb + kQs));
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const uint8_t* wb = w + static_cast<size_t>(r) * w_stride + static_cast<size_t>(b) * kBlock;
      const float wd = fp16_at(wb);
      const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + kQs));
      const __m256i q_abs = _mm256_sign_epi8(q, q);
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) {
        const __m256i pairs = _mm256_maddubs_epi16(q_abs, _mm256_sign_epi8(a[c], q));
        const __m256i lanes = _mm256_madd_epi16(pairs, ones16);
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

using TileFn = void (*)(const uint8_t*, size_t, const uint8_t*, size_t, int64_t, float*, int64_t);

// tile<R, C> for R in 1..kRows and C in 1..kCols, indexed [R - 1][C - 1], for the edges.
template <int kRows, int kCols>
struct Tiles {
  TileFn fn[kRows][kCols];
  constexpr Tiles() : fn{} { fill<1, 1>(); }
  template <int R, int C>
  constexpr void fill() {
    fn[R - 1][C - 1] = tile<R, C>;
    if constexpr (C < kCols) {
      fill<R, C + 1>();
    } else if constexpr (R < kRows) {
      fill<R + 1, 1>();
    }
  }
};

constexpr int kMaxRows = kQ8RowTile > kQ8GemvRows ? kQ8RowTile : kQ8GemvRows;
constexpr Tiles<kMaxRows, kQ8ColTile> kTiles;

}  // namespace

void matmul_q8_0_q8_0(const TypeTraits& /*w_type*/, const std::byte* w, size_t w_stride,
                      int64_t /*n_rows*/, const std::byte* x, size_t x_stride, int64_t n_x,
                      int64_t k, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  const int64_t nb = k / kQk8_0;
  const auto* wb = reinterpret_cast<const uint8_t*>(w);
  const auto* xb = reinterpret_cast<const uint8_t*>(x);
  const int64_t rows_step = n_x == 1 ? kQ8GemvRows : kQ8RowTile;
  for (int64_t r = r0; r < r1; r += rows_step) {
    const int64_t nr = r1 - r < rows_step ? r1 - r : rows_step;
    for (int64_t m = 0; m < n_x; m += kQ8ColTile) {
      const int64_t nc = n_x - m < kQ8ColTile ? n_x - m : kQ8ColTile;
      kTiles.fn[nr - 1][nc - 1](wb + static_cast<size_t>(r) * w_stride, w_stride,
                                xb + static_cast<size_t>(m) * x_stride, x_stride, nb,
                                y + m * ldy + r, ldy);
    }
  }
}

}  // namespace tern::kernels::avx2

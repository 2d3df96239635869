// TQ2_0 x Q8_K matrix product with AVX2 (vpmaddubsw), bit-identical to quant::vec_dot_tq2_0_q8_K.
// Also runs TQ1_0 weights repacked to TQ2_0 at load.
//
// Theory of operation. The reference's int32 lane l of a block sums code * q8 over offsets
// 4l..4l+3 of each group of 32, minus bsums[2l] + bsums[2l+1]; each lane is then accumulated in
// float as fma(float(lane), d_x * d_w, acc[l]) and the eight lanes summed in hsum_float_8's tree.
// Here, as in llama.cpp's AVX2 kernel, vpmaddubsw multiplies a group's 32 codes (u8 0..3) by its
// 32 activations (s8) into 16 int16 pair sums; int16 lane i holds offsets 2i and 2i+1, so adding
// the 8 groups and then vpmaddwd by 1 gives exactly lane l = int16 lanes 2l + 2l+1. int16 is
// enough: a pair is at most 2 x 3 x 128 = 768 in magnitude, 8 groups 6144. Unlike llama.cpp the
// bsums are subtracted in int32, so any bsums (not only those of a real Q8_K row) give the
// reference's integer. Each group's codes are unpacked once and used for every activation row of
// the tile.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/x86/avx2/avx2.h"
#include "kernels/x86/intrinsics.h"
#include "kernels/x86/tile_driver.h"
#include "quant/blocks.h"

namespace tern::kernels::avx2 {
namespace {

constexpr size_t kWBlock = sizeof(BlockTQ2_0);
constexpr size_t kXBlock = sizeof(BlockQ8_K);
constexpr size_t kXQs = offsetof(BlockQ8_K, qs);
constexpr size_t kXBsums = offsetof(BlockQ8_K, bsums);
constexpr size_t kWScale = offsetof(BlockTQ2_0, d);
// Codes of group g (elements 32g..32g+31): qs[32 h + m] holds element 128 h + 32 n + m in bits 2n.
inline __m256i codes(const uint8_t* qs, int g, __m256i mask3) {
  const __m256i bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * (g / 4)));
  return _mm256_and_si256(_mm256_srli_epi16(bytes, 2 * (g % 4)), mask3);
}

// R weight rows x C activation rows over nb blocks; unit r * C + c.
template <int R, int C>
void tq2_tile(const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, int64_t nb,
              float* y, int64_t ldy, const x86::NoContext& /*ctx*/) {
  constexpr int kUnits = R * C;
  const __m256i mask3 = _mm256_set1_epi8(3);
  const __m256i ones16 = _mm256_set1_epi16(1);
  __m256 facc[kUnits];
#pragma GCC unroll 16
  for (int un = 0; un < kUnits; ++un) facc[un] = _mm256_setzero_ps();

  const x86::WeightPrefetch<R, kWBlock> prefetch(w, w_stride);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* xb[C];
    const uint8_t* wq[R];
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) {
      xb[c] = x + static_cast<size_t>(c) * x_stride + static_cast<size_t>(b) * kXBlock;
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      wq[r] = w + static_cast<size_t>(r) * w_stride + static_cast<size_t>(b) * kWBlock;
    }
    prefetch.at(b);
    __m256i sum16[kUnits];
#pragma GCC unroll 8
    for (int g = 0; g < 8; ++g) {
      // Activations loaded once for the R rows (see the AVX-512 kernel: loads limit this loop).
      __m256i a[C];
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) {
        a[c] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb[c] + kXQs + 32 * g));
        if constexpr (R > 1) asm("" : "+x"(a[c]));
      }
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        const __m256i q = codes(wq[r], g, mask3);
#pragma GCC unroll 16
        for (int c = 0; c < C; ++c) {
          const __m256i p = _mm256_maddubs_epi16(q, a[c]);
          sum16[r * C + c] = g == 0 ? p : _mm256_add_epi16(sum16[r * C + c], p);
        }
      }
    }
    float wd[R];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      uint16_t d16;
      std::memcpy(&d16, wq[r] + kWScale, sizeof d16);
      wd[r] = _cvtsh_ss(d16);
    }
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) {
      float xd;
      std::memcpy(&xd, xb[c], sizeof xd);
      const __m256i bs = _mm256_madd_epi16(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb[c] + kXBsums)), ones16);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        const int un = r * C + c;
        const __m256i lanes = _mm256_sub_epi32(_mm256_madd_epi16(sum16[un], ones16), bs);
        // d = d_x * d_w rounded as the reference does, then one fused multiply-add per lane.
        facc[un] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lanes), _mm256_set1_ps(xd * wd[r]), facc[un]);
      }
    }
  }
#pragma GCC unroll 16
  for (int un = 0; un < kUnits; ++un)
    y[static_cast<int64_t>(un % C) * ldy + un / C] = x86::hsum8(facc[un]);
}

// The tiles for x86::TileDriver.
struct Tq2Tiles : x86::TileShape<kTq2RowTile, kTq2ColTile, kTq2GemvRows, kQkK> {
  template <int R, int C>
  static void tile(const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, int64_t nb,
                   float* y, int64_t ldy, const Context& ctx) {
    tq2_tile<R, C>(w, w_stride, x, x_stride, nb, y, ldy, ctx);
  }
};

}  // namespace

void matmul_tq2_0_q8_K(const TypeTraits& /*w_type*/, const std::byte* w, size_t w_stride,
                       int64_t /*n_rows*/, const std::byte* x, size_t x_stride, int64_t n_x,
                       int64_t k, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  x86::TileDriver<Tq2Tiles>::run(w, w_stride, x, x_stride, n_x, k, y, ldy, r0, r1);
}

}  // namespace tern::kernels::avx2

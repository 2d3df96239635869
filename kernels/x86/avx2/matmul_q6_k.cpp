// Q6_K x Q8_K matrix product with AVX2 (vpmaddubsw), bit-identical to quant::vec_dot_q6_K_q8_K
// (the output head llama.cpp writes in Q4_0 and ternary files). The AVX-512 table inherits it: the
// product streams at memory speed with AVX2 instructions.
//
// Theory of operation. The reference's int32 lane l of a block sums, over the eight groups g of
// 32 elements, scales[2g + l/4] * (the lane's four (q - 32) * a products at 32g + 4l..4l+3),
// then acc[l] = fma(d_a * d_w, float(lane), acc[l]) across blocks, and the lanes are summed in
// hsum_float_8's tree. A group's 6-bit codes (u8 0..63) are put together from ql and qh in
// element order; vpmaddubsw multiplies them by the activations into int16 pairs (at most
// 2 x 63 x 128), 32 x a is subtracted the same way (computed once per activation group), so pair
// i is exactly (q - 32) * a over elements 2i and 2i+1; vpmaddwd by the pair's sub-block scale
// (int16) then gives scale * part in lane l, exact in int32 (at most 128 x 16384 per group).
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/x86/avx2/avx2.h"
#include "kernels/x86/intrinsics.h"
#include "kernels/x86/tile_driver.h"
#include "quant/blocks.h"
#include "quant/kquants.h"

namespace tern::kernels::avx2 {
namespace {

struct Q6Tiles : x86::TileShape<kQ6RowTile, kQ6ColTile, kQ6GemvRows, kQkK> {
  template <int R, int C>
  static void tile(const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, int64_t nb,
                   float* y, int64_t ldy, const x86::NoContext& /*ctx*/) {
    constexpr size_t kWBlock = sizeof(BlockQ6_K);
    constexpr size_t kXBlock = sizeof(BlockQ8_K);
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    const __m256i low2 = _mm256_set1_epi8(3);
    const __m256i bias = _mm256_set1_epi8(32);
    // int16 pair (s[2g], s[2g+1]), broadcast: s[2g] to the low half, s[2g+1] to the high half.
    const __m256i split_pair = _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2,
                                                3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);
    __m256 facc[R][C];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) facc[r][c] = _mm256_setzero_ps();
    }
    const x86::WeightPrefetch<R, kWBlock> prefetch(w, w_stride);
    for (int64_t b = 0; b < nb; ++b) {
      prefetch.at(b);
      const uint8_t* wb[R];
      const uint8_t* xb[C];
      __m256i scales[R], sum[R][C];
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        wb[r] = w + static_cast<size_t>(r) * w_stride + static_cast<size_t>(b) * kWBlock;
        scales[r] = _mm256_cvtepi8_epi16(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(wb[r] + offsetof(BlockQ6_K, scales))));
#pragma GCC unroll 16
        for (int c = 0; c < C; ++c) sum[r][c] = _mm256_setzero_si256();
      }
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) {
        xb[c] = x + static_cast<size_t>(c) * x_stride + static_cast<size_t>(b) * kXBlock;
      }
#pragma GCC unroll 8
      for (int g = 0; g < 8; ++g) {
        const int h = g / 4, quarter = g % 4;
        __m256i a[C], a32[C];
#pragma GCC unroll 16
        for (int c = 0; c < C; ++c) {
          a[c] = _mm256_loadu_si256(
              reinterpret_cast<const __m256i*>(xb[c] + offsetof(BlockQ8_K, qs) + 32 * g));
          a32[c] = _mm256_maddubs_epi16(bias, a[c]);
        }
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r) {
          // Element 128 h + 32 quarter + l: low 4 bits in ql[64 h + 32 (quarter % 2) + l] at bit
          // 4 (quarter / 2), high 2 bits in qh[32 h + l] at bit 2 quarter (kquants.h).
          const __m256i ql = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(
              wb[r] + offsetof(BlockQ6_K, ql) + 64 * h + 32 * (quarter % 2)));
          const __m256i qh = _mm256_loadu_si256(
              reinterpret_cast<const __m256i*>(wb[r] + offsetof(BlockQ6_K, qh) + 32 * h));
          const __m256i code = _mm256_or_si256(
              _mm256_and_si256(_mm256_srli_epi16(ql, 4 * (quarter / 2)), low4),
              _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * quarter), low2), 4));
          const __m256i scale = _mm256_shuffle_epi8(
              _mm256_permutevar8x32_epi32(scales[r], _mm256_set1_epi32(g)), split_pair);
#pragma GCC unroll 16
          for (int c = 0; c < C; ++c) {
            const __m256i pairs = _mm256_sub_epi16(_mm256_maddubs_epi16(code, a[c]), a32[c]);
            sum[r][c] = _mm256_add_epi32(sum[r][c], _mm256_madd_epi16(pairs, scale));
          }
        }
      }
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        const float wd = x86::fp16_at(wb[r] + offsetof(BlockQ6_K, d));
#pragma GCC unroll 16
        for (int c = 0; c < C; ++c) {
          float xd;
          std::memcpy(&xd, xb[c], sizeof xd);
          // d = d_a * d_w rounded once, as the reference; then one fused multiply-add per lane.
          facc[r][c] =
              _mm256_fmadd_ps(_mm256_set1_ps(xd * wd), _mm256_cvtepi32_ps(sum[r][c]), facc[r][c]);
        }
      }
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) y[static_cast<int64_t>(c) * ldy + r] = x86::hsum8(facc[r][c]);
    }
  }
};

}  // namespace

void matmul_q6_K_q8_K(const TypeTraits& /*w_type*/, const std::byte* w, size_t w_stride,
                      int64_t /*n_rows*/, const std::byte* x, size_t x_stride, int64_t n_x,
                      int64_t k, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  x86::TileDriver<Q6Tiles>::run(w, w_stride, x, x_stride, n_x, k, y, ldy, r0, r1);
}

}  // namespace tern::kernels::avx2

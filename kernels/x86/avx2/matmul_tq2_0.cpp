// TQ2_0 x Q8_K matrix product with AVX2 (vpmaddubsw), bit-identical to quant::vec_dot_tq2_0_q8_K,
// on weights interleaved at load in pairs of rows. Also runs TQ1_0 weights, repacked to TQ2_0
// rows and then interleaved.
//
// Theory of operation. The reference's int32 lane l of a block sums code * q8 over offsets
// 4l..4l+3 of each group of 32, minus bsums[2l] + bsums[2l+1]; each lane is then accumulated in
// float as fma(float(lane), d_x * d_w, acc[l]) and the eight lanes summed in hsum_float_8's tree.
//
// Pair layout (interleave_tq2_0_pair). Pair p holds rows 2p and 2p + 1 in 2 * w_stride bytes:
// first the codes, 128 bytes per block, as four 32-byte chunks c = 2h + s whose 128-bit lane i is
// qs[32h + 16s .. 32h + 16s + 15] of row i; then the scales, 4 bytes per block (d of rows 0, 1).
// Masked (groups 0 and 1) or shifted right by 4 and masked (groups 2 and 3), chunk (h, s) holds
// elements 16s..16s+15 of group 4h + n of both rows, as codes (n even) or codes x 4 (n odd): one
// shift per chunk instead of three. vpmaddubsw against those activations broadcast to both lanes
// gives int16 lane j of 128-bit lane i = row i's offsets 16s + 2j, 16s + 2j + 1 (times 4 for odd
// n). The even and the odd groups are summed apart in int16 (a pair is at most 2 x 12 x 128 =
// 3072 in magnitude, four of them 12288), the odd sum shifted right by 2 (exact: every term is a
// multiple of 4) and added; vpmaddwd by 1 then gives, in int32 lane t of 128-bit lane i, exactly
// row i's reference lane 4s + t. So one accumulator per pair, activation row and s holds the lanes
// of two rows with no folding, and one float step serves two rows (their scales are one 4-byte
// load and one conversion per block). The bsums are subtracted in int32, so any bsums (not only
// those of a real Q8_K row) give the reference's integer. s is the outer loop so that only one
// set of int16 accumulators is live.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/tile_table.h"
#include "kernels/x86/avx2/avx2.h"
#include "kernels/x86/intrinsics.h"
#include "kernels/x86/tile_driver.h"
#include "kernels/x86/tq2_0_rows.h"
#include "quant/blocks.h"

namespace tern::kernels::avx2 {
namespace {

constexpr int kPairRows = kTq2InterleaveRows;
static_assert(kPairRows == 2);
using PairRows = x86::Tq2Rows<kPairRows>;  // the layout and its interleave
constexpr size_t kPairCodes = PairRows::kCodes;
constexpr size_t kPairScales = PairRows::kScales;
constexpr int kRowPairs = kTq2RowTile / kPairRows;    // pairs per step, batches
constexpr int kGemvPairs = kTq2GemvRows / kPairRows;  // pairs per step, one activation row
static_assert(kTq2RowTile % kPairRows == 0 && kTq2GemvRows % kPairRows == 0);
constexpr int kMaxPairs = kRowPairs > kGemvPairs ? kRowPairs : kGemvPairs;

// P pairs (from pair p0) x C activation rows over nb blocks; rows outside [r0, r1) not stored.
template <int P, int C>
void pair_tile(const uint8_t* w, size_t w_stride, int64_t p0, const uint8_t* x, size_t x_stride,
               int64_t nb, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  const __m256i mask_lo = _mm256_set1_epi8(0x03);
  const __m256i mask_hi = _mm256_set1_epi8(0x0c);
  const __m256i ones16 = _mm256_set1_epi16(1);
  const __m256i row_of_lane = _mm256_set_epi32(1, 1, 1, 1, 0, 0, 0, 0);
  const uint8_t* pw = w + static_cast<size_t>(p0) * kPairRows * w_stride;
  const size_t pair_bytes = kPairRows * w_stride;
  const size_t scales_at = static_cast<size_t>(nb) * kPairCodes;
  __m256 facc[P][C][2];
#pragma GCC unroll 8
  for (int q = 0; q < P; ++q) {
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) facc[q][c][0] = facc[q][c][1] = _mm256_setzero_ps();
  }

  const x86::WeightPrefetch<kPairRows * P, x86::kTq2WBlock> prefetch(pw, w_stride);
  for (int64_t b = 0; b < nb; ++b) {
    prefetch.at(b);
    const uint8_t* xb[C];
    __m256i neg_bsums[C];
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) {
      xb[c] = x + static_cast<size_t>(c) * x_stride + static_cast<size_t>(b) * x86::kQ8KBlock;
      neg_bsums[c] = _mm256_madd_epi16(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb[c] + x86::kQ8KBsums)), ones16);
    }
    const uint8_t* codes = pw + static_cast<size_t>(b) * kPairCodes;
#pragma GCC unroll 2
    for (int s = 0; s < 2; ++s) {
      // [0]: groups n = 0, 2 (codes); [1]: groups n = 1, 3 (codes x 4).
      __m256i sum16[P][C][2];
#pragma GCC unroll 2
      for (int h = 0; h < 2; ++h) {
        __m256i bytes[P];
#pragma GCC unroll 8
        for (int q = 0; q < P; ++q) {
          bytes[q] = _mm256_loadu_si256(
              reinterpret_cast<const __m256i*>(codes + q * pair_bytes + 32 * (2 * h + s)));
          asm("" : "+x"(bytes[q]));  // one load, not one per mask
        }
#pragma GCC unroll 4
        for (int n = 0; n < 4; ++n) {
          __m256i a[C];
#pragma GCC unroll 8
          for (int c = 0; c < C; ++c) {
            a[c] = _mm256_broadcastsi128_si256(_mm_loadu_si128(
                reinterpret_cast<const __m128i*>(xb[c] + x86::kQ8KQs + 32 * (4 * h + n) + 16 * s)));
            if constexpr (P > 1) asm("" : "+x"(a[c]));
          }
#pragma GCC unroll 8
          for (int q = 0; q < P; ++q) {
            if (n == 2) bytes[q] = _mm256_srli_epi16(bytes[q], 4);
            const __m256i code = _mm256_and_si256(bytes[q], n % 2 == 0 ? mask_lo : mask_hi);
#pragma GCC unroll 8
            for (int c = 0; c < C; ++c) {
              const __m256i p = _mm256_maddubs_epi16(code, a[c]);
              __m256i& sum = sum16[q][c][n % 2];
              sum = h == 0 && n < 2 ? p : _mm256_add_epi16(sum, p);
              // Keeps the sums a chain: reassociated, every product is live (spilled) at once.
              asm("" : "+x"(sum));
            }
          }
        }
      }
#pragma GCC unroll 8
      for (int q = 0; q < P; ++q) {
        uint32_t d2;
        std::memcpy(&d2, pw + q * pair_bytes + scales_at + static_cast<size_t>(b) * kPairScales,
                    sizeof d2);
        const __m256 dw = _mm256_permutevar8x32_ps(
            _mm256_castps128_ps256(_mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(d2)))),
            row_of_lane);
#pragma GCC unroll 8
        for (int c = 0; c < C; ++c) {
          float xd;
          std::memcpy(&xd, xb[c], sizeof xd);
          // The bsums of lanes 4s..4s+3, in both 128-bit lanes.
          const __m256i bs =
              _mm256_permute2x128_si256(neg_bsums[c], neg_bsums[c], s == 0 ? 0x00 : 0x11);
          const __m256i sum =
              _mm256_add_epi16(sum16[q][c][0], _mm256_srai_epi16(sum16[q][c][1], 2));
          const __m256i lanes = _mm256_sub_epi32(_mm256_madd_epi16(sum, ones16), bs);
          // d = d_x * d_w rounded as the reference does, then one fused multiply-add per lane.
          facc[q][c][s] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lanes),
                                          _mm256_mul_ps(_mm256_set1_ps(xd), dw), facc[q][c][s]);
        }
      }
    }
  }
#pragma GCC unroll 8
  for (int q = 0; q < P; ++q) {
    const int64_t row = (p0 + q) * kPairRows;
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) {
      float* yc = y + static_cast<int64_t>(c) * ldy;
      // Row i: the reference's lanes 0..3 (lane i of facc[s = 0]) then 4..7 (of facc[s = 1]).
      if (row >= r0 && row < r1) {
        yc[row] = x86::hsum8(_mm256_permute2f128_ps(facc[q][c][0], facc[q][c][1], 0x20));
      }
      if (row + 1 >= r0 && row + 1 < r1) {
        yc[row + 1] = x86::hsum8(_mm256_permute2f128_ps(facc[q][c][0], facc[q][c][1], 0x31));
      }
    }
  }
}

using PairTileFn = void (*)(const uint8_t*, size_t, int64_t, const uint8_t*, size_t, int64_t,
                            float*, int64_t, int64_t, int64_t);

// pair_tile<P, C> indexed [P - 1][C - 1].
struct MakePairTile {
  template <int P, int C>
  static constexpr PairTileFn get() {
    return &pair_tile<P, C>;
  }
};
constexpr TileTable<PairTileFn, kMaxPairs, kTq2ColTile, MakePairTile> kPairTiles{};

}  // namespace

void interleave_tq2_0_pair(const std::byte* rows, size_t stride, std::byte* dst, int64_t n) {
  PairRows::interleave(rows, stride, dst, n);
}

void matmul_tq2_0_q8_K(const TypeTraits& /*w_type*/, const std::byte* w, size_t w_stride,
                       int64_t /*n_rows*/, const std::byte* x, size_t x_stride, int64_t n_x,
                       int64_t k, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  const int64_t nb = k / kQkK;
  const auto* wb = reinterpret_cast<const uint8_t*>(w);
  const auto* xb = reinterpret_cast<const uint8_t*>(x);
  const int64_t step = n_x == 1 ? kGemvPairs : kRowPairs;
  const int64_t p_end = (r1 + kPairRows - 1) / kPairRows;
  for (int64_t p = r0 / kPairRows; p < p_end; p += step) {
    const int64_t np = p_end - p < step ? p_end - p : step;
    for (int64_t m = 0; m < n_x; m += kTq2ColTile) {
      const int64_t nc = n_x - m < kTq2ColTile ? n_x - m : kTq2ColTile;
      kPairTiles.fn[np - 1][nc - 1](wb, w_stride, p, xb + static_cast<size_t>(m) * x_stride,
                                    x_stride, nb, y + m * ldy, ldy, r0, r1);
    }
  }
}

}  // namespace tern::kernels::avx2

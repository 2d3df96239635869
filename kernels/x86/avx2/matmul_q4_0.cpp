// Q4_0 x Q8_0 matrix product with AVX2 (vpmaddubsw), bit-identical to the scalar reference in
// both of its orders: quant::vec_dot_q4_0_q8_0_repacked for matrices of a multiple of 8 rows
// (llama.cpp repacks those at load and runs its interleaved gemv/gemm) and
// quant::vec_dot_q4_0_q8_0 (the 8-lane vec_dot) for the others.
//
// Theory of operation. Codes are u8 0..15 with weight = code - 8. vpmaddubsw multiplies them as
// unsigned by the signed activations into int16 pairs (at most 2 x 15 x 128 = 3840), and 8 x a,
// computed the same way once per activation block, is subtracted from them: each pair is then an
// exact sum of (code - 8) * a (at most 2 x 8 x 128; two pairs added first stay below 2^13).
//  - 8-lane order (kernels/x86/block_lanes.h): one block is one ymm, its 16 bytes unpacked to
//    [low nibbles | high nibbles] = elements 0..31 in order; vpmaddwd by 1 adds pairs 2l and 2l+1
//    into lane l (elements 4l..4l+3).
//  - Repacked order: one f32 accumulator per output, acc = fma(float(block sum), d_w * d_a, acc)
//    block after block, with the block sum over all 32 products. The 8 rows of a tile sit in the
//    8 lanes of one ymm accumulator, so the float steps are plain vector ops. Rows 2j and 2j+1
//    fill one ymm, a row per 128-bit lane: low nibbles times the activations' first half, high
//    nibbles times the second, added in int16 and widened by vpmaddwd. Four such ymm are reduced
//    with unpack/add steps (exact integers) to one whose lane 4k + j holds row 2j + k's block sum;
//    the rows' scales are stored in that lane order by the load-time interleave (x86::Q4Groups,
//    groups of 8 rows), and the tile is stored back in row order. The 8-lane order reads the
//    file's rows as they are.
#include <cstddef>
#include <cstdint>

#include "kernels/x86/avx2/avx2.h"
#include "kernels/x86/avx2/simd.h"
#include "kernels/x86/block_lanes.h"
#include "kernels/x86/intrinsics.h"
#include "kernels/x86/q4_0_orders.h"
#include "kernels/x86/tile_driver.h"
#include "quant/blocks.h"

namespace tern::kernels::avx2 {
namespace {

constexpr size_t kWBlock = sizeof(BlockQ4_0);
constexpr size_t kWQs = offsetof(BlockQ4_0, qs);
constexpr size_t kXQs = offsetof(BlockQ8_0, qs);

// The 8-lane (vec_dot) order, for matrices whose row count is not a multiple of 8.
struct Q4Lanes {
  static constexpr size_t kBlock = kWBlock;
  static constexpr int kRowTile = 1;
  static constexpr int kColTile = 4;
  static constexpr int kGemvRows = 2;
  // 8 x the pair sums of the activations.
  static __m256i prepare(__m256i a) { return _mm256_maddubs_epi16(_mm256_set1_epi8(8), a); }
  static __m256i lanes(const uint8_t* block, __m256i a, __m256i eight_a) {
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + kWQs));
    const __m256i codes = _mm256_and_si256(
        _mm256_inserti128_si256(_mm256_castsi128_si256(q), _mm_srli_epi16(q, 4), 1),
        _mm256_set1_epi8(0x0f));
    const __m256i pairs = _mm256_sub_epi16(_mm256_maddubs_epi16(codes, a), eight_a);
    return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
  }
};

// The repacked order on rows interleaved at load in groups of 8 (x86::Q4Groups): 2 rows per ymm,
// so a block is the 8 scales (one 128-bit load) and four 256-bit loads of codes.
struct Q4Group : Regs {
  static constexpr int kPerReg = 2;
  static constexpr int kColTile = kQ4ColTile;

  // The activations prepared once for all the rows, then rows 2j and 2j+1 per ymm: low nibbles
  // times the activations' first half, high nibbles times the second, added in int16, minus
  // 8 x a and widened by vpmaddwd.
  template <int C, class Add>
  [[gnu::always_inline]] static void sums(const uint8_t* scales, const uint8_t* codes,
                                          const uint8_t* const (&xb)[C], Add add) {
    const __m256i nibble = _mm256_set1_epi8(0x0f);
    const __m256i eight = _mm256_set1_epi8(8);
    const __m256i ones16 = _mm256_set1_epi16(1);
    __m256i alo[C], ahi[C], eight_a[C];
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) {
      alo[c] = _mm256_broadcastsi128_si256(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(xb[c] + kXQs)));
      ahi[c] = _mm256_broadcastsi128_si256(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(xb[c] + kXQs + 16)));
      eight_a[c] = _mm256_add_epi16(_mm256_maddubs_epi16(eight, alo[c]),
                                    _mm256_maddubs_epi16(eight, ahi[c]));
    }
    const F wd = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(scales)));
    __m256i v[C][4];
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      const __m256i q = loadu(codes + 32 * j);
      const __m256i lo = _mm256_and_si256(q, nibble);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), nibble);
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) {
        const __m256i pairs =
            _mm256_add_epi16(_mm256_maddubs_epi16(lo, alo[c]), _mm256_maddubs_epi16(hi, ahi[c]));
        v[c][j] = _mm256_madd_epi16(_mm256_sub_epi16(pairs, eight_a[c]), ones16);
      }
    }
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) add(c, x86::block_sums<Regs>(v[c]), wd);
  }

  // A plain store for a whole group (vmaskmovps stores are microcoded and slow on AMD cores).
  static void store(float* y, F acc, int lo, int hi) {
    const __m256i to_rows =
        loadu(reinterpret_cast<const uint8_t*>(x86::RepackedLanes<kPerReg>::kToRows.lane));
    const F rows = _mm256_permutevar8x32_ps(acc, to_rows);
    if (lo == 0 && hi == 8) {
      _mm256_storeu_ps(y, rows);
      return;
    }
    const __m256i index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i in_range = _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(lo), index),
                                                 _mm256_cmpgt_epi32(_mm256_set1_epi32(hi), index));
    _mm256_maskstore_ps(y, in_range, rows);
  }
};
using Groups = x86::Q4Groups<Q4Group>;
static_assert(Groups::kRows == kQ4InterleaveRows && kQ4RowTile == Groups::kRows &&
              kQ4GemvRows == Groups::kRows);

}  // namespace

void interleave_q4_0_rows8(const std::byte* rows, size_t stride, std::byte* dst, int64_t n) {
  Groups::interleave(rows, stride, dst, n);
}

void matmul_q4_0_q8_0(const TypeTraits& /*w_type*/, const std::byte* w, size_t w_stride,
                      int64_t n_rows, const std::byte* x, size_t x_stride, int64_t n_x, int64_t k,
                      float* y, int64_t ldy, int64_t r0, int64_t r1) {
  x86::matmul_q4_0<kQ4InterleaveRowMultiple, Groups, Q4Lanes>(w, w_stride, n_rows, x, x_stride, n_x,
                                                              k, y, ldy, r0, r1);
}

}  // namespace tern::kernels::avx2

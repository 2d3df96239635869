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
//    the rows' scales are gathered in that lane order, and the tile is stored back in row order.
// No load-time repack: the file's blocks are read as they are.
#include <cstddef>
#include <cstdint>
#include <cstring>

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

// The repacked order (x86::Q4RepackedTiles): 2 rows per ymm, a row per 128-bit lane.
struct Q4Repacked : Regs {
  static constexpr int kPerReg = 2;
  static constexpr int kColTile = kQ4ColTile;
  using Lanes = x86::RepackedLanes<kPerReg>;

  struct Tile {
    Tile(const Lanes& lanes, int /*rows*/)
        : scale_index(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(lanes.row_offset))),
          to_rows(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(lanes.lane))),
          store_mask(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(lanes.stored))) {}
    __m256i scale_index, to_rows, store_mask;
  };

  // The rows' scales in lane order (4 bytes from each scale's address; the low 2 are it).
  static F scales(const Tile& t, const uint8_t* wb) {
    // The low two bytes of each gathered int32, packed into the low 128 bits.
    const __m256i low_halves =
        _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1, 0, 1, 4, 5, 8, 9,
                         12, 13, -1, -1, -1, -1, -1, -1, -1, -1);
    const __m256i s = _mm256_permute4x64_epi64(
        _mm256_shuffle_epi8(
            _mm256_i32gather_epi32(reinterpret_cast<const int*>(wb), t.scale_index, 1), low_halves),
        0x08);
    return _mm256_cvtph_ps(_mm256_castsi256_si128(s));
  }

  // The activations prepared once for all the rows, then rows 2j and 2j+1 per ymm: low nibbles
  // times the activations' first half, high nibbles times the second, added in int16, minus
  // 8 x a and widened by vpmaddwd.
  template <int C, class Add>
  static void sums(const Lanes& lanes, const Tile& t, const uint8_t* w, size_t off,
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
    const F wd = scales(t, w + off);
    __m256i v[C][4];
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      const __m256i q = _mm256_inserti128_si256(
          _mm256_castsi128_si256(
              _mm_loadu_si128(reinterpret_cast<const __m128i*>(lanes.qs[2 * j] + off))),
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(lanes.qs[2 * j + 1] + off)), 1);
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
    for (int c = 0; c < C; ++c) add(c, x86::block_sums<Q4Repacked>(v[c]), wd);
  }

  static void store(const Tile& t, float* y, F acc) {
    _mm256_maskstore_ps(y, t.store_mask, _mm256_permutevar8x32_ps(acc, t.to_rows));
  }
};
static_assert(4 * Q4Repacked::kPerReg == kQ4RowTile && kQ4GemvRows == kQ4RowTile);

}  // namespace

void matmul_q4_0_q8_0(const TypeTraits& /*w_type*/, const std::byte* w, size_t w_stride,
                      int64_t n_rows, const std::byte* x, size_t x_stride, int64_t n_x, int64_t k,
                      float* y, int64_t ldy, int64_t r0, int64_t r1) {
  x86::matmul_q4_0_rows<x86::Q4RepackedTiles<Q4Repacked>, Q4Lanes>(w, w_stride, n_rows, x, x_stride,
                                                                   n_x, k, y, ldy, r0, r1);
}

}  // namespace tern::kernels::avx2

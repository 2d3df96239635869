// Q4_0 x Q8_0 matrix product with AVX-512 VNNI (vpdpbusd), bit-identical to the scalar reference
// in both of its orders: quant::vec_dot_q4_0_q8_0_repacked for matrices of a multiple of 8 rows
// (llama.cpp repacks those at load and runs its interleaved gemv/gemm) and
// quant::vec_dot_q4_0_q8_0 (the 8-lane vec_dot) for the others.
//
// Theory of operation. Codes are u8 0..15 with weight = code - 8; vpdpbusd multiplies them as
// unsigned by the signed activations, and every int32 lane starts at -8 times the sum of the
// activations it will meet, so each lane is an exact sum of (code - 8) * a.
//  - 8-lane order (kernels/x86/block_lanes.h): one block is one ymm, its 16 bytes unpacked to
//    [low nibbles | high nibbles] = elements 0..31 in order, so lane l holds elements 4l..4l+3.
//  - Repacked order: one f32 accumulator per output, acc = fma(float(block sum), d_w * d_a, acc)
//    block after block, with the block sum over all 32 products. Here the 16 rows of a tile
//    sit in the 16 lanes of one zmm accumulator, so the float steps are plain vector ops. Rows
//    4j..4j+3 fill one zmm, a row per 128-bit lane: its 16 bytes unpacked to low nibbles (elements
//    0..15) and high nibbles (16..31), times the activations' two halves broadcast to every lane
//    (two vpdpbusd). Four such zmm are reduced with unpack/add steps (exact integers, any order)
//    to one zmm whose lane 4k + j holds row 4j + k's block sum; the rows' scales are gathered in
//    the same lane order, and the lanes are put back in row order when the tile is stored.
// No load-time repack: the file's blocks are read as they are.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/x86/avx512/avx512.h"
#include "kernels/x86/avx512/simd.h"
#include "kernels/x86/block_lanes.h"
#include "kernels/x86/intrinsics.h"
#include "kernels/x86/q4_0_orders.h"
#include "kernels/x86/tile_driver.h"
#include "quant/blocks.h"

namespace tern::kernels::avx512 {
namespace {

constexpr size_t kWBlock = sizeof(BlockQ4_0);
constexpr size_t kWQs = offsetof(BlockQ4_0, qs);
constexpr size_t kXQs = offsetof(BlockQ8_0, qs);

// The 8-lane (vec_dot) order, for matrices whose row count is not a multiple of 8.
struct Q4Lanes {
  static constexpr size_t kBlock = kWBlock;
  static constexpr int kRowTile = 1;
  static constexpr int kColTile = 4;
  static constexpr int kGemvRows = 4;
  // -8 * (the lane's four activations summed).
  static __m256i prepare(__m256i a) {
    return _mm256_sub_epi32(_mm256_setzero_si256(),
                            _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(8), a));
  }
  static __m256i lanes(const uint8_t* block, __m256i a, __m256i start) {
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + kWQs));
    const __m256i codes = _mm256_and_si256(
        _mm256_inserti128_si256(_mm256_castsi128_si256(q), _mm_srli_epi16(q, 4), 1),
        _mm256_set1_epi8(0x0f));
    return _mm256_dpbusd_epi32(start, codes, a);
  }
};

// The repacked order (x86::Q4RepackedTiles): 4 rows per zmm, a row per 128-bit lane.
struct Q4Repacked : Regs {
  static constexpr int kPerReg = 4;
  static constexpr int kColTile = kQ4ColTile;
  using Lanes = x86::RepackedLanes<kPerReg>;

  struct Tile {
    Tile(const Lanes& lanes, int rows)
        : scale_index(_mm512_loadu_si512(lanes.row_offset)),
          to_rows(_mm512_loadu_si512(lanes.lane)),
          mask(static_cast<__mmask16>((1u << rows) - 1)) {}
    __m512i scale_index, to_rows;
    __mmask16 mask;
  };

  // The rows' scales in lane order (4 bytes from each scale's address; the low 2 are it).
  static F scales(const Tile& t, const uint8_t* wb) {
    return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_i32gather_epi32(t.scale_index, wb, 1)));
  }

  // Codes of rows 4j..4j+3 unpacked once for all the activation rows, then two vpdpbusd per
  // register and activation row from the start value -8 * (the activations each lane meets).
  template <int C, class Add>
  static void sums(const Lanes& lanes, const Tile& t, const uint8_t* w, size_t off,
                   const uint8_t* const (&xb)[C], Add add) {
    const __m512i nibble = _mm512_set1_epi8(0x0f);
    const __m512i eight = _mm512_set1_epi8(8);
    const F wd = scales(t, w + off);
    __m512i lo[4], hi[4];
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      const auto at = [&](int i) {
        return _mm_loadu_si128(reinterpret_cast<const __m128i*>(lanes.qs[4 * j + i] + off));
      };
      const __m256i r01 = _mm256_inserti128_si256(_mm256_castsi128_si256(at(0)), at(1), 1);
      const __m256i r23 = _mm256_inserti128_si256(_mm256_castsi128_si256(at(2)), at(3), 1);
      const __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(r01), r23, 1);
      lo[j] = _mm512_and_si512(q, nibble);
      hi[j] = _mm512_and_si512(_mm512_srli_epi16(q, 4), nibble);
    }
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) {
      const __m512i alo =
          _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(xb[c] + kXQs)));
      const __m512i ahi = _mm512_broadcast_i32x4(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(xb[c] + kXQs + 16)));
      // Lane i of every row: -8 * (a[4i..4i+3] + a[16+4i..16+4i+3]).
      const __m512i start = _mm512_sub_epi32(
          _mm512_setzero_si512(),
          _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), eight, alo), eight, ahi));
      __m512i v[4];
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) {
        v[j] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(start, lo[j], alo), hi[j], ahi);
      }
      add(c, x86::block_sums<Q4Repacked>(v), wd);
    }
  }

  static void store(const Tile& t, float* y, F acc) {
    _mm512_mask_storeu_ps(y, t.mask, _mm512_permutexvar_ps(t.to_rows, acc));
  }
};
static_assert(4 * Q4Repacked::kPerReg == kQ4RowTile && kQ4GemvRows == kQ4RowTile);

}  // namespace

void matmul_q4_0_q8_0(const TypeTraits& /*w_type*/, const std::byte* w, size_t w_stride,
                      int64_t n_rows, const std::byte* x, size_t x_stride, int64_t n_x, int64_t k,
                      float* y, int64_t ldy, int64_t r0, int64_t r1) {
  x86::matmul_q4_0<x86::Q4RepackedTiles<Q4Repacked>, Q4Lanes>(w, w_stride, n_rows, x, x_stride, n_x,
                                                              k, y, ldy, r0, r1);
}

}  // namespace tern::kernels::avx512

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
#include "kernels/x86/block_lanes.h"
#include "kernels/x86/intrinsics.h"
#include "kernels/x86/q4_0_orders.h"
#include "kernels/x86/tile_driver.h"
#include "quant/blocks.h"

namespace tern::kernels::avx512 {
namespace {

constexpr size_t kWBlock = sizeof(BlockQ4_0);
constexpr size_t kWQs = offsetof(BlockQ4_0, qs);
constexpr size_t kXBlock = sizeof(BlockQ8_0);
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

// Repacked order: 4 rows per zmm.
using Lanes = x86::RepackedLanes<4>;
static_assert(Lanes::kRows == kQ4RowTile && kQ4GemvRows == kQ4RowTile);

// The repacked order's tiles: rows [0, rows) (rows <= 16) x C activation rows. Rows past `rows`
// repeat the last one and are not stored.
struct Q4Repacked : x86::TileShape<kQ4RowTile, kQ4ColTile, kQ4GemvRows, kQk4_0> {
  template <int C>
  [[gnu::noinline]] static void run(int rows, const uint8_t* w, size_t w_stride, const uint8_t* x,
                                    size_t x_stride, int64_t nb, float* y, int64_t ldy);
};

template <int C>
void Q4Repacked::run(int rows, const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride,
                     int64_t nb, float* y, int64_t ldy) {
  const Lanes lanes(rows, w, w_stride, kWQs);
  const __m512i scale_index = _mm512_loadu_si512(lanes.row_offset);
  const __m512i to_rows = _mm512_loadu_si512(lanes.lane);
  const __m512i nibble = _mm512_set1_epi8(0x0f);
  const __m512i eight = _mm512_set1_epi8(8);
  __m512 facc[C];
#pragma GCC unroll 16
  for (int c = 0; c < C; ++c) facc[c] = _mm512_setzero_ps();

  const x86::WeightPrefetch<Lanes::kRows, kWBlock> prefetch(w, w_stride);
  for (int64_t b = 0; b < nb; ++b) {
    prefetch.at(b);
    const size_t off = static_cast<size_t>(b) * kWBlock;
    // The rows' scales in lane order (4 bytes from each scale's address; the low 2 are it).
    const __m512 wd =
        _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_i32gather_epi32(scale_index, w + off, 1)));
    // Codes of rows 4j..4j+3, unpacked once for all the activation rows.
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
      const uint8_t* xb = x + static_cast<size_t>(c) * x_stride + static_cast<size_t>(b) * kXBlock;
      const __m512i alo =
          _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(xb + kXQs)));
      const __m512i ahi =
          _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(xb + kXQs + 16)));
      // Lane i of every row: -8 * (a[4i..4i+3] + a[16+4i..16+4i+3]).
      const __m512i start = _mm512_sub_epi32(
          _mm512_setzero_si512(),
          _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), eight, alo), eight, ahi));
      __m512i v[4];
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) {
        v[j] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(start, lo[j], alo), hi[j], ahi);
      }
      const __m512i t01 =
          _mm512_add_epi32(_mm512_unpacklo_epi32(v[0], v[1]), _mm512_unpackhi_epi32(v[0], v[1]));
      const __m512i t23 =
          _mm512_add_epi32(_mm512_unpacklo_epi32(v[2], v[3]), _mm512_unpackhi_epi32(v[2], v[3]));
      const __m512i sums =
          _mm512_add_epi32(_mm512_unpacklo_epi64(t01, t23), _mm512_unpackhi_epi64(t01, t23));
      // d = d_w * d_a rounded once, as the reference; then one fused multiply-add per output.
      facc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums),
                                _mm512_mul_ps(wd, _mm512_set1_ps(x86::fp16_at(xb))), facc[c]);
    }
  }
  const auto mask = static_cast<__mmask16>((1u << rows) - 1);
#pragma GCC unroll 16
  for (int c = 0; c < C; ++c) {
    _mm512_mask_storeu_ps(y + static_cast<int64_t>(c) * ldy, mask,
                          _mm512_permutexvar_ps(to_rows, facc[c]));
  }
}

}  // namespace

void matmul_q4_0_q8_0(const TypeTraits& /*w_type*/, const std::byte* w, size_t w_stride,
                      int64_t n_rows, const std::byte* x, size_t x_stride, int64_t n_x, int64_t k,
                      float* y, int64_t ldy, int64_t r0, int64_t r1) {
  x86::matmul_q4_0<Q4Repacked, Q4Lanes>(w, w_stride, n_rows, x, x_stride, n_x, k, y, ldy, r0, r1);
}

}  // namespace tern::kernels::avx512

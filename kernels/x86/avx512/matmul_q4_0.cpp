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
//    to one zmm whose lane 4k + j holds row 4j + k's block sum; the rows' scales are stored in
//    the same lane order by the load-time interleave (x86::Q4Groups, groups of 16 rows), and the
//    lanes are put back in row order when the tile is stored. The 8-lane order reads the file's
//    rows as they are.
#include <cstddef>
#include <cstdint>

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

// The repacked order on rows interleaved at load in groups of 16 (x86::Q4Groups): 4 rows per zmm,
// so a block is the 16 scales (one 256-bit load) and four 512-bit loads of codes.
struct Q4Group : Regs {
  static constexpr int kPerReg = 4;
  static constexpr int kColTile = kQ4ColTile;

  // Codes unpacked once for all the activation rows, then two vpdpbusd per register and
  // activation row from the start value -8 * (the activations each lane meets).
  template <int C, class Add>
  [[gnu::always_inline]] static void sums(const uint8_t* scales, const uint8_t* codes,
                                          const uint8_t* const (&xb)[C], Add add) {
    const __m512i nibble = _mm512_set1_epi8(0x0f);
    const __m512i eight = _mm512_set1_epi8(8);
    const F wd = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(scales)));
    __m512i lo[4], hi[4];
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      const __m512i q = _mm512_loadu_si512(codes + 64 * j);
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
      add(c, x86::block_sums<Regs>(v), wd);
    }
  }

  static void store(float* y, F acc, int lo, int hi) {
    const auto rows = static_cast<__mmask16>(((1u << hi) - 1u) & ~((1u << lo) - 1u));
    const __m512i to_rows = _mm512_loadu_si512(x86::RepackedLanes<kPerReg>::kToRows.lane);
    _mm512_mask_storeu_ps(y, rows, _mm512_permutexvar_ps(to_rows, acc));
  }
};
using Groups = x86::Q4Groups<Q4Group>;
static_assert(Groups::kRows == kQ4InterleaveRows && kQ4RowTile == Groups::kRows &&
              kQ4GemvRows == Groups::kRows);

}  // namespace

void interleave_q4_0_rows16(const std::byte* rows, size_t stride, std::byte* dst, int64_t n) {
  Groups::interleave(rows, stride, dst, n);
}

void matmul_q4_0_q8_0(const TypeTraits& /*w_type*/, const std::byte* w, size_t w_stride,
                      int64_t n_rows, const std::byte* x, size_t x_stride, int64_t n_x, int64_t k,
                      float* y, int64_t ldy, int64_t r0, int64_t r1) {
  x86::matmul_q4_0<kQ4InterleaveRowMultiple, Groups, Q4Lanes>(w, w_stride, n_rows, x, x_stride, n_x,
                                                              k, y, ldy, r0, r1);
}

}  // namespace tern::kernels::avx512

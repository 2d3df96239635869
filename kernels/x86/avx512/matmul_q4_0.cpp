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

// The repacked order on rows interleaved at load in groups of 16 (interleave_q4_0_rows16). Group
// g holds rows 16g..16g+15 in 16 * w_stride bytes, block after block, 288 bytes a block: the 16
// rows' fp16 scales in accumulator lane order (lane 4k + j: row 4j + k, where block_sums leaves
// its sum), then register j = 0..3 (64 bytes): rows 4j..4j+3's 16 code bytes, a row per 128-bit
// lane. A block is then one 256-bit and four 512-bit loads, where the file's rows took sixteen
// 128-bit loads, their inserts and a gather of the scales (which bound the decode kernel).
constexpr int kGroupRows = kQ4InterleaveRows;
constexpr size_t kGroupBlock = kGroupRows * kWBlock;
constexpr size_t kCodesAt = kGroupRows * sizeof(uint16_t);
using GroupLanes = x86::RepackedLanes<4>;
static_assert(GroupLanes::kRows == kGroupRows && kQ4RowTile == kGroupRows &&
              kQ4GemvRows == kGroupRows);

// Output row r sits in accumulator lane lane_of_row(r).
struct ToRows {
  int32_t lane[kGroupRows];
  constexpr ToRows() : lane{} {
    for (int r = 0; r < kGroupRows; ++r) lane[r] = GroupLanes::lane_of_row(r);
  }
};
constexpr ToRows kToRows{};

// Rows 16g.. of the group at g x C activation rows over nb blocks; y is row 16g's output, and
// only the rows in `store` are written.
template <int C>
[[gnu::noinline]] void group_tile(const uint8_t* g, const uint8_t* x, size_t x_stride, int64_t nb,
                                  float* y, int64_t ldy, __mmask16 store) {
  const __m512i nibble = _mm512_set1_epi8(0x0f);
  const __m512i eight = _mm512_set1_epi8(8);
  __m512 facc[C];
#pragma GCC unroll 16
  for (auto& f : facc) f = _mm512_setzero_ps();
  const x86::StreamPrefetch<kGroupBlock> prefetch(g);
  for (int64_t b = 0; b < nb; ++b) {
    prefetch.at(b);
    const uint8_t* blk = g + static_cast<size_t>(b) * kGroupBlock;
    const __m512 wd = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk)));
    __m512i lo[4], hi[4];
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      const __m512i q = _mm512_loadu_si512(blk + kCodesAt + 64 * j);
      lo[j] = _mm512_and_si512(q, nibble);
      hi[j] = _mm512_and_si512(_mm512_srli_epi16(q, 4), nibble);
    }
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) {
      const uint8_t* xb =
          x + static_cast<size_t>(c) * x_stride + static_cast<size_t>(b) * sizeof(BlockQ8_0);
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
      // d = d_w * d_a rounded once, as the reference; then one fused multiply-add per output.
      const __m512i sums = x86::block_sums<Regs>(v);
      facc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums),
                                _mm512_mul_ps(wd, _mm512_set1_ps(x86::fp16_at(xb))), facc[c]);
    }
  }
  const __m512i to_rows = _mm512_loadu_si512(kToRows.lane);
#pragma GCC unroll 16
  for (int c = 0; c < C; ++c) {
    _mm512_mask_storeu_ps(y + static_cast<int64_t>(c) * ldy, store,
                          _mm512_permutexvar_ps(to_rows, facc[c]));
  }
}

using GroupTileFn = void (*)(const uint8_t*, const uint8_t*, size_t, int64_t, float*, int64_t,
                             __mmask16);
// group_tile<C> for C in 1..kQ4ColTile, indexed [C - 1].
struct GroupTiles {
  GroupTileFn fn[kQ4ColTile];
  constexpr GroupTiles() : fn{} { fill<1>(); }
  template <int C>
  constexpr void fill() {
    fn[C - 1] = &group_tile<C>;
    if constexpr (C < kQ4ColTile) fill<C + 1>();
  }
};
constexpr GroupTiles kGroupTiles{};

// The repacked order over rows [r0, r1): whole groups, the edge groups stored in part.
void interleaved_matmul(const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride,
                        int64_t n_x, int64_t nb, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  for (int64_t g = r0 / kGroupRows; g * kGroupRows < r1; ++g) {
    const int64_t first = g * kGroupRows;
    const int64_t lo = r0 > first ? r0 - first : 0;
    const int64_t hi = r1 - first < kGroupRows ? r1 - first : kGroupRows;
    const auto store = static_cast<__mmask16>(((1u << hi) - 1u) & ~((1u << lo) - 1u));
    for (int64_t m = 0; m < n_x; m += kQ4ColTile) {
      const int64_t nc = n_x - m < kQ4ColTile ? n_x - m : kQ4ColTile;
      kGroupTiles.fn[nc - 1](w + static_cast<size_t>(first) * w_stride,
                             x + static_cast<size_t>(m) * x_stride, x_stride, nb,
                             y + m * ldy + first, ldy, store);
    }
  }
}

}  // namespace

void interleave_q4_0_rows16(const std::byte* rows, size_t stride, std::byte* dst, int64_t n) {
  const int64_t nb = n / kQk4_0;
  for (int64_t b = 0; b < nb; ++b) {
    std::byte* out = dst + static_cast<size_t>(b) * kGroupBlock;
    const auto block = [&](int r) { return rows + static_cast<size_t>(r) * stride + b * kWBlock; };
    for (int l = 0; l < kGroupRows; ++l) {
      std::memcpy(out + 2 * l, block(GroupLanes::row_of_lane(l)), sizeof(uint16_t));
    }
    for (int r = 0; r < kGroupRows; ++r) std::memcpy(out + kCodesAt + 16 * r, block(r) + kWQs, 16);
  }
}

void matmul_q4_0_q8_0(const TypeTraits& /*w_type*/, const std::byte* w, size_t w_stride,
                      int64_t n_rows, const std::byte* x, size_t x_stride, int64_t n_x, int64_t k,
                      float* y, int64_t ldy, int64_t r0, int64_t r1) {
  // quant::select_matmul_dot: llama.cpp repacks Q4_0 matrices of a multiple of 8 rows and always
  // multiplies them in its interleaved order; the others take the 8-lane vec_dot order.
  if (n_rows % kQ4InterleaveRowMultiple == 0) {
    interleaved_matmul(reinterpret_cast<const uint8_t*>(w), w_stride,
                       reinterpret_cast<const uint8_t*>(x), x_stride, n_x, k / kQk4_0, y, ldy, r0,
                       r1);
  } else {
    x86::TileDriver<x86::BlockLanes<Q4Lanes>>::run(w, w_stride, x, x_stride, n_x, k, y, ldy, r0,
                                                   r1);
  }
}

}  // namespace tern::kernels::avx512

// The Q5_0, Q5_1 and MXFP4 matrix products, written once over an ISA's byte-dot policy, as
// formats for kernels/x86/block_lanes.h (llama.cpp's 8-lane vec_dot order). Included only by
// per-ISA kernel files, with policies from their anonymous namespace (see tile_driver.h).
//
// Theory of operation. Every block is one ymm of 32 bytes in element order, and lane l of the
// policy's integer dots sums elements 4l..4l+3 exactly:
//  - Q5_0: the 4-bit nibbles unpacked as in Q4_0 ([low | high] = elements 0..31) with bit e of qh
//    ORed in as 16 (codes 0..31); lanes of (code - 16) * a.
//  - Q5_1: the same codes, lanes of code * a; the minimum's term is LaneHooks' kMinOffset.
//  - MXFP4: the codes looked up (vpshufb) in the E2M1 table plus 12 (0..24, all unsigned); lanes
//    of (value + 12 - 12) * a. Its E8M0 scale and paired accumulators are LaneHooks' members.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/kernels.h"
#include "kernels/x86/block_lanes.h"
#include "kernels/x86/intrinsics.h"
#include "kernels/x86/tile_driver.h"
#include "quant/blocks.h"
#include "quant/kquants.h"
#include "quant/q5.h"

namespace tern::kernels::x86 {
namespace {

// D, the ISA's byte dots on 32 bytes, 8 int32 lanes of 4 bytes each:
//   bias(a, k): derived once per activation block for unsigned_lanes with codes offset by k;
//   unsigned_lanes(u, a, bias(a, k)): lanes of (u - k) * a, u unsigned with u <= 31;
//   high_bits(qh): byte e = 16 where bit e of qh is set, else 0;
// and the tiles kRowTile, kColTile, kGemvRows (Tiles).

// Elements 0..31 of a block of 16 nibble pairs (qs[j] = element j | element j + 16 << 4).
inline __m256i nibbles(const uint8_t* qs) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  return _mm256_and_si256(
      _mm256_inserti128_si256(_mm256_castsi128_si256(q), _mm_srli_epi16(q, 4), 1),
      _mm256_set1_epi8(0x0f));
}

// The 32 five-bit codes of a Q5_0 or Q5_1 block.
template <class D, class B>
__m256i q5_codes(const uint8_t* block) {
  uint32_t qh;
  std::memcpy(&qh, block + offsetof(B, qh), sizeof qh);
  return _mm256_or_si256(nibbles(block + offsetof(B, qs)), D::high_bits(qh));
}

// The tiles of a policy D (a base for it).
template <int kRows, int kCols, int kGemv>
struct Tiles {
  static constexpr int kRowTile = kRows;
  static constexpr int kColTile = kCols;
  static constexpr int kGemvRows = kGemv;
};

template <class D>
struct Q5_0Lanes : Tiles<D::kRowTile, D::kColTile, D::kGemvRows> {
  static constexpr size_t kBlock = sizeof(BlockQ5_0);
  static __m256i prepare(__m256i a) { return D::bias(a, 16); }
  static __m256i lanes(const uint8_t* block, __m256i a, __m256i bias) {
    return D::unsigned_lanes(q5_codes<D, BlockQ5_0>(block), a, bias);
  }
};

template <class D>
struct Q5_1Lanes : Tiles<D::kRowTile, D::kColTile, D::kGemvRows> {
  static constexpr size_t kBlock = sizeof(BlockQ5_1);
  static constexpr size_t kMinOffset = offsetof(BlockQ5_1, m);
  using Activation = BlockQ8_1;
  static __m256i prepare(__m256i /*a*/) { return _mm256_setzero_si256(); }
  static __m256i lanes(const uint8_t* block, __m256i a, __m256i zero) {
    return D::unsigned_lanes(q5_codes<D, BlockQ5_1>(block), a, zero);
  }
};

template <class D>
struct Mxfp4Lanes : Tiles<D::kRowTile, D::kColTile, D::kGemvRows> {
  static constexpr size_t kBlock = sizeof(BlockMxfp4);
  static constexpr int kAccumulators = 2;
  // 2^(e - 128) (E8M0 halved; e = 0 and 1 are subnormal).
  static float scale(const uint8_t* block) {
    const uint32_t e = block[offsetof(BlockMxfp4, e)];
    const uint32_t bits = e < 2 ? 0x00200000u << e : (e - 1) << 23;
    return _mm_cvtss_f32(_mm_castsi128_ps(_mm_cvtsi32_si128(static_cast<int>(bits))));
  }
  static __m256i prepare(__m256i a) { return D::bias(a, 12); }
  static __m256i lanes(const uint8_t* block, __m256i a, __m256i bias) {
    // The doubled E2M1 values plus 12, by code (8 is -0).
    const __m256i values =
        _mm256_setr_epi8(12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0, 12, 13, 14, 15,
                         16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0);
    const __m256i u = _mm256_shuffle_epi8(values, nibbles(block + offsetof(BlockMxfp4, qs)));
    return D::unsigned_lanes(u, a, bias);
  }
};

// A MatmulFn over one tile provider.
template <class P>
void tiles_matmul(const TypeTraits& /*w_type*/, const std::byte* w, size_t w_stride,
                  int64_t /*n_rows*/, const std::byte* x, size_t x_stride, int64_t n_x, int64_t k,
                  float* y, int64_t ldy, int64_t r0, int64_t r1) {
  TileDriver<P>::run(w, w_stride, x, x_stride, n_x, k, y, ldy, r0, r1);
}

// The kernel for weights of `type` with policy D, nullptr for types this header does not cover.
template <class D>
MatmulFn block32_matmul(TensorType type) {
  switch (type) {
    case TensorType::Q5_0:
      return tiles_matmul<BlockLanes<Q5_0Lanes<D>>>;
    case TensorType::Q5_1:
      return tiles_matmul<BlockLanes<Q5_1Lanes<D>>>;
    case TensorType::MXFP4:
      return tiles_matmul<BlockLanes<Mxfp4Lanes<D>>>;
    default:
      return nullptr;
  }
}

}  // namespace
}  // namespace tern::kernels::x86

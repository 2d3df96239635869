// The Q5_0, Q5_1, MXFP4 and BFP8 matrix products, written once over an ISA's byte-dot policy:
// the first three as formats for kernels/x86/block_lanes.h (llama.cpp's 8-lane vec_dot order),
// BFP8 as a tile provider of its own. Included only by per-ISA kernel files, with policies from
// their anonymous namespace (see tile_driver.h).
//
// Theory of operation. Every block is one ymm of 32 bytes in element order, and lane l of the
// policy's integer dots sums elements 4l..4l+3 exactly:
//  - Q5_0: the 4-bit nibbles unpacked as in Q4_0 ([low | high] = elements 0..31) with bit e of qh
//    ORed in as 16 (codes 0..31); lanes of (code - 16) * a.
//  - Q5_1: the same codes, lanes of code * a; the minimum's term is LaneHooks' kMinOffset.
//  - MXFP4: the codes looked up (vpshufb) in the E2M1 table plus 12 (0..24, all unsigned); lanes
//    of (value + 12 - 12) * a. Its E8M0 scale and paired accumulators are LaneHooks' members.
//  - BFP8: int8 mantissas times int8 mantissas, the 8 lanes of a block added to its whole sum
//    (exact). Eight blocks fill the 8 lanes of one vector, block b in lane b % 8 as the reference;
//    each term is ldexp(sum, e_w + e_a), computed as sum * 2^e in double (both exact: |sum| <
//    2^19, e in [-256, 254]) and rounded once to f32, which is ldexp's rounding (overflow to
//    infinity and subnormal results included). A last partial group adds +0 in its unused lanes,
//    which leaves an accumulator unchanged (it starts at +0, so it is never -0).
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
//   signed_prepare(a), signed_lanes(w, a, signed_prepare(a)): lanes of w * a, both int8 (a never
//     -128, as the Q8_0 kernels);
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

// BFP8 x BFP8: 8 blocks per step, one per f32 lane (see the theory of operation).
template <class D>
struct Bfp8Tiles : TileShape<D::kRowTile, D::kColTile, D::kGemvRows, kQkBfp8> {
  static constexpr size_t kBlock = sizeof(BlockBfp8);
  static constexpr int kGroup = 8;

  template <int R, int C>
  static void tile(const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, int64_t nb,
                   float* y, int64_t ldy, const NoContext& /*ctx*/) {
    __m256 acc[R][C];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
    }
    const WeightPrefetch<R, kGroup * kBlock> prefetch(w, w_stride);
    int64_t b = 0;
    for (; b + kGroup <= nb; b += kGroup) {
      prefetch.at(b / kGroup);
      group<R, C>(w, w_stride, x, x_stride, b, kGroup, acc);
    }
    if (b < nb) group<R, C>(w, w_stride, x, x_stride, b, static_cast<int>(nb - b), acc);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) y[static_cast<int64_t>(c) * ldy + r] = hsum8(acc[r][c]);
    }
  }

 private:
  // Blocks b..b + n - 1 (n <= 8) of the tile, block b + j into lane j.
  template <int R, int C>
  [[gnu::always_inline]] static void group(const uint8_t* w, size_t w_stride, const uint8_t* x,
                                           size_t x_stride, int64_t b, int n, __m256 (&acc)[R][C]) {
    __m256i ew[R];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) ew[r] = exponents(w + static_cast<size_t>(r) * w_stride, b, n);
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) {
      const uint8_t* xr = x + static_cast<size_t>(c) * x_stride;
      const __m256i ea = exponents(xr, b, n);
      __m256i a[kGroup], prep[kGroup];
#pragma GCC unroll 8
      for (int j = 0; j < kGroup; ++j) {
        a[j] = j < n ? mantissas(xr, b + j) : _mm256_setzero_si256();
        prep[j] = D::signed_prepare(a[j]);
      }
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        const uint8_t* wr = w + static_cast<size_t>(r) * w_stride;
        __m256i s[kGroup];
#pragma GCC unroll 8
        for (int j = 0; j < kGroup; ++j) {
          s[j] =
              j < n ? D::signed_lanes(mantissas(wr, b + j), a[j], prep[j]) : _mm256_setzero_si256();
        }
        acc[r][c] = _mm256_add_ps(acc[r][c], scaled(block_sums(s), _mm256_add_epi32(ew[r], ea)));
      }
    }
  }

  static __m256i mantissas(const uint8_t* row, int64_t b) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(
        row + static_cast<size_t>(b) * kBlock + offsetof(BlockBfp8, m)));
  }

  // The exponents of blocks b..b + n - 1 in lanes 0..n - 1 (0 in the others): each lane gathers
  // its block's first 4 bytes (exponent, then mantissas) and keeps the sign-extended first.
  static __m256i exponents(const uint8_t* row, int64_t b, int n) {
    const __m256i offsets = _mm256_setr_epi32(0, 33, 66, 99, 132, 165, 198, 231);
    static_assert(kBlock == 33);
    const int* base = reinterpret_cast<const int*>(row + static_cast<size_t>(b) * kBlock);
    const __m256i first4 = n == kGroup
                               ? _mm256_i32gather_epi32(base, offsets, 1)
                               : _mm256_mask_i32gather_epi32(
                                     _mm256_setzero_si256(), base, offsets,
                                     _mm256_cmpgt_epi32(_mm256_set1_epi32(n),
                                                        _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)),
                                     1);
    return _mm256_srai_epi32(_mm256_slli_epi32(first4, 24), 24);
  }

  // Lane j: the sum of s[j]'s 8 lanes (exact integers, any order).
  static __m256i block_sums(const __m256i (&s)[kGroup]) {
    const __m256i q0 =
        _mm256_hadd_epi32(_mm256_hadd_epi32(s[0], s[1]), _mm256_hadd_epi32(s[2], s[3]));
    const __m256i q1 =
        _mm256_hadd_epi32(_mm256_hadd_epi32(s[4], s[5]), _mm256_hadd_epi32(s[6], s[7]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(q0, q1, 0x20),
                            _mm256_permute2x128_si256(q0, q1, 0x31));
  }

  // ldexp(sum, e) lane by lane.
  static __m256 scaled(__m256i sums, __m256i e) {
    const auto half = [](__m128i s, __m128i ee) {
      const __m256i bits = _mm256_slli_epi64(
          _mm256_add_epi64(_mm256_cvtepi32_epi64(ee), _mm256_set1_epi64x(1023)), 52);
      return _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_cvtepi32_pd(s), _mm256_castsi256_pd(bits)));
    };
    return _mm256_set_m128(half(_mm256_extracti128_si256(sums, 1), _mm256_extracti128_si256(e, 1)),
                           half(_mm256_castsi256_si128(sums), _mm256_castsi256_si128(e)));
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
    case TensorType::BFP8:
      return tiles_matmul<Bfp8Tiles<D>>;
    default:
      return nullptr;
  }
}

}  // namespace
}  // namespace tern::kernels::x86

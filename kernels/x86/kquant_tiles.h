// The Q4_K, Q5_K and Q6_K x Q8_K matrix products as tile providers for TileDriver, written once
// over a vector type each ISA supplies (32 bytes for AVX2, 64 for AVX-512). Included only by
// per-ISA kernel files, with lane types from their anonymous namespace (see tile_driver.h).
//
// Theory of operation. The reference (quant/q4_k.cpp, q5_k.cpp, q6_k.cpp: llama.cpp's AVX2
// kernels) keeps, per super-block and output, eight int32 lanes: lane l sums over the eight
// 32-element groups g the group's scale times the four products at 32 g + 4 l .. 4 l + 3 (Q6_K: the
// scale of the 16-element half that holds them, and q - 32 for q). Then acc[l] = fma(d_a * d_w,
// float(lane l), acc[l]) across super-blocks, and hsum_float_8 of acc at the end. Q4_K and Q5_K
// add a term for their mins, from the activation sums bsums, in float accumulators of their own:
// Q4_K four lanes (p sums sub-blocks 2p and 2p + 1), Q5_K one; each fma(-d_a * d_min, float(int
// sum), acc), added after the lane sum.
//
// Here a step covers kGroups = bytes / 32 groups: the weights' codes (u8, at most 63) are built in
// element order, vpmaddubsw multiplies them by the activations into int16 pairs (at most 2 x 63 x
// 128; Q6_K subtracts 32 x a, computed once per activation step), and a multiply-add by the pair's
// scale (int16) adds scale x part to int32 lane 8 j + l of the step's group j. At the end of a
// super-block the groups' lanes are added into the reference's eight (exact: integers), and only
// then come the reference's float steps, in its order. The mins' integer sums are taken from
// bsums in int32 (m[2p] (b[4p] + b[4p+1]) + m[2p+1] (b[4p+2] + b[4p+3]) as two multiply-adds of
// the even and the odd bsums), so that bsums near the int16 limits stay exact as in the reference.
// Each output's integers and float chain are the reference's, so R x C outputs share the loads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/kquant_scales.h"
#include "kernels/x86/intrinsics.h"
#include "kernels/x86/tile_driver.h"
#include "quant/blocks.h"
#include "quant/kquants.h"

namespace tern::kernels::x86 {
namespace {

// V, the ISA's vector of kGroups x 32 bytes (piece j = group g0 + j of a step):
//   using I; kGroups; zero(); load(p) (kGroups x 32 bytes); set1_8(v); and_, or_, slli16(v, n);
//   pieces(base, off0, sh0, off1, sh1): piece j is the 32 bytes at base + off_j shifted right
//     by sh_j bits in 16-bit lanes (pieces past kGroups ignored);
//   maddubs(u8, s8); sub16; dot_add(acc, int16 pairs, int16 scales) (acc + vpmaddwd);
//   fold(v): the pieces' int32 lanes added into eight;
//   using S; k4_scales(__m128i eight int16) and q6_scales(__m256i sixteen int16) (a row's scales,
//     once per block); k4_scale(S, g0) (piece j's 16-bit lanes = scale g0 + j) and
//     q6_scale(S, g0) (piece j's pair i = scale 2 (g0 + j) + i / 8);
//   the mins' vectors of kMinCols 128-bit parts (one per activation row), MI (int) and MF (f32):
//     zero_m(); min_row(m) (m in every part); join_m(parts) (of __m128i or of floats, each
//     broadcast to its part); part_m(v, q); madd_m, dot_add_m (acc + vpmaddwd), add_m,
//     shuffle_m<imm> (vpshufd in every part), cvt_m, mul_m, set1_m, fma_m.

// The 8 six-bit scales and 8 six-bit mins of a Q4_K / Q5_K block as int16: scales in the low
// 128 bits, mins in the high 128 bits (layout in quant/kquants.h, above kKScaleBytes).
inline __m256i k4_scales_mins(const uint8_t* packed) {
  const K4ScaleWords w = k4_scale_words(packed);
  return _mm256_cvtepu8_epi16(_mm_setr_epi32(static_cast<int>(w.sc_lo), static_cast<int>(w.sc_hi),
                                             static_cast<int>(w.m_lo), static_cast<int>(w.m_hi)));
}

// bsums of a Q8_K block as the two operands of the mins' multiply-adds: int32 lane p of `even`
// holds (b[4p], b[4p+2]), of `odd` (b[4p+1], b[4p+3]), to meet the mins' pairs (m[2p], m[2p+1]).
struct BsumPairs {
  __m128i even, odd;
  explicit BsumPairs(const uint8_t* bsums) {
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bsums));
    const __m256i split = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15, 0,
                                           1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15);
    const __m256i s = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(b, split), 0xd8);
    even = _mm256_castsi256_si128(s);
    odd = _mm256_extracti128_si256(s, 1);
  }
};

// Q4_K and Q5_K (kHighBit): codes from nibbles (and qh), scale per 32-element group, mins.
template <class Block, bool kHighBit>
struct K4Format {
  static constexpr bool kBias = false;
  static constexpr bool kMins = true;
  static constexpr size_t kBlockBytes = sizeof(Block);

  template <class V>
  struct Row {
    typename V::S scales;
    typename V::MI mins;  // the eight mins as int16, in every 128-bit part
    float d, dmin;
    const uint8_t* qs = nullptr;
    const uint8_t* qh = nullptr;
    void load(const uint8_t* blk) {
      const __m256i sm = k4_scales_mins(blk + offsetof(Block, scales));
      scales = V::k4_scales(_mm256_castsi256_si128(sm));
      mins = V::min_row(_mm256_extracti128_si256(sm, 1));
      d = fp16_at(blk + offsetof(Block, d));
      dmin = fp16_at(blk + offsetof(Block, dmin));
      qs = blk + offsetof(Block, qs);
      if constexpr (kHighBit) qh = blk + offsetof(BlockQ5_K, qh);
    }
    // Group g's low four bits: qs[32 (g / 2) + l] at bit 4 (g % 2); Q5_K's fifth: qh[l] bit g.
    typename V::I codes(int g0) const {
      const int g1 = g0 + 1;
      typename V::I q = V::and_(
          V::pieces(qs, 32 * (g0 / 2), 4 * (g0 % 2), 32 * (g1 / 2), 4 * (g1 % 2)), V::set1_8(0x0f));
      if constexpr (kHighBit) {
        const typename V::I h = V::and_(V::pieces(qh, 0, g0, 0, g1), V::set1_8(1));
        q = V::or_(q, V::slli16(h, 4));
      }
      return q;
    }
    typename V::I scale(int g0) const { return V::k4_scale(scales, g0); }
  };

  // The mins' term of one block for kMinCols outputs (a 128-bit part each): the int32 sums over
  // sub-block pairs p (lane p), then Q4_K's four fused multiply-adds, or Q5_K's one of their
  // (exact) total, broadcast to the part's lanes. neg_xd: -d_a of each part's activation row.
  template <class V>
  static typename V::MF add_mins(typename V::MF acc, const Row<V>& row, typename V::MI even,
                                 typename V::MI odd, typename V::MF neg_xd) {
    typename V::MI prod = V::dot_add_m(V::madd_m(even, row.mins), odd, row.mins);
    if constexpr (kHighBit) {
      prod = V::add_m(prod, V::template shuffle_m<0x4e>(prod));
      prod = V::add_m(prod, V::template shuffle_m<0xb1>(prod));
    }
    // -d_a * d_min rounded once, as the reference.
    const typename V::MF dmin = V::mul_m(neg_xd, V::set1_m(row.dmin));
    return V::fma_m(dmin, V::cvt_m(prod), acc);
  }
  // Q4_K: (acc_m[0] + acc_m[2]) + (acc_m[1] + acc_m[3]); Q5_K: its one sum.
  static float mins_total(__m128 m) {
    if constexpr (kHighBit) {
      return _mm_cvtss_f32(m);
    } else {
      m = _mm_add_ps(m, _mm_movehl_ps(m, m));
      return _mm_cvtss_f32(_mm_add_ss(m, _mm_movehdup_ps(m)));
    }
  }
};

// Q6_K: 6-bit codes from ql and qh, a signed scale per 16 elements, codes biased by 32.
struct Q6Format {
  static constexpr bool kBias = true;
  static constexpr bool kMins = false;
  static constexpr size_t kBlockBytes = sizeof(BlockQ6_K);

  template <class V>
  struct Row {
    typename V::S scales;
    float d;
    const uint8_t* ql;
    const uint8_t* qh;
    void load(const uint8_t* blk) {
      scales = V::q6_scales(_mm256_cvtepi8_epi16(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + offsetof(BlockQ6_K, scales)))));
      d = fp16_at(blk + offsetof(BlockQ6_K, d));
      ql = blk + offsetof(BlockQ6_K, ql);
      qh = blk + offsetof(BlockQ6_K, qh);
    }
    // Group g = 4 h + quarter: low 4 bits in ql[64 h + 32 (quarter % 2) + l] at bit
    // 4 (quarter / 2), high 2 bits in qh[32 h + l] at bit 2 quarter (kquants.h).
    static int ql_off(int g) { return 64 * (g / 4) + 32 * (g % 4 % 2); }
    typename V::I codes(int g0) const {
      const int g1 = g0 + 1;
      const typename V::I lo =
          V::and_(V::pieces(ql, ql_off(g0), 4 * (g0 % 4 / 2), ql_off(g1), 4 * (g1 % 4 / 2)),
                  V::set1_8(0x0f));
      const typename V::I hi = V::and_(
          V::pieces(qh, 32 * (g0 / 4), 2 * (g0 % 4), 32 * (g1 / 4), 2 * (g1 % 4)), V::set1_8(3));
      return V::or_(lo, V::slli16(hi, 4));
    }
    typename V::I scale(int g0) const { return V::q6_scale(scales, g0); }
  };
};

// The tile provider: V the ISA's vector, F the weight format.
template <class V, class F, int kRows, int kCols, int kGemv>
struct KQuantTiles : TileShape<kRows, kCols, kGemv, kQkK> {
  using I = typename V::I;
  using Row = typename F::template Row<V>;

  template <int R, int C>
  static void tile(const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, int64_t nb,
                   float* y, int64_t ldy, const NoContext& /*ctx*/) {
    constexpr size_t kXBlock = sizeof(BlockQ8_K);
    // The mins' accumulators: activation rows in kMinCols-wide groups (the last group repeats
    // its last row where C is not a multiple; those parts are not read).
    constexpr int kMinCols = V::kMinCols;
    constexpr int kMinGroups = (C + kMinCols - 1) / kMinCols;
    __m256 facc[R][C];
    [[maybe_unused]] typename V::MF macc[R][kMinGroups];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) facc[r][c] = _mm256_setzero_ps();
#pragma GCC unroll 16
      for (int j = 0; j < kMinGroups; ++j) {
        if constexpr (F::kMins) macc[r][j] = V::zero_m();
      }
    }
    const WeightPrefetch<R, F::kBlockBytes> prefetch(w, w_stride);
    for (int64_t b = 0; b < nb; ++b) {
      prefetch.at(b);
      const uint8_t* xb[C];
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) {
        xb[c] = x + static_cast<size_t>(c) * x_stride + static_cast<size_t>(b) * kXBlock;
      }
      Row rows[R];
      I sum[R][C];
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        rows[r].load(w + static_cast<size_t>(r) * w_stride +
                     static_cast<size_t>(b) * F::kBlockBytes);
#pragma GCC unroll 16
        for (int c = 0; c < C; ++c) sum[r][c] = V::zero();
      }
#pragma GCC unroll 8
      for (int g0 = 0; g0 < 8; g0 += V::kGroups) {
        I a[C];
        [[maybe_unused]] I bias[C];
#pragma GCC unroll 16
        for (int c = 0; c < C; ++c) {
          a[c] = V::load(xb[c] + offsetof(BlockQ8_K, qs) + 32 * g0);
          if constexpr (F::kBias) bias[c] = V::maddubs(V::set1_8(32), a[c]);
        }
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r) {
          const I code = rows[r].codes(g0);
          const I scale = rows[r].scale(g0);
#pragma GCC unroll 16
          for (int c = 0; c < C; ++c) {
            I pairs = V::maddubs(code, a[c]);
            if constexpr (F::kBias) pairs = V::sub16(pairs, bias[c]);
            sum[r][c] = V::dot_add(sum[r][c], pairs, scale);
          }
        }
      }
      float xd[C];
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c)
        std::memcpy(&xd[c], xb[c] + offsetof(BlockQ8_K, d), sizeof(float));
      if constexpr (F::kMins) {
#pragma GCC unroll 16
        for (int j = 0; j < kMinGroups; ++j) {
          __m128i even[kMinCols], odd[kMinCols];
          float neg_xd[kMinCols];
#pragma GCC unroll 16
          for (int q = 0; q < kMinCols; ++q) {
            const int c = j * kMinCols + q < C ? j * kMinCols + q : C - 1;
            const BsumPairs bs(xb[c] + offsetof(BlockQ8_K, bsums));
            even[q] = bs.even;
            odd[q] = bs.odd;
            neg_xd[q] = -xd[c];
          }
          const typename V::MI even_m = V::join_m(even), odd_m = V::join_m(odd);
          const typename V::MF neg_xd_m = V::join_m(neg_xd);
#pragma GCC unroll 16
          for (int r = 0; r < R; ++r) {
            macc[r][j] = F::template add_mins<V>(macc[r][j], rows[r], even_m, odd_m, neg_xd_m);
          }
        }
      }
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) {
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r) {
          // d = d_a * d_w rounded once, as the reference; then one fused multiply-add per lane.
          facc[r][c] = _mm256_fmadd_ps(_mm256_set1_ps(xd[c] * rows[r].d),
                                       _mm256_cvtepi32_ps(V::fold(sum[r][c])), facc[r][c]);
        }
      }
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) {
        float v = hsum8(facc[r][c]);
        if constexpr (F::kMins) {
          v += F::mins_total(V::part_m(macc[r][c / kMinCols], c % kMinCols));
        }
        y[static_cast<int64_t>(c) * ldy + r] = v;
      }
    }
  }
};

using Q4KFormat = K4Format<BlockQ4_K, false>;
using Q5KFormat = K4Format<BlockQ5_K, true>;

}  // namespace
}  // namespace tern::kernels::x86

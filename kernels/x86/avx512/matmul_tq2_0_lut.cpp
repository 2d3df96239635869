// TQ2_0 x Q8_K matrix product by table lookup with AVX-512BW: kernels/x86/tq2_0_lut.h (theory of
// operation there) over 64-byte lanes, so a tile transposes a whole block of its 16 rows at once
// (128-bit lane j holds h = j / 2, m = 16 (j % 2) + p, lane l = 4 (j % 2) + p / 4) and keeps row i
// in float lane i. An alternative to the multiply-add kernel (matmul_tq2_0.cpp); kernels/tables.cpp
// keeps whichever measured faster as the main entry.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/x86/avx512/avx512.h"
#include "kernels/x86/avx512/simd.h"
#include "kernels/x86/intrinsics.h"
#include "kernels/x86/tq2_0_lut.h"
#include "quant/blocks.h"

namespace tern::kernels::avx512 {
namespace {

namespace tq2_lut = x86::tq2_lut;

// The weight scale is read as the high half of the dword at this offset (a dword at the scale
// itself would run past the last block of a row).
constexpr size_t kWScaleDword = offsetof(BlockTQ2_0, d) - 2;

constexpr tq2_lut::Coefficients<64> kCoef = tq2_lut::make_coefficients<64>();
// The vpermt2w indices that give lane j word 16 j (plus p: the pair of h, m).
struct Pick {
  alignas(64) uint16_t pick[32];
};
constexpr Pick make_pick() {
  Pick k{};
  for (int i = 0; i < 32; ++i) k.pick[i] = static_cast<uint16_t>(16 * (i / 8));
  return k;
}
constexpr Pick kPick = make_pick();

struct LutLanes : Regs {
  using Rows = __mmask16;
  static constexpr int kBytes = 64;
  static constexpr int kFloatRegs = 1;
  using Tables = tq2_lut::BlockTables<kBytes>;

  static Rows rows(int n) { return static_cast<__mmask16>((1u << n) - 1); }
  static int count(Rows rows) { return __builtin_popcount(rows); }

  [[gnu::noinline]] static void build_tables(const uint8_t* xb, Tables& t) {
    const auto* q = reinterpret_cast<const int8_t*>(xb + x86::kQ8KQs);
    const __m512i coef_lo = _mm512_load_si512(kCoef.coef[0]);
    const __m512i coef_hi = _mm512_load_si512(kCoef.coef[1]);
    const __m512i pick0 = _mm512_load_si512(kPick.pick);
    const __m512i low_byte = _mm512_set1_epi16(0xff);
    for (int s = 0; s < 2; ++s) {
      // Word m of pairs[h]: q8[128h + 64s + m] in the low byte, q8[... + 32 + m] in the high byte:
      // maddubs's s8 pair.
      __m512i pairs[2];
      for (int h = 0; h < 2; ++h) {
        const int8_t* qa = q + 128 * h + 64 * s;
        pairs[h] = _mm512_or_si512(
            _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(qa))),
            _mm512_slli_epi16(
                _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(qa + 32))),
                8));
      }
      for (int p = 0; p < 16; ++p) {
        const __m512i b = _mm512_permutex2var_epi16(
            pairs[0], _mm512_add_epi16(pick0, _mm512_set1_epi16(static_cast<int16_t>(p))),
            pairs[1]);
        const __m512i v0 = _mm512_maddubs_epi16(coef_lo, b);  // entries 0..7 of each lane
        const __m512i v1 = _mm512_maddubs_epi16(coef_hi, b);  // entries 8..15
        _mm512_store_si512(t.lut[0][s][p][0], _mm512_packus_epi16(_mm512_and_si512(v0, low_byte),
                                                                  _mm512_and_si512(v1, low_byte)));
        _mm512_store_si512(t.lut[0][s][p][1],
                           _mm512_packs_epi16(_mm512_srai_epi16(v0, 8), _mm512_srai_epi16(v1, 8)));
      }
    }
    tq2_lut::finish_tables(xb, t);
  }

  // Lanes 0 + 2 of a (rows 0..7) and b (rows 8..15) as 16 int32 rows in `first`, lanes 1 + 3 in
  // `second`.
  static void fold_rows(__m512i a, __m512i b, __m512i& first, __m512i& second) {
    const __m512i even = _mm512_shuffle_i64x2(a, b, _MM_SHUFFLE(2, 0, 2, 0));  // a0 a2 b0 b2
    const __m512i odd = _mm512_shuffle_i64x2(a, b, _MM_SHUFFLE(3, 1, 3, 1));   // a1 a3 b1 b3
    const __m512i sum = _mm512_add_epi16(_mm512_shuffle_i64x2(even, odd, _MM_SHUFFLE(2, 0, 2, 0)),
                                         _mm512_shuffle_i64x2(even, odd, _MM_SHUFFLE(3, 1, 3, 1)));
    first = _mm512_cvtepi16_epi32(_mm512_castsi512_si256(sum));
    second = _mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64(sum, 1));
  }

  // The 16 rows' weight scales, by a gather of the tile's rows.
  static void scales(const uint8_t* const* /*row_ptr*/, const uint8_t* w, size_t w_stride,
                     size_t offset, Rows rows, F (&wd)[1]) {
    const __m512i row_offsets =
        _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                           _mm512_set1_epi32(static_cast<int>(w_stride)));
    const __m512i wd16 =
        _mm512_srli_epi32(_mm512_mask_i32gather_epi32(_mm512_setzero_si512(), rows, row_offsets,
                                                      w + offset + kWScaleDword, 1),
                          16);
    wd[0] = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(wd16));
  }

  // Lanes 0 + 2 of lo (rows 0..7) and hi (rows 8..15) give lane g, lanes 1 + 3 lane g + 4.
  static void finish(I lo, I hi, int g, const int32_t* bsum_pairs, const F (&d)[1],
                     F (&facc)[8][1]) {
    __m512i lane[2];
    fold_rows(lo, hi, lane[0], lane[1]);
#pragma GCC unroll 2
    for (int half = 0; half < 2; ++half) {
      const int l = g + 4 * half;
      const __m512i v = _mm512_sub_epi32(lane[half], _mm512_set1_epi32(bsum_pairs[l]));
      facc[l][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(v), d[0], facc[l][0]);
    }
  }

  static void store(float* y, const F (&sums)[1], Rows rows) {
    _mm512_mask_storeu_ps(y, rows, sums[0]);
  }
};

}  // namespace

void matmul_tq2_0_q8_K_lut(const TypeTraits& /*w_type*/, const std::byte* w, size_t w_stride,
                           int64_t /*n_rows*/, const std::byte* x, size_t x_stride, int64_t n_x,
                           int64_t k, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  tq2_lut::matmul<LutLanes>(reinterpret_cast<const uint8_t*>(w), w_stride,
                            reinterpret_cast<const uint8_t*>(x), x_stride, n_x, k, y, ldy, r0, r1);
}

}  // namespace tern::kernels::avx512

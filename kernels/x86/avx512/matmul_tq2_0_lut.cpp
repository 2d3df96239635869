// TQ2_0 x Q8_K matrix product by table lookup (T-MAC / bitnet.cpp TL style) with AVX-512BW,
// bit-identical to quant::vec_dot_tq2_0_q8_K. An alternative to the multiply-add kernel
// (matmul_tq2_0.cpp); kernels/tables.cpp keeps whichever measured faster as the main entry.
//
// Theory of operation. The reference's int32 lane l of a block sums code * q8 over the 32
// elements at offsets 4l..4l+3 of its eight groups of 32, minus bsums[2l] + bsums[2l+1]; then
// acc[l] = fma(float(lane), d_x * d_w, acc[l]) across blocks and the eight accumulators are
// summed in hsum_float_8's tree. Weight byte qs[32h + m] holds the codes of groups 4h..4h+3 at
// offset m (blocks.h), all in lane m / 4: its low nibble pairs groups 4h and 4h+1, its high
// nibble groups 4h+2 and 4h+3.
//  - Tables, once per activation row and block: for each nibble position (h, m, s) the 16 sums
//    c0 * q8[128h + 64s + m] + c1 * q8[128h + 64s + 32 + m] over codes c0 + 4 c1 (c0, c1 in
//    0..3: code 3, which quantizers never write, is looked up like the reference multiplies it).
//    The sums (|v| <= 768) are int16, stored as a table of low bytes and one of high bytes so
//    that vpshufb can look them up; 4 KiB per activation block.
//  - Lookups: vpshufb uses one table per 128-bit lane, so a lane holds the same nibble position
//    of 16 weight rows. The tile loads its 16 rows' 64 code bytes and transposes them in four
//    unpack stages (bytes, words, dwords, qwords), within each 128-bit lane: vector p then holds
//    byte 16j + p of rows 0..15 in lane j, that is h = j / 2 and m = 16 (j % 2) + p, lane
//    l = 4 (j % 2) + p / 4. The tables are laid out the same way. Low and high table bytes
//    interleave back into int16 sums. (A dword gather per position instead of the transpose,
//    measured: half the speed.)
//  - Per row and int16 cell: 4 positions x 2 nibbles = 8 lookups of at most 768 in magnitude;
//    lanes 0 and 2 then give lane p / 4, lanes 1 and 3 lane 4 + p / 4: at most 16 x 768, exact in
//    int16. The lane sum becomes int32, the bsums are subtracted and the float steps are the
//    reference's, 16 rows side by side (row i in float lane i).
// Tables for every block of the tile's activation rows are built first, on the stack (a bounded
// budget; longer rows rebuild each block's table per row tile), then reused by all row tiles.
#include "kernels/x86/intrinsics.h"

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/x86/avx512/avx512.h"
#include "quant/blocks.h"

namespace tern::kernels::avx512 {
namespace {

constexpr size_t kWBlock = sizeof(BlockTQ2_0);
constexpr size_t kXBlock = sizeof(BlockQ8_K);
constexpr size_t kXQs = offsetof(BlockQ8_K, qs);
constexpr size_t kXBsums = offsetof(BlockQ8_K, bsums);
// The weight scale is read as the high half of the dword at this offset (a dword at the scale
// itself would run past the last block of a row).
constexpr size_t kWScaleDword = offsetof(BlockTQ2_0, d) - 2;
constexpr int kRows = 16;  // weight rows per tile: one per byte of a 128-bit lane
constexpr int64_t kMinPrefetchBytes = 4096;

// One activation block's tables: [s][p] x (64 low bytes, 64 high bytes), 128-bit lane j of each
// for h = j / 2, m = 16 (j % 2) + p; then the bsum corrections and the scale.
struct BlockTables {
  uint8_t lut[2][16][2][64];
  int32_t bsum_pairs[8];  // bsums[2l] + bsums[2l + 1]
  float d;
  uint8_t pad[28];
};
static_assert(sizeof(BlockTables) % 64 == 0);
// The stack budget for tables: 32 blocks (k = 8192) for one activation row, or 16 for two.
constexpr int64_t kBudgetBlocks = 32;
constexpr int kCols = 2;  // activation rows per tile when their tables fit

// vpmaddubsw coefficients (c0, c1) of entries e = c0 + 4 c1: entries 0..7, then 8..15, of each
// 128-bit lane; and the vpermt2w indices that give lane j word 16 j (plus p: the pair of h, m).
struct BuildConstants {
  alignas(64) uint8_t coef[2][64];
  alignas(64) uint16_t pick[32];
};
constexpr BuildConstants make_build_constants() {
  BuildConstants k{};
  for (int i = 0; i < 64; ++i) {
    for (int half = 0; half < 2; ++half) {
      const int e = (i % 16) / 2 + 8 * half;
      k.coef[half][i] = static_cast<uint8_t>(i % 2 == 0 ? e & 3 : e >> 2);
    }
  }
  for (int i = 0; i < 32; ++i) k.pick[i] = static_cast<uint16_t>(16 * (i / 8));
  return k;
}
constexpr BuildConstants kBuild = make_build_constants();

void build_tables(const uint8_t* xb, BlockTables& t) {
  const auto* q = reinterpret_cast<const int8_t*>(xb + kXQs);
  const __m512i coef_lo = _mm512_load_si512(kBuild.coef[0]);
  const __m512i coef_hi = _mm512_load_si512(kBuild.coef[1]);
  const __m512i pick0 = _mm512_load_si512(kBuild.pick);
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
          pairs[0], _mm512_add_epi16(pick0, _mm512_set1_epi16(static_cast<int16_t>(p))), pairs[1]);
      const __m512i v0 = _mm512_maddubs_epi16(coef_lo, b);  // entries 0..7 of each lane
      const __m512i v1 = _mm512_maddubs_epi16(coef_hi, b);  // entries 8..15
      _mm512_store_si512(t.lut[s][p][0], _mm512_packus_epi16(_mm512_and_si512(v0, low_byte),
                                                             _mm512_and_si512(v1, low_byte)));
      _mm512_store_si512(t.lut[s][p][1],
                         _mm512_packs_epi16(_mm512_srai_epi16(v0, 8), _mm512_srai_epi16(v1, 8)));
    }
  }
  int16_t bsums[16];
  std::memcpy(bsums, xb + kXBsums, sizeof bsums);
  for (int l = 0; l < 8; ++l) t.bsum_pairs[l] = int32_t{bsums[2 * l]} + int32_t{bsums[2 * l + 1]};
  std::memcpy(&t.d, xb, sizeof(float));
}

// Where a tile finds the tables of block b of activation row c: prebuilt for all blocks, or
// rebuilt per block into `scratch` when they did not fit the budget.
struct TableSource {
  BlockTables* tables;
  int64_t nb;
  bool prebuilt;
  const uint8_t* x;
  size_t x_stride;
};

// Lanes 0 + 2 of a (rows 0..7) and b (rows 8..15) as 16 int32 rows in `first`, lanes 1 + 3 in
// `second`.
inline void fold_rows(__m512i a, __m512i b, __m512i& first, __m512i& second) {
  const __m512i even = _mm512_shuffle_i64x2(a, b, _MM_SHUFFLE(2, 0, 2, 0));  // a0 a2 b0 b2
  const __m512i odd = _mm512_shuffle_i64x2(a, b, _MM_SHUFFLE(3, 1, 3, 1));   // a1 a3 b1 b3
  const __m512i sum = _mm512_add_epi16(_mm512_shuffle_i64x2(even, odd, _MM_SHUFFLE(2, 0, 2, 0)),
                                       _mm512_shuffle_i64x2(even, odd, _MM_SHUFFLE(3, 1, 3, 1)));
  first = _mm512_cvtepi16_epi32(_mm512_castsi512_si256(sum));
  second = _mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64(sum, 1));
}

// The 16 x 64 code bytes of rows[0..15] (block b) transposed in each 128-bit lane, in four
// unpack stages: out[p] lane j = byte 16j + p of rows 0..15. Stage by stage, index bit 3 - s of
// the output picks the low or high unpack and the rest of the index the rows being combined.
inline void transpose(const uint8_t* const* rows, size_t offset, __m512i (&out)[16]) {
  __m512i a[16], b[16];
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) a[i] = _mm512_loadu_si512(rows[i] + offset);
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) {
    b[i] = _mm512_unpacklo_epi8(a[2 * i], a[2 * i + 1]);
    b[8 + i] = _mm512_unpackhi_epi8(a[2 * i], a[2 * i + 1]);
  }
#pragma GCC unroll 2
  for (int hb = 0; hb < 2; ++hb) {
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      a[8 * hb + j] = _mm512_unpacklo_epi16(b[8 * hb + 2 * j], b[8 * hb + 2 * j + 1]);
      a[8 * hb + 4 + j] = _mm512_unpackhi_epi16(b[8 * hb + 2 * j], b[8 * hb + 2 * j + 1]);
    }
  }
#pragma GCC unroll 4
  for (int g = 0; g < 4; ++g) {
#pragma GCC unroll 2
    for (int j = 0; j < 2; ++j) {
      b[4 * g + j] = _mm512_unpacklo_epi32(a[4 * g + 2 * j], a[4 * g + 2 * j + 1]);
      b[4 * g + 2 + j] = _mm512_unpackhi_epi32(a[4 * g + 2 * j], a[4 * g + 2 * j + 1]);
    }
  }
#pragma GCC unroll 8
  for (int g = 0; g < 8; ++g) {
    out[2 * g] = _mm512_unpacklo_epi64(b[2 * g], b[2 * g + 1]);
    out[2 * g + 1] = _mm512_unpackhi_epi64(b[2 * g], b[2 * g + 1]);
  }
}

// Up to 16 weight rows (row i of the tile at w + i * w_stride; `rows` mask) x C activation rows.
template <int C>
void tile(const uint8_t* w, size_t w_stride, __mmask16 rows, const TableSource& src,
          BlockTables* scratch, float* y, int64_t ldy) {
  const __m512i row_offsets =
      _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                         _mm512_set1_epi32(static_cast<int>(w_stride)));
  // Rows past the tile's end repeat its last row (their results are not stored).
  const uint8_t* row_ptr[kRows];
  const int n_rows = __builtin_popcount(rows);
  for (int i = 0; i < kRows; ++i) {
    row_ptr[i] = w + static_cast<size_t>(i < n_rows ? i : n_rows - 1) * w_stride;
  }
  const __m512i nibble = _mm512_set1_epi8(0x0f);
  __m512 facc[C][8];
#pragma GCC unroll 16
  for (int c = 0; c < C; ++c) {
#pragma GCC unroll 8
    for (int l = 0; l < 8; ++l) facc[c][l] = _mm512_setzero_ps();
  }
  const int64_t tile_bytes = kRows * static_cast<int64_t>(w_stride);
  const int64_t ahead = tile_bytes > kMinPrefetchBytes ? tile_bytes : kMinPrefetchBytes;
  for (int64_t b = 0; b < src.nb; ++b) {
    const size_t wo = static_cast<size_t>(b) * kWBlock;
    {
      const char* pf = reinterpret_cast<const char*>(w) + ahead + b * kRows * kWBlock;
#pragma GCC unroll 17
      for (int i = 0; i <= kRows; ++i) _mm_prefetch(pf + 64 * i, _MM_HINT_T0);
    }
    const BlockTables* t[C];
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) {
      if (src.prebuilt) {
        t[c] = src.tables + c * src.nb + b;
      } else {
        build_tables(
            src.x + static_cast<size_t>(c) * src.x_stride + static_cast<size_t>(b) * kXBlock,
            scratch[c]);
        t[c] = &scratch[c];
      }
    }
    const __m512i wd16 =
        _mm512_srli_epi32(_mm512_mask_i32gather_epi32(_mm512_setzero_si512(), rows, row_offsets,
                                                      w + wo + kWScaleDword, 1),
                          16);
    const __m512 wd = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(wd16));
    __m512 d[C];
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) d[c] = _mm512_mul_ps(_mm512_set1_ps(t[c]->d), wd);
    __m512i codes[16];
    transpose(row_ptr, wo, codes);
#pragma GCC unroll 4
    for (int g = 0; g < 4; ++g) {
      __m512i lo_rows[C], hi_rows[C];  // int16 sums of rows 0..7 and 8..15
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) lo_rows[c] = hi_rows[c] = _mm512_setzero_si512();
#pragma GCC unroll 4
      for (int p = 4 * g; p < 4 * g + 4; ++p) {
        const __m512i n0 = _mm512_and_si512(codes[p], nibble);
        const __m512i n1 = _mm512_and_si512(_mm512_srli_epi16(codes[p], 4), nibble);
#pragma GCC unroll 16
        for (int c = 0; c < C; ++c) {
          const auto& lut = t[c]->lut;
          const __m512i lo0 = _mm512_shuffle_epi8(_mm512_load_si512(lut[0][p][0]), n0);
          const __m512i hi0 = _mm512_shuffle_epi8(_mm512_load_si512(lut[0][p][1]), n0);
          const __m512i lo1 = _mm512_shuffle_epi8(_mm512_load_si512(lut[1][p][0]), n1);
          const __m512i hi1 = _mm512_shuffle_epi8(_mm512_load_si512(lut[1][p][1]), n1);
          lo_rows[c] = _mm512_add_epi16(
              lo_rows[c],
              _mm512_add_epi16(_mm512_unpacklo_epi8(lo0, hi0), _mm512_unpacklo_epi8(lo1, hi1)));
          hi_rows[c] = _mm512_add_epi16(
              hi_rows[c],
              _mm512_add_epi16(_mm512_unpackhi_epi8(lo0, hi0), _mm512_unpackhi_epi8(lo1, hi1)));
        }
      }
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) {
        __m512i lane[2];
        fold_rows(lo_rows[c], hi_rows[c], lane[0], lane[1]);
#pragma GCC unroll 2
        for (int half = 0; half < 2; ++half) {
          const int l = g + 4 * half;
          const __m512i v = _mm512_sub_epi32(lane[half], _mm512_set1_epi32(t[c]->bsum_pairs[l]));
          facc[c][l] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(v), d[c], facc[c][l]);
        }
      }
    }
  }
#pragma GCC unroll 16
  for (int c = 0; c < C; ++c) {
    // hsum_float_8's tree, 16 rows at once.
    const __m512 r0 = _mm512_add_ps(facc[c][0], facc[c][4]);
    const __m512 r1 = _mm512_add_ps(facc[c][1], facc[c][5]);
    const __m512 r2 = _mm512_add_ps(facc[c][2], facc[c][6]);
    const __m512 r3 = _mm512_add_ps(facc[c][3], facc[c][7]);
    _mm512_mask_storeu_ps(y + c * ldy, rows,
                          _mm512_add_ps(_mm512_add_ps(r0, r2), _mm512_add_ps(r1, r3)));
  }
}

}  // namespace

void matmul_tq2_0_q8_K_lut(const TypeTraits& /*w_type*/, const std::byte* w, size_t w_stride,
                           int64_t /*n_rows*/, const std::byte* x, size_t x_stride, int64_t n_x,
                           int64_t k, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  const int64_t nb = k / kQkK;
  const auto* wb = reinterpret_cast<const uint8_t*>(w);
  const auto* xb = reinterpret_cast<const uint8_t*>(x);
  alignas(64) BlockTables tables[kBudgetBlocks];
  const int64_t budget_blocks = kBudgetBlocks;
  const bool prebuilt = nb <= budget_blocks;
  const int64_t cols = prebuilt && kCols * nb <= budget_blocks ? kCols : 1;
  for (int64_t m = 0; m < n_x; m += cols) {
    const int64_t nc = n_x - m < cols ? n_x - m : cols;
    const uint8_t* xm = xb + static_cast<size_t>(m) * x_stride;
    if (prebuilt) {
      for (int64_t c = 0; c < nc; ++c) {
        for (int64_t b = 0; b < nb; ++b) {
          build_tables(xm + static_cast<size_t>(c) * x_stride + static_cast<size_t>(b) * kXBlock,
                       tables[c * nb + b]);
        }
      }
    }
    const TableSource src{tables, nb, prebuilt, xm, x_stride};
    for (int64_t r = r0; r < r1; r += kRows) {
      const int64_t nr = r1 - r < kRows ? r1 - r : kRows;
      const auto mask = static_cast<__mmask16>((1u << nr) - 1);
      const uint8_t* wr = wb + static_cast<size_t>(r) * w_stride;
      float* yr = y + m * ldy + r;
      if (nc == 2) {
        tile<2>(wr, w_stride, mask, src, tables, yr, ldy);
      } else {
        tile<1>(wr, w_stride, mask, src, tables, yr, ldy);
      }
    }
  }
}

}  // namespace tern::kernels::avx512

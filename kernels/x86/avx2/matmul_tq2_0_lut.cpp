// TQ2_0 x Q8_K matrix product by table lookup (T-MAC / bitnet.cpp TL style) with AVX2,
// bit-identical to quant::vec_dot_tq2_0_q8_K. An alternative to the multiply-add kernel
// (matmul_tq2_0.cpp); kernels/tables.cpp keeps whichever measured faster as the main entry.
//
// Theory of operation: as the AVX-512 lookup kernel (x86/avx512/matmul_tq2_0_lut.cpp), which
// explains the lanes and the tables. Here a tile is still 16 weight rows (one per byte of a
// 128-bit lookup), read by two 8-row dword gathers; after the in-lane byte transpose a dword
// permute and a 64-bit unpack give one ymm with nibble positions 4l and 4l + 2 of the 16 rows in
// its two lanes, and one with 4l + 1 and 4l + 3. The tables are laid out for that pairing. Each
// int16 cell sums 8 lookups and the fold 2 lanes: at most 16 x 768, exact.
#include "kernels/x86/intrinsics.h"

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/x86/avx2/avx2.h"
#include "quant/blocks.h"

namespace tern::kernels::avx2 {
namespace {

constexpr size_t kWBlock = sizeof(BlockTQ2_0);
constexpr size_t kXBlock = sizeof(BlockQ8_K);
constexpr size_t kXQs = offsetof(BlockQ8_K, qs);
constexpr size_t kXBsums = offsetof(BlockQ8_K, bsums);
// The weight scale is read as the high half of the dword at this offset (a dword at the scale
// itself would run past the last block of a row).
constexpr size_t kWScaleDword = offsetof(BlockTQ2_0, d) - 2;
constexpr int kRows = 16;
constexpr int64_t kMinPrefetchBytes = 4096;

// One activation block's tables: [h][s][l][pair of positions: 4l, 4l+2 | 4l+1, 4l+3] x (32 low
// bytes, 32 high bytes), then the bsum corrections and the scale.
struct BlockTables {
  uint8_t lut[2][2][8][2][2][32];
  int32_t bsum_pairs[8];  // bsums[2l] + bsums[2l + 1]
  float d;
  uint8_t pad[28];
};
static_assert(sizeof(BlockTables) % 32 == 0);
constexpr int64_t kBudgetBlocks = 32;  // k = 8192 for one activation row, 4096 for two
constexpr int kCols = 2;

// vpmaddubsw coefficients (c0, c1) of entries e = c0 + 4 c1: entries 0..7, then 8..15.
struct BuildConstants {
  alignas(32) uint8_t coef[2][32];
};
constexpr BuildConstants make_build_constants() {
  BuildConstants k{};
  for (int i = 0; i < 32; ++i) {
    for (int half = 0; half < 2; ++half) {
      const int e = (i % 16) / 2 + 8 * half;
      k.coef[half][i] = static_cast<uint8_t>(i % 2 == 0 ? e & 3 : e >> 2);
    }
  }
  return k;
}
constexpr BuildConstants kBuild = make_build_constants();

void build_tables(const uint8_t* xb, BlockTables& t) {
  const __m256i coef_lo = _mm256_load_si256(reinterpret_cast<const __m256i*>(kBuild.coef[0]));
  const __m256i coef_hi = _mm256_load_si256(reinterpret_cast<const __m256i*>(kBuild.coef[1]));
  const __m256i low_byte = _mm256_set1_epi16(0xff);
  for (int h = 0; h < 2; ++h) {
    for (int s = 0; s < 2; ++s) {
      const uint8_t* qa = xb + kXQs + 128 * h + 64 * s;
      // pairs[m]: q8[...m] in the low byte, q8[... 32 + m] in the high byte: maddubs's s8 pair.
      alignas(16) uint16_t pairs[32];
      for (int i = 0; i < 2; ++i) {
        const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qa + 16 * i));
        const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qa + 32 + 16 * i));
        _mm_store_si128(reinterpret_cast<__m128i*>(pairs + 16 * i), _mm_unpacklo_epi8(a, b));
        _mm_store_si128(reinterpret_cast<__m128i*>(pairs + 16 * i + 8), _mm_unpackhi_epi8(a, b));
      }
      for (int l = 0; l < 8; ++l) {
        for (int pp = 0; pp < 2; ++pp) {
          const int m = 4 * l + pp;
          const __m256i b =
              _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi16(static_cast<short>(pairs[m]))),
                                      _mm_set1_epi16(static_cast<short>(pairs[m + 2])), 1);
          const __m256i v0 = _mm256_maddubs_epi16(coef_lo, b);
          const __m256i v1 = _mm256_maddubs_epi16(coef_hi, b);
          _mm256_store_si256(reinterpret_cast<__m256i*>(t.lut[h][s][l][pp][0]),
                             _mm256_packus_epi16(_mm256_and_si256(v0, low_byte),
                                                 _mm256_and_si256(v1, low_byte)));
          _mm256_store_si256(
              reinterpret_cast<__m256i*>(t.lut[h][s][l][pp][1]),
              _mm256_packs_epi16(_mm256_srai_epi16(v0, 8), _mm256_srai_epi16(v1, 8)));
        }
      }
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

inline __m256i load(const uint8_t* p) {
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(p));
}

// Up to 16 weight rows (row i of the tile at w + i * w_stride; `n_rows` of them) x C activation
// rows. Float lanes: rows 0..7 in [l][0], rows 8..15 in [l][1].
template <int C>
void tile(const uint8_t* w, size_t w_stride, int n_rows, const TableSource& src,
          BlockTables* scratch, float* y, int64_t ldy) {
  const __m256i index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i stride = _mm256_set1_epi32(static_cast<int>(w_stride));
  const __m256i offsets[2] = {
      _mm256_mullo_epi32(index, stride),
      _mm256_mullo_epi32(_mm256_add_epi32(index, _mm256_set1_epi32(8)), stride)};
  // Gather masks: all ones for the rows the tile has.
  const __m256i masks[2] = {_mm256_cmpgt_epi32(_mm256_set1_epi32(n_rows), index),
                            _mm256_cmpgt_epi32(_mm256_set1_epi32(n_rows - 8), index)};
  const __m256i byte_transpose = _mm256_broadcastsi128_si256(
      _mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15));
  const __m256i dword_pairs = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  // Bytes 2..3 of each dword (a scale), packed into the low 8 bytes of each lane.
  const __m256i scale_bytes = _mm256_broadcastsi128_si256(
      _mm_setr_epi8(2, 3, 6, 7, 10, 11, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1));
  const __m256i nibble = _mm256_set1_epi8(0x0f);
  __m256 facc[C][8][2];
#pragma GCC unroll 16
  for (int c = 0; c < C; ++c) {
#pragma GCC unroll 8
    for (int l = 0; l < 8; ++l) facc[c][l][0] = facc[c][l][1] = _mm256_setzero_ps();
  }
  const auto gather = [&](const uint8_t* base, int half) {
    return _mm256_mask_i32gather_epi32(_mm256_setzero_si256(), reinterpret_cast<const int*>(base),
                                       offsets[half], masks[half], 1);
  };
  const int64_t tile_bytes = kRows * static_cast<int64_t>(w_stride);
  const int64_t ahead = tile_bytes > kMinPrefetchBytes ? tile_bytes : kMinPrefetchBytes;
  for (int64_t b = 0; b < src.nb; ++b) {
    const uint8_t* wb = w + static_cast<size_t>(b) * kWBlock;
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
    __m256 wd[2];
#pragma GCC unroll 2
    for (int half = 0; half < 2; ++half) {
      const __m256i s = _mm256_permute4x64_epi64(
          _mm256_shuffle_epi8(gather(wb + kWScaleDword, half), scale_bytes),
          _MM_SHUFFLE(3, 1, 2, 0));
      wd[half] = _mm256_cvtph_ps(_mm256_castsi256_si128(s));
    }
    __m256 d[C][2];
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) {
      d[c][0] = _mm256_mul_ps(_mm256_set1_ps(t[c]->d), wd[0]);
      d[c][1] = _mm256_mul_ps(_mm256_set1_ps(t[c]->d), wd[1]);
    }
#pragma GCC unroll 1
    for (int l = 0; l < 8; ++l) {
      __m256i lo_rows[C], hi_rows[C];  // int16 sums of rows 0..7 and 8..15, per lane
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) lo_rows[c] = hi_rows[c] = _mm256_setzero_si256();
#pragma GCC unroll 2
      for (int h = 0; h < 2; ++h) {
        const uint8_t* wq = wb + 32 * h + 4 * l;
        const __m256i a = _mm256_permutevar8x32_epi32(
            _mm256_shuffle_epi8(gather(wq, 0), byte_transpose), dword_pairs);
        const __m256i bb = _mm256_permutevar8x32_epi32(
            _mm256_shuffle_epi8(gather(wq, 1), byte_transpose), dword_pairs);
        const __m256i v[2] = {_mm256_unpacklo_epi64(a, bb), _mm256_unpackhi_epi64(a, bb)};
#pragma GCC unroll 2
        for (int pp = 0; pp < 2; ++pp) {
          const __m256i n0 = _mm256_and_si256(v[pp], nibble);
          const __m256i n1 = _mm256_and_si256(_mm256_srli_epi16(v[pp], 4), nibble);
#pragma GCC unroll 16
          for (int c = 0; c < C; ++c) {
            const auto* lut = t[c]->lut[h];
            const __m256i lo0 = _mm256_shuffle_epi8(load(lut[0][l][pp][0]), n0);
            const __m256i hi0 = _mm256_shuffle_epi8(load(lut[0][l][pp][1]), n0);
            const __m256i lo1 = _mm256_shuffle_epi8(load(lut[1][l][pp][0]), n1);
            const __m256i hi1 = _mm256_shuffle_epi8(load(lut[1][l][pp][1]), n1);
            lo_rows[c] = _mm256_add_epi16(lo_rows[c], _mm256_add_epi16(_mm256_unpacklo_epi8(lo0, hi0),
                                                                       _mm256_unpacklo_epi8(lo1, hi1)));
            hi_rows[c] = _mm256_add_epi16(hi_rows[c], _mm256_add_epi16(_mm256_unpackhi_epi8(lo0, hi0),
                                                                       _mm256_unpackhi_epi8(lo1, hi1)));
          }
        }
      }
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) {
        const __m256i corr = _mm256_set1_epi32(t[c]->bsum_pairs[l]);
        const __m256i sums[2] = {lo_rows[c], hi_rows[c]};
#pragma GCC unroll 2
        for (int half = 0; half < 2; ++half) {
          const __m128i s16 = _mm_add_epi16(_mm256_castsi256_si128(sums[half]),
                                            _mm256_extracti128_si256(sums[half], 1));
          const __m256i lane = _mm256_sub_epi32(_mm256_cvtepi16_epi32(s16), corr);
          facc[c][l][half] =
              _mm256_fmadd_ps(_mm256_cvtepi32_ps(lane), d[c][half], facc[c][l][half]);
        }
      }
    }
  }
#pragma GCC unroll 16
  for (int c = 0; c < C; ++c) {
    alignas(32) float out[16];
#pragma GCC unroll 2
    for (int half = 0; half < 2; ++half) {
      // hsum_float_8's tree, 8 rows at once.
      const auto& f = facc[c];
      const __m256 r0 = _mm256_add_ps(f[0][half], f[4][half]);
      const __m256 r1 = _mm256_add_ps(f[1][half], f[5][half]);
      const __m256 r2 = _mm256_add_ps(f[2][half], f[6][half]);
      const __m256 r3 = _mm256_add_ps(f[3][half], f[7][half]);
      _mm256_store_ps(out + 8 * half, _mm256_add_ps(_mm256_add_ps(r0, r2), _mm256_add_ps(r1, r3)));
    }
    std::memcpy(y + c * ldy, out, static_cast<size_t>(n_rows) * sizeof(float));
  }
}

}  // namespace

void matmul_tq2_0_q8_K_lut(const TypeTraits& /*w_type*/, const std::byte* w, size_t w_stride,
                           int64_t /*n_rows*/, const std::byte* x, size_t x_stride, int64_t n_x,
                           int64_t k, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  const int64_t nb = k / kQkK;
  const auto* wb = reinterpret_cast<const uint8_t*>(w);
  const auto* xb = reinterpret_cast<const uint8_t*>(x);
  alignas(32) BlockTables tables[kBudgetBlocks];
  const bool prebuilt = nb <= kBudgetBlocks;
  const int64_t cols = prebuilt && kCols * nb <= kBudgetBlocks ? kCols : 1;
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
      const int nr = static_cast<int>(r1 - r < kRows ? r1 - r : kRows);
      const uint8_t* wr = wb + static_cast<size_t>(r) * w_stride;
      float* yr = y + m * ldy + r;
      if (nc == 2) {
        tile<2>(wr, w_stride, nr, src, tables, yr, ldy);
      } else {
        tile<1>(wr, w_stride, nr, src, tables, yr, ldy);
      }
    }
  }
}

}  // namespace tern::kernels::avx2

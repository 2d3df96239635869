// TQ2_0 x Q8_K matrix product by table lookup (T-MAC / bitnet.cpp TL style) with AVX2,
// bit-identical to quant::vec_dot_tq2_0_q8_K. An alternative to the multiply-add kernel
// (matmul_tq2_0.cpp); kernels/tables.cpp keeps whichever measured faster as the main entry.
//
// Theory of operation: as the AVX-512 lookup kernel (x86/avx512/matmul_tq2_0_lut.cpp), which
// explains the lanes and the tables. Here the tile's 16 rows are transposed per half h of the
// block (32 code bytes, one ymm per row): vector p then holds byte 32h + 16j + p of rows 0..15
// in lane j, that is m = 16j + p and lane l = 4j + p / 4. The tables are laid out the same way.
// Each int16 cell sums 2 halves x 4 positions x 2 nibbles = 16 lookups of at most 768: exact.
// (A dword gather per position instead of the transpose, measured: half the speed.)
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
constexpr size_t kWScale = offsetof(BlockTQ2_0, d);
constexpr int kRows = 16;
constexpr int64_t kMinPrefetchBytes = 4096;

// One activation block's tables: [h][s][p] x (32 low bytes, 32 high bytes), 128-bit lane j of each
// for m = 16j + p; then the bsum corrections and the scale.
struct BlockTables {
  uint8_t lut[2][2][16][2][32];
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
      for (int p = 0; p < 16; ++p) {
        const __m256i b = _mm256_inserti128_si256(
            _mm256_castsi128_si256(_mm_set1_epi16(static_cast<short>(pairs[p]))),
            _mm_set1_epi16(static_cast<short>(pairs[16 + p])), 1);
        const __m256i v0 = _mm256_maddubs_epi16(coef_lo, b);
        const __m256i v1 = _mm256_maddubs_epi16(coef_hi, b);
        _mm256_store_si256(
            reinterpret_cast<__m256i*>(t.lut[h][s][p][0]),
            _mm256_packus_epi16(_mm256_and_si256(v0, low_byte), _mm256_and_si256(v1, low_byte)));
        _mm256_store_si256(reinterpret_cast<__m256i*>(t.lut[h][s][p][1]),
                           _mm256_packs_epi16(_mm256_srai_epi16(v0, 8), _mm256_srai_epi16(v1, 8)));
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

// Code bytes 32h .. 32h + 31 of rows[0..15] (block at `offset`) transposed in each 128-bit lane,
// in four unpack stages: out[p] lane j = byte 32h + 16j + p of rows 0..15 (the index bookkeeping
// of the AVX-512 kernel's transpose).
inline void transpose(const uint8_t* const* rows, size_t offset, __m256i (&out)[16]) {
  __m256i a[16], b[16];
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) {
    a[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows[i] + offset));
  }
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) {
    b[i] = _mm256_unpacklo_epi8(a[2 * i], a[2 * i + 1]);
    b[8 + i] = _mm256_unpackhi_epi8(a[2 * i], a[2 * i + 1]);
  }
#pragma GCC unroll 2
  for (int hb = 0; hb < 2; ++hb) {
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      a[8 * hb + j] = _mm256_unpacklo_epi16(b[8 * hb + 2 * j], b[8 * hb + 2 * j + 1]);
      a[8 * hb + 4 + j] = _mm256_unpackhi_epi16(b[8 * hb + 2 * j], b[8 * hb + 2 * j + 1]);
    }
  }
#pragma GCC unroll 4
  for (int g = 0; g < 4; ++g) {
#pragma GCC unroll 2
    for (int j = 0; j < 2; ++j) {
      b[4 * g + j] = _mm256_unpacklo_epi32(a[4 * g + 2 * j], a[4 * g + 2 * j + 1]);
      b[4 * g + 2 + j] = _mm256_unpackhi_epi32(a[4 * g + 2 * j], a[4 * g + 2 * j + 1]);
    }
  }
#pragma GCC unroll 8
  for (int g = 0; g < 8; ++g) {
    out[2 * g] = _mm256_unpacklo_epi64(b[2 * g], b[2 * g + 1]);
    out[2 * g + 1] = _mm256_unpackhi_epi64(b[2 * g], b[2 * g + 1]);
  }
}

// Up to 16 weight rows (row i of the tile at w + i * w_stride; `n_rows` of them) x C activation
// rows. Float lanes: rows 0..7 in [l][0], rows 8..15 in [l][1].
template <int C>
void tile(const uint8_t* w, size_t w_stride, int n_rows, const TableSource& src,
          BlockTables* scratch, float* y, int64_t ldy) {
  // Rows past the tile's end repeat its last row (their results are not stored).
  const uint8_t* row_ptr[kRows];
  for (int i = 0; i < kRows; ++i) {
    row_ptr[i] = w + static_cast<size_t>(i < n_rows ? i : n_rows - 1) * w_stride;
  }
  const __m256i nibble = _mm256_set1_epi8(0x0f);
  __m256 facc[C][8][2];
#pragma GCC unroll 16
  for (int c = 0; c < C; ++c) {
#pragma GCC unroll 8
    for (int l = 0; l < 8; ++l) facc[c][l][0] = facc[c][l][1] = _mm256_setzero_ps();
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
    // int16 sums of rows 0..7 and 8..15 of group g: lane 0 for lane l = g, lane 1 for l = g + 4.
    __m256i lo_rows[4][C], hi_rows[4][C];
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      __m256i codes[16];
      transpose(row_ptr, wo + 32 * static_cast<size_t>(h), codes);
#pragma GCC unroll 4
      for (int g = 0; g < 4; ++g) {
#pragma GCC unroll 4
        for (int p = 4 * g; p < 4 * g + 4; ++p) {
          const __m256i n0 = _mm256_and_si256(codes[p], nibble);
          const __m256i n1 = _mm256_and_si256(_mm256_srli_epi16(codes[p], 4), nibble);
#pragma GCC unroll 16
          for (int c = 0; c < C; ++c) {
            const auto& lut = t[c]->lut[h];
            const __m256i lo0 = _mm256_shuffle_epi8(load(lut[0][p][0]), n0);
            const __m256i hi0 = _mm256_shuffle_epi8(load(lut[0][p][1]), n0);
            const __m256i lo1 = _mm256_shuffle_epi8(load(lut[1][p][0]), n1);
            const __m256i hi1 = _mm256_shuffle_epi8(load(lut[1][p][1]), n1);
            const __m256i lo =
                _mm256_add_epi16(_mm256_unpacklo_epi8(lo0, hi0), _mm256_unpacklo_epi8(lo1, hi1));
            const __m256i hi =
                _mm256_add_epi16(_mm256_unpackhi_epi8(lo0, hi0), _mm256_unpackhi_epi8(lo1, hi1));
            const bool first = h == 0 && p == 4 * g;
            lo_rows[g][c] = first ? lo : _mm256_add_epi16(lo_rows[g][c], lo);
            hi_rows[g][c] = first ? hi : _mm256_add_epi16(hi_rows[g][c], hi);
          }
        }
      }
    }
    __m256 wd[2];
    {
      // The 16 scales, converted 8 at a time.
      alignas(16) uint16_t d16[kRows];
      for (int i = 0; i < kRows; ++i) std::memcpy(&d16[i], row_ptr[i] + wo + kWScale, 2);
      wd[0] = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(d16)));
      wd[1] = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(d16 + 8)));
    }
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) {
      const __m256 xd = _mm256_set1_ps(t[c]->d);
      const __m256 d[2] = {_mm256_mul_ps(xd, wd[0]), _mm256_mul_ps(xd, wd[1])};
#pragma GCC unroll 4
      for (int g = 0; g < 4; ++g) {
        const __m256i sums[2] = {lo_rows[g][c], hi_rows[g][c]};
#pragma GCC unroll 2
        for (int half = 0; half < 2; ++half) {
#pragma GCC unroll 2
          for (int lane = 0; lane < 2; ++lane) {
            const int l = g + 4 * lane;
            const __m128i s16 = lane == 0 ? _mm256_castsi256_si128(sums[half])
                                          : _mm256_extracti128_si256(sums[half], 1);
            const __m256i v = _mm256_sub_epi32(_mm256_cvtepi16_epi32(s16),
                                               _mm256_set1_epi32(t[c]->bsum_pairs[l]));
            facc[c][l][half] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(v), d[half], facc[c][l][half]);
          }
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

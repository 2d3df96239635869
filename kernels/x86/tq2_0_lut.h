// The TQ2_0 x Q8_K product by table lookup (T-MAC / bitnet.cpp TL style), written once over a
// lanes policy that each x86 ISA's matmul_tq2_0_lut.cpp supplies; bit-identical to
// quant::vec_dot_tq2_0_q8_K. Included only by per-ISA kernel files; everything here has internal
// linkage.
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
//    of 16 weight rows. The tile loads its 16 rows' code bytes, kBytes per row at a time (the
//    whole block on AVX-512, one half h on AVX2), and transposes them in four unpack stages
//    (bytes, words, dwords, qwords) within each 128-bit lane: vector p then holds byte 16j + p of
//    the loaded bytes of rows 0..15 in 128-bit lane j. The tables are laid out the same way
//    (policy: which h, m and lane l that is). Low and high table bytes interleave back into int16
//    sums. (A dword gather per position instead of the transpose, measured: half the speed.)
//  - Per row and int16 cell: at most 2 halves x 4 positions x 2 nibbles = 16 lookups of at most
//    768 in magnitude, exact in int16. The lane sums become int32, the bsums are subtracted and
//    the float steps are the reference's, 16 rows side by side (row i in float lane i).
// Tables for every block of the tile's activation rows are built first into a per-thread heap
// buffer allocated at the first call (a bounded budget; longer rows rebuild each block's table
// per row tile), then reused by all row tiles.
//
// The policy L: I (integer vector of kBytes bytes), F (float vector), kFloatRegs (F per 16 rows),
// kBytes; loadu, load (aligned), and_, srli16, shuffle8, add16, unpacklo/hi 8, 16, 32, 64;
// Rows (the tile's rows: a count or a mask), rows(n), count(rows); build_tables(xb, tables);
// scales(row_ptr, w, w_stride, offset, rows, wd) (the 16 rows' d_w as floats); finish(lo, hi, g,
// bsum_pairs, d, facc) (group g's int16 sums of rows 0..7 and 8..15 into the accumulators of lanes
// g and g + 4); store(y, sums, rows); fmul, fadd, fsplat.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "kernels/x86/intrinsics.h"
#include "kernels/x86/tq2_0_rows.h"
#include "quant/blocks.h"

namespace tern::kernels::x86 {
namespace {
namespace tq2_lut {

constexpr int kRows = 16;  // weight rows per tile: one per byte of a 128-bit lane
constexpr int64_t kMinPrefetchBytes = 4096;
// The scratch budget for tables: 32 blocks (k = 8192) for one activation row, or 16 for two.
constexpr int64_t kBudgetBlocks = 32;
constexpr int kCols = 2;  // activation rows per tile when their tables fit

// One activation block's tables: [h][s][p] x (kBytes low bytes, kBytes high bytes) for each half
// h a tile loads at once; then the bsum corrections and the scale.
template <int kBytes>
struct alignas(64) BlockTables {
  static constexpr int kHalves = 64 / kBytes;
  uint8_t lut[kHalves][2][16][2][kBytes];
  int32_t bsum_pairs[8];  // bsums[2l] + bsums[2l + 1]
  float d;
};

// vpmaddubsw coefficients (c0, c1) of entries e = c0 + 4 c1: entries 0..7, then 8..15, of each
// 128-bit lane.
template <int kBytes>
struct Coefficients {
  alignas(64) uint8_t coef[2][kBytes];
};
template <int kBytes>
constexpr Coefficients<kBytes> make_coefficients() {
  Coefficients<kBytes> k{};
  for (int i = 0; i < kBytes; ++i) {
    for (int half = 0; half < 2; ++half) {
      const int e = (i % 16) / 2 + 8 * half;
      k.coef[half][i] = static_cast<uint8_t>(i % 2 == 0 ? e & 3 : e >> 2);
    }
  }
  return k;
}

// The part of a block's tables that is not lookups: bsum pairs and the activation scale.
template <int kBytes>
void finish_tables(const uint8_t* xb, BlockTables<kBytes>& t) {
  int16_t bsums[16];
  std::memcpy(bsums, xb + kQ8KBsums, sizeof bsums);
  for (int l = 0; l < 8; ++l) t.bsum_pairs[l] = int32_t{bsums[2 * l]} + int32_t{bsums[2 * l + 1]};
  std::memcpy(&t.d, xb, sizeof(float));
}

// The tables' memory, one buffer of kBudgetBlocks per thread, allocated at its first call and
// freed when the thread ends (about 130 KiB: too much for the stack of a pool thread).
template <class Tables>
struct Scratch {
  Tables* tables = nullptr;
  Scratch() = default;
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() { std::free(tables); }
};
// nullptr if the allocation failed (the caller then rebuilds tables per block in a stack one).
template <class Tables>
Tables* thread_tables() {
  thread_local Scratch<Tables> scratch;
  if (scratch.tables == nullptr) {
    scratch.tables =
        static_cast<Tables*>(std::aligned_alloc(alignof(Tables), kBudgetBlocks * sizeof(Tables)));
  }
  return scratch.tables;
}

// Where a tile finds the tables of block b of activation row c: prebuilt for all blocks, or
// rebuilt per block into `scratch` when they did not fit the budget.
template <class Tables>
struct TableSource {
  Tables* tables;
  int64_t nb;
  bool prebuilt;
  const uint8_t* x;
  size_t x_stride;
};

// The 16 x kBytes code bytes of rows[0..15] at `offset` transposed in each 128-bit lane, in four
// unpack stages: out[p] lane j = byte 16j + p of rows 0..15. Stage by stage, index bit 3 - s of
// the output picks the low or high unpack and the rest of the index the rows being combined.
template <class L>
[[gnu::always_inline]] inline void transpose(const uint8_t* const* rows, size_t offset,
                                             typename L::I (&out)[16]) {
  typename L::I a[16], b[16];
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) a[i] = L::loadu(rows[i] + offset);
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) {
    b[i] = L::unpacklo8(a[2 * i], a[2 * i + 1]);
    b[8 + i] = L::unpackhi8(a[2 * i], a[2 * i + 1]);
  }
#pragma GCC unroll 2
  for (int hb = 0; hb < 2; ++hb) {
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      a[8 * hb + j] = L::unpacklo16(b[8 * hb + 2 * j], b[8 * hb + 2 * j + 1]);
      a[8 * hb + 4 + j] = L::unpackhi16(b[8 * hb + 2 * j], b[8 * hb + 2 * j + 1]);
    }
  }
#pragma GCC unroll 4
  for (int g = 0; g < 4; ++g) {
#pragma GCC unroll 2
    for (int j = 0; j < 2; ++j) {
      b[4 * g + j] = L::unpacklo32(a[4 * g + 2 * j], a[4 * g + 2 * j + 1]);
      b[4 * g + 2 + j] = L::unpackhi32(a[4 * g + 2 * j], a[4 * g + 2 * j + 1]);
    }
  }
#pragma GCC unroll 8
  for (int g = 0; g < 8; ++g) {
    out[2 * g] = L::unpacklo64(b[2 * g], b[2 * g + 1]);
    out[2 * g + 1] = L::unpackhi64(b[2 * g], b[2 * g + 1]);
  }
}

// Up to 16 weight rows (row i of the tile at w + i * w_stride) x C activation rows.
template <class L, int C>
void tile(const uint8_t* w, size_t w_stride, typename L::Rows rows,
          const TableSource<typename L::Tables>& src, typename L::Tables* scratch, float* y,
          int64_t ldy) {
  using I = typename L::I;
  using F = typename L::F;
  using Tables = typename L::Tables;
  constexpr int kHalves = Tables::kHalves;
  constexpr int kF = L::kFloatRegs;
  // Rows past the tile's end repeat its last row (their results are not stored).
  const uint8_t* row_ptr[kRows];
  const int n_rows = L::count(rows);
  for (int i = 0; i < kRows; ++i) {
    row_ptr[i] = w + static_cast<size_t>(i < n_rows ? i : n_rows - 1) * w_stride;
  }
  const I nibble = L::splat8(0x0f);
  F facc[C][8][kF];
#pragma GCC unroll 16
  for (int c = 0; c < C; ++c) {
#pragma GCC unroll 8
    for (int l = 0; l < 8; ++l) {
#pragma GCC unroll 2
      for (int f = 0; f < kF; ++f) facc[c][l][f] = L::fzero();
    }
  }
  const int64_t tile_bytes = kRows * static_cast<int64_t>(w_stride);
  const int64_t ahead = tile_bytes > kMinPrefetchBytes ? tile_bytes : kMinPrefetchBytes;
  for (int64_t b = 0; b < src.nb; ++b) {
    const size_t wo = static_cast<size_t>(b) * kTq2WBlock;
    {
      const char* pf = reinterpret_cast<const char*>(w) + ahead + b * kRows * kTq2WBlock;
#pragma GCC unroll 17
      for (int i = 0; i <= kRows; ++i) _mm_prefetch(pf + 64 * i, _MM_HINT_T0);
    }
    const Tables* t[C];
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) {
      if (src.prebuilt) {
        t[c] = src.tables + c * src.nb + b;
      } else {
        L::build_tables(
            src.x + static_cast<size_t>(c) * src.x_stride + static_cast<size_t>(b) * kQ8KBlock,
            scratch[c]);
        t[c] = &scratch[c];
      }
    }
    F wd[kF];
    L::scales(row_ptr, w, w_stride, wo, rows, wd);
    F d[C][kF];
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) {
#pragma GCC unroll 2
      for (int f = 0; f < kF; ++f) d[c][f] = L::fmul(L::fsplat(t[c]->d), wd[f]);
    }
    // int16 sums of rows 0..7 and 8..15 of group g (lanes g and g + 4), over the halves.
    I lo_rows[4][C], hi_rows[4][C];
#pragma GCC unroll 2
    for (int h = 0; h < kHalves; ++h) {
      I codes[16];
      transpose<L>(row_ptr, wo + static_cast<size_t>(L::kBytes) * h, codes);
#pragma GCC unroll 4
      for (int g = 0; g < 4; ++g) {
#pragma GCC unroll 4
        for (int p = 4 * g; p < 4 * g + 4; ++p) {
          const I n0 = L::and_(codes[p], nibble);
          const I n1 = L::and_(L::srli16(codes[p], 4), nibble);
#pragma GCC unroll 16
          for (int c = 0; c < C; ++c) {
            const auto& lut = t[c]->lut[h];
            const I lo0 = L::shuffle8(L::load(lut[0][p][0]), n0);
            const I hi0 = L::shuffle8(L::load(lut[0][p][1]), n0);
            const I lo1 = L::shuffle8(L::load(lut[1][p][0]), n1);
            const I hi1 = L::shuffle8(L::load(lut[1][p][1]), n1);
            const I lo = L::add16(L::unpacklo8(lo0, hi0), L::unpacklo8(lo1, hi1));
            const I hi = L::add16(L::unpackhi8(lo0, hi0), L::unpackhi8(lo1, hi1));
            const bool first = h == 0 && p == 4 * g;
            lo_rows[g][c] = first ? lo : L::add16(lo_rows[g][c], lo);
            hi_rows[g][c] = first ? hi : L::add16(hi_rows[g][c], hi);
          }
        }
        if (h == kHalves - 1) {
#pragma GCC unroll 16
          for (int c = 0; c < C; ++c) {
            L::finish(lo_rows[g][c], hi_rows[g][c], g, t[c]->bsum_pairs, d[c], facc[c]);
          }
        }
      }
    }
  }
#pragma GCC unroll 16
  for (int c = 0; c < C; ++c) {
    F sums[kF];
#pragma GCC unroll 2
    for (int f = 0; f < kF; ++f) {
      // hsum_float_8's tree, 16 rows at once.
      const auto& a = facc[c];
      const F r0 = L::fadd(a[0][f], a[4][f]);
      const F r1 = L::fadd(a[1][f], a[5][f]);
      const F r2 = L::fadd(a[2][f], a[6][f]);
      const F r3 = L::fadd(a[3][f], a[7][f]);
      sums[f] = L::fadd(L::fadd(r0, r2), L::fadd(r1, r3));
    }
    L::store(y + c * ldy, sums, rows);
  }
}

// The MatmulFn body.
template <class L>
void matmul(const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, int64_t n_x,
            int64_t k, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  using Tables = typename L::Tables;
  const int64_t nb = k / kQkK;
  Tables* heap = thread_tables<Tables>();
  Tables local[1];  // only when the heap buffer could not be allocated
  Tables* tables = heap != nullptr ? heap : local;
  const int64_t budget_blocks = heap != nullptr ? kBudgetBlocks : 0;
  const bool prebuilt = nb <= budget_blocks;
  const int64_t cols = heap != nullptr && prebuilt && kCols * nb <= budget_blocks ? kCols : 1;
  for (int64_t m = 0; m < n_x; m += cols) {
    const int64_t nc = n_x - m < cols ? n_x - m : cols;
    const uint8_t* xm = x + static_cast<size_t>(m) * x_stride;
    if (prebuilt) {
      for (int64_t c = 0; c < nc; ++c) {
        for (int64_t b = 0; b < nb; ++b) {
          L::build_tables(
              xm + static_cast<size_t>(c) * x_stride + static_cast<size_t>(b) * kQ8KBlock,
              tables[c * nb + b]);
        }
      }
    }
    const TableSource<Tables> src{tables, nb, prebuilt, xm, x_stride};
    for (int64_t r = r0; r < r1; r += kRows) {
      const auto rows = L::rows(static_cast<int>(r1 - r < kRows ? r1 - r : kRows));
      const uint8_t* wr = w + static_cast<size_t>(r) * w_stride;
      float* yr = y + m * ldy + r;
      if (nc == 2) {
        tile<L, 2>(wr, w_stride, rows, src, tables, yr, ldy);
      } else {
        tile<L, 1>(wr, w_stride, rows, src, tables, yr, ldy);
      }
    }
  }
}

}  // namespace tq2_lut
}  // namespace
}  // namespace tern::kernels::x86

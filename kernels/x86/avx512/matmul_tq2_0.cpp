// TQ2_0 x Q8_K matrix product with AVX-512 VNNI (vpdpbusd), bit-identical to
// quant::vec_dot_tq2_0_q8_K. Also runs TQ1_0 weights repacked to TQ2_0 at load.
//
// Theory of operation. The reference keeps, per weight block of 256 and per activation row, eight
// int32 lanes: lane l sums code * q8 over offsets 4l..4l+3 of each of the eight groups of 32,
// minus bsums[2l] + bsums[2l+1]; then acc[l] = fma(float(lane), d_x * d_w, acc[l]) across blocks
// and the eight accumulators are summed in hsum_float_8's tree. The integers are exact whatever
// the order of their additions, so only the per-lane integer and the float steps must match:
//  - vpdpbusd sums 4 consecutive u8 x s8 products into one int32: with the codes of groups 2j
//    and 2j+1 in the two 256-bit halves of a zmm and q8[64j..64j+63] (contiguous in Q8_K) as the
//    other operand, int32 lane l of the low half is group 2j's lane l, of the high half group
//    2j+1's lane l. Four vpdpbusd cover the block; each half then holds a partial lane sum.
//  - The two halves of a unit (one weight row x one activation row) are added, two units per
//    zmm, and the accumulator starts at -(bsums[2l] + bsums[2l+1]) so no subtraction is left.
//  - Codes are u8 in 0..3 and q8 any s8: the products never saturate (vpdpbusd does not saturate
//    anyway, and 8 groups x 4 x 3 x 128 fits easily in int32).
// Each weight block is unpacked once per step and used for every activation row of the tile.
// With one activation row (decode) the pairing is groups n and 4 + n instead: one 64-byte load of
// a row's codes, shifted by 2n, holds both, and the activations are gathered to match once per
// block for all rows (four fewer loads and no broadcast per row and block; 4-12% faster, measured).
//
// Batches of kTq2PackMinCols activation rows or more take a second path that unpacks each tile of
// kTq2RowTile weight rows once, for all activation rows (the unpack and the fold above, redone for
// every 4 x 4 tile, cost a good part of the time):
//  - rows 2p and 2p+1 are unpacked side by side, group g of both in one zmm [row 2p | row 2p+1],
//    with their scales as [d_w(2p) x 8 | d_w(2p+1) x 8] after the eight groups of each block;
//  - each activation group (32 bytes) is broadcast to both halves, so one vpdpbusd adds group g of
//    two units at once and every int32 lane is already the reference's lane l of its unit: no
//    fold, and the accumulator starts at -(bsums[2l] + bsums[2l+1]) in both halves (vpmaddwd by
//    -1). The float step is the same fma(float(lane), d_x * d_w, acc) per unit and block.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/x86/avx512/avx512.h"
#include "kernels/x86/intrinsics.h"
#include "kernels/x86/tile_driver.h"
#include "quant/blocks.h"

namespace tern::kernels::avx512 {
namespace {

constexpr size_t kWBlock = sizeof(BlockTQ2_0);
constexpr size_t kXBlock = sizeof(BlockQ8_K);
constexpr size_t kXQs = offsetof(BlockQ8_K, qs);
constexpr size_t kXBsums = offsetof(BlockQ8_K, bsums);
constexpr size_t kWScale = offsetof(BlockTQ2_0, d);
// Constants of the unpack, built once per call.
struct Unpack {
  __m512i shift01;  // 16-bit shift counts: 0 in the low half, 2 in the high half
  __m512i shift23;  // 4 and 6
  __m512i mask3;
};

Unpack make_unpack() {
  const auto halves = [](short lo, short hi) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16(lo)), _mm256_set1_epi16(hi),
                              1);
  };
  return {halves(0, 2), halves(4, 6), _mm512_set1_epi8(3)};
}

// Codes of groups 2j (low half) and 2j+1 (high half) of a block: qs[32 h + m] holds element
// 128 h + 32 n + m in bits 2n (blocks.h), so group 2j comes from qs[0..31] or qs[32..63]
// shifted by 4j % 8 and group 2j+1 by 4j % 8 + 2.
inline __m512i codes(const uint8_t* qs, int j, const Unpack& u) {
  const __m512i bytes = _mm512_broadcast_i64x4(
      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * (j / 2))));
  return _mm512_and_si512(_mm512_srlv_epi16(bytes, j % 2 == 0 ? u.shift01 : u.shift23), u.mask3);
}

// [a_lo + a_hi | b_lo + b_hi]: the lane sums of two units side by side.
inline __m512i fold_pair(__m512i a, __m512i b) {
  return _mm512_add_epi32(_mm512_shuffle_i64x2(a, b, _MM_SHUFFLE(1, 0, 1, 0)),
                          _mm512_shuffle_i64x2(a, b, _MM_SHUFFLE(3, 2, 3, 2)));
}

// [s0 x 8 | s1 x 8].
inline __m512 halves(float s0, float s1) {
  return _mm512_mask_broadcastss_ps(_mm512_set1_ps(s0), 0xff00, _mm_set_ss(s1));
}

// R weight rows x C activation rows over nb blocks. Two units share a float accumulator and the
// folding step: with C >= 2 the units (r, c) and (r, c + 1), whose scales are d_w(r) times the
// pair [d_x(c) | d_x(c + 1)] built once per block; with C == 1 (decode) the units of rows r and
// r + 1. An odd last unit is paired with itself.
template <int R, int C>
void tq2_tile(const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, int64_t nb,
              float* y, int64_t ldy, const Unpack& u) {
  constexpr bool kRowPairs = C == 1;
  constexpr int kPairs = kRowPairs ? (R + 1) / 2 : R * ((C + 1) / 2);
  // Units of pair p as (row, column).
  constexpr auto unit = [](int p, int half) {
    struct RC {
      int r, c;
    };
    if constexpr (kRowPairs) {
      const int r = 2 * p + half;
      return RC{r < R ? r : R - 1, 0};
    } else {
      const int r = p / ((C + 1) / 2), c = 2 * (p % ((C + 1) / 2)) + half;
      return RC{r, c < C ? c : C - 1};
    }
  };
  __m512 facc[kPairs];
#pragma GCC unroll 16
  for (int p = 0; p < kPairs; ++p) facc[p] = _mm512_setzero_ps();
  const __m256i ones16 = _mm256_set1_epi16(1);

  const x86::WeightPrefetch<R, kWBlock> prefetch(w, w_stride);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* xq[C];
    float xd[C];
    __m512i acc[R][C];
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) {
      const uint8_t* xb = x + static_cast<size_t>(c) * x_stride + static_cast<size_t>(b) * kXBlock;
      xq[c] = xb + kXQs;
      std::memcpy(&xd[c], xb, sizeof(float));
      // bsums[2l] + bsums[2l+1] in int32 lane l, negated: the starting value of every unit of
      // this activation row (low half only; the high half starts at 0).
      const __m256i bs = _mm256_madd_epi16(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb + kXBsums)), ones16);
      const __m512i start = _mm512_zextsi256_si512(_mm256_sub_epi32(_mm256_setzero_si256(), bs));
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) acc[r][c] = start;
    }
    prefetch.at(b);
    float wd[R];
    const uint8_t* wq[R];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      wq[r] = w + static_cast<size_t>(r) * w_stride + static_cast<size_t>(b) * kWBlock;
      uint16_t d16;
      std::memcpy(&d16, wq[r] + kWScale, sizeof d16);
      wd[r] = _cvtsh_ss(d16);
    }
    if constexpr (C == 1) {
      // Decode: each row's 64 code bytes are loaded once and shifted by 2n for groups n (low
      // half) and 4 + n (high half); the activations are gathered to match, once for the R rows.
      __m512i bytes[R];
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        bytes[r] = _mm512_loadu_si512(wq[r]);
        asm("" : "+v"(bytes[r]));  // one load, not one per shift
      }
#pragma GCC unroll 4
      for (int n = 0; n < 4; ++n) {
        __m512i a = _mm512_inserti64x4(
            _mm512_castsi256_si512(
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq[0] + 32 * n))),
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq[0] + 128 + 32 * n)), 1);
        if constexpr (R > 1) asm("" : "+v"(a));
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r) {
          const __m512i q = _mm512_and_si512(_mm512_srli_epi16(bytes[r], 2 * n), u.mask3);
          acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], q, a);
        }
      }
    } else {
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) {
        // Activations in registers, loaded once for the R rows: a memory operand per vpdpbusd
        // would load them R times, and loads, not multiplies, limit this loop on Zen 4.
        __m512i a[C];
#pragma GCC unroll 16
        for (int c = 0; c < C; ++c) {
          a[c] = _mm512_loadu_si512(xq[c] + 64 * j);
          if constexpr (R > 1) asm("" : "+v"(a[c]));
        }
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r) {
          const __m512i q = codes(wq[r], j, u);
#pragma GCC unroll 16
          for (int c = 0; c < C; ++c) acc[r][c] = _mm512_dpbusd_epi32(acc[r][c], q, a[c]);
        }
      }
    }
    // d = d_x * d_w per unit (one rounding, as the reference), over the unit's 8 lanes.
    __m512 dpair[kRowPairs ? 1 : (C + 1) / 2];
    if constexpr (kRowPairs) {
      dpair[0] = _mm512_set1_ps(xd[0]);
    } else {
#pragma GCC unroll 16
      for (int q = 0; q < (C + 1) / 2; ++q) {
        dpair[q] = halves(xd[2 * q], xd[2 * q + 1 < C ? 2 * q + 1 : C - 1]);
      }
    }
#pragma GCC unroll 16
    for (int p = 0; p < kPairs; ++p) {
      const auto u0 = unit(p, 0), u1 = unit(p, 1);
      const __m512 lanes = _mm512_cvtepi32_ps(fold_pair(acc[u0.r][u0.c], acc[u1.r][u1.c]));
      const __m512 d = kRowPairs
                           ? _mm512_mul_ps(halves(wd[u0.r], wd[u1.r]), dpair[0])
                           : _mm512_mul_ps(_mm512_set1_ps(wd[u0.r]), dpair[p % ((C + 1) / 2)]);
      facc[p] = _mm512_fmadd_ps(lanes, d, facc[p]);
    }
  }
#pragma GCC unroll 16
  for (int p = 0; p < kPairs; ++p) {
#pragma GCC unroll 2
    for (int half = 0; half < 2; ++half) {
      const auto un = unit(p, half);
      if (half == 1 && un.r == unit(p, 0).r && un.c == unit(p, 0).c) continue;  // self-paired
      const __m256 v =
          half == 0 ? _mm512_castps512_ps256(facc[p]) : _mm512_extractf32x8_ps(facc[p], 1);
      y[static_cast<int64_t>(un.c) * ldy + un.r] = x86::hsum8(v);
    }
  }
}

// The tiles for x86::TileDriver.
struct Tq2Tiles : x86::TileShape<kTq2RowTile, kTq2DirectCols, kTq2GemvRows, kQkK> {
  using Context = Unpack;
  static Context context() { return make_unpack(); }
  template <int R, int C>
  static void tile(const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, int64_t nb,
                   float* y, int64_t ldy, const Context& ctx) {
    tq2_tile<R, C>(w, w_stride, x, x_stride, nb, y, ldy, ctx);
  }
};

// Unpacked weights: 64-byte chunks, kPackChunks per row pair and block.
struct alignas(64) Chunk {
  uint8_t bytes[64];
};
constexpr int kPackChunks = 9;  // eight groups, then the scales
// Blocks per row the unpacked tile holds on the stack (55 KiB; 7B's n_ff is 43 blocks); longer
// rows take the direct path.
constexpr int64_t kPackBudgetBlocks = 48;
// Column tiles are at least this wide once the batch has kTq2PackMinCols rows (see
// matmul_packed), so only these widths are compiled.
constexpr int kPackMinWidth = 4;
static_assert(kTq2PackMinCols / ((kTq2PackMinCols + kTq2ColTile - 1) / kTq2ColTile) >=
              kPackMinWidth);
constexpr int kPackPairs = kTq2RowTile / 2;
static_assert(kTq2RowTile % 2 == 0);

// Unpacks `rows` (1..kTq2RowTile) weight rows into out, block by block, pair by pair; an odd last
// row is paired with itself.
void pack_rows(const uint8_t* w, size_t w_stride, int rows, int64_t nb, Chunk* out) {
  const int pairs = (rows + 1) / 2;
  const __m512i mask3 = _mm512_set1_epi8(3);
  const x86::WeightPrefetch<kTq2RowTile, kWBlock> prefetch(w, w_stride);
  for (int64_t b = 0; b < nb; ++b) {
    prefetch.at(b);
    for (int p = 0; p < pairs; ++p, out += kPackChunks) {
      const int r1 = 2 * p + 1 < rows ? 2 * p + 1 : rows - 1;
      const uint8_t* q0 =
          w + static_cast<size_t>(2 * p) * w_stride + static_cast<size_t>(b) * kWBlock;
      const uint8_t* q1 = w + static_cast<size_t>(r1) * w_stride + static_cast<size_t>(b) * kWBlock;
#pragma GCC unroll 2
      for (int h = 0; h < 2; ++h) {
        const __m512i bytes = _mm512_inserti64x4(
            _mm512_castsi256_si512(
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q0 + 32 * h))),
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q1 + 32 * h)), 1);
#pragma GCC unroll 4
        for (int n = 0; n < 4; ++n) {
          _mm512_store_si512(out[4 * h + n].bytes,
                             _mm512_and_si512(_mm512_srli_epi16(bytes, 2 * n), mask3));
        }
      }
      _mm512_store_ps(out[8].bytes, halves(x86::fp16_at(q0 + kWScale), x86::fp16_at(q1 + kWScale)));
    }
  }
}

// P row pairs (unpacked by pack_rows with `rows` rows) x C activation rows over nb blocks.
template <int P, int C>
void packed_tile(const Chunk* pw, const uint8_t* x, size_t x_stride, int64_t nb, float* y,
                 int64_t ldy, int rows) {
  __m512 facc[P][C];
#pragma GCC unroll 16
  for (int p = 0; p < P; ++p) {
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) facc[p][c] = _mm512_setzero_ps();
  }
  const __m512i minus1 = _mm512_set1_epi16(-1);
  for (int64_t b = 0; b < nb; ++b, pw += P * kPackChunks) {
    const uint8_t* xb[C];
    __m512i acc[P][C];
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) {
      xb[c] = x + static_cast<size_t>(c) * x_stride + static_cast<size_t>(b) * kXBlock;
      const __m512i start = _mm512_madd_epi16(
          _mm512_broadcast_i64x4(
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb[c] + kXBsums))),
          minus1);
#pragma GCC unroll 16
      for (int p = 0; p < P; ++p) acc[p][c] = start;
    }
#pragma GCC unroll 8
    for (int g = 0; g < 8; ++g) {
      __m512i q[P];
#pragma GCC unroll 16
      for (int p = 0; p < P; ++p) q[p] = _mm512_load_si512(pw[p * kPackChunks + g].bytes);
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) {
        const __m512i a = _mm512_broadcast_i64x4(
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb[c] + kXQs + 32 * g)));
#pragma GCC unroll 16
        for (int p = 0; p < P; ++p) acc[p][c] = _mm512_dpbusd_epi32(acc[p][c], q[p], a);
      }
    }
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) {
      float xd;
      std::memcpy(&xd, xb[c], sizeof xd);
      const __m512 dx = _mm512_set1_ps(xd);
#pragma GCC unroll 16
      for (int p = 0; p < P; ++p) {
        const __m512 d = _mm512_mul_ps(dx, _mm512_load_ps(pw[p * kPackChunks + 8].bytes));
        facc[p][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[p][c]), d, facc[p][c]);
      }
    }
  }
#pragma GCC unroll 16
  for (int p = 0; p < P; ++p) {
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) {
      float* yc = y + static_cast<int64_t>(c) * ldy + 2 * p;
      yc[0] = x86::hsum8(_mm512_castps512_ps256(facc[p][c]));
      if (2 * p + 1 < rows) yc[1] = x86::hsum8(_mm512_extractf32x8_ps(facc[p][c], 1));
    }
  }
}

using PackedTileFn = void (*)(const Chunk*, const uint8_t*, size_t, int64_t, float*, int64_t, int);

// packed_tile<P, C> indexed [P - 1][C - kPackMinWidth].
struct PackedTiles {
  PackedTileFn fn[kPackPairs][kTq2ColTile - kPackMinWidth + 1];
  constexpr PackedTiles() : fn{} { fill<1, kPackMinWidth>(); }
  template <int P, int C>
  constexpr void fill() {
    fn[P - 1][C - kPackMinWidth] = &packed_tile<P, C>;
    if constexpr (C < kTq2ColTile) {
      fill<P, C + 1>();
    } else if constexpr (P < kPackPairs) {
      fill<P + 1, kPackMinWidth>();
    }
  }
};
constexpr PackedTiles kPackedTiles{};

void matmul_packed(const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride,
                   int64_t n_x, int64_t k, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  const int64_t nb = k / kQkK;
  Chunk packed[kPackBudgetBlocks * kPackPairs * kPackChunks];  // uninitialised: pack_rows fills it
  const int64_t n_tiles = (n_x + kTq2ColTile - 1) / kTq2ColTile;
  for (int64_t r = r0; r < r1; r += kTq2RowTile) {
    const int rows = static_cast<int>(r1 - r < kTq2RowTile ? r1 - r : kTq2RowTile);
    pack_rows(w + static_cast<size_t>(r) * w_stride, w_stride, rows, nb, packed);
    // Column tiles of even widths (8 = 4 + 4, not 6 + 2): narrow tiles reload the codes for few
    // multiplies.
    for (int64_t t = 0, m = 0, nc = 0; t < n_tiles; ++t, m += nc) {
      nc = n_x / n_tiles + (t < n_x % n_tiles ? 1 : 0);
      kPackedTiles.fn[(rows + 1) / 2 - 1][nc - kPackMinWidth](
          packed, x + static_cast<size_t>(m) * x_stride, x_stride, nb, y + m * ldy + r, ldy, rows);
    }
  }
}

}  // namespace

void matmul_tq2_0_q8_K(const TypeTraits& /*w_type*/, const std::byte* w, size_t w_stride,
                       int64_t /*n_rows*/, const std::byte* x, size_t x_stride, int64_t n_x,
                       int64_t k, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  if (n_x >= kTq2PackMinCols && k / kQkK <= kPackBudgetBlocks) {
    matmul_packed(reinterpret_cast<const uint8_t*>(w), w_stride,
                  reinterpret_cast<const uint8_t*>(x), x_stride, n_x, k, y, ldy, r0, r1);
    return;
  }
  x86::TileDriver<Tq2Tiles>::run(w, w_stride, x, x_stride, n_x, k, y, ldy, r0, r1);
}

}  // namespace tern::kernels::avx512

// The AVX-512 TQ2_0 x Q8_K kernel on weights interleaved in quads, included by
// matmul_tq2_0.cpp and again by matmul_tq2_0_gfni.cpp (built with -mgfni, where unpack() takes
// vgf2p8affineqb). Internal linkage: each object keeps its own copy.
//
// Bit-identical to quant::vec_dot_tq2_0_q8_K, on weights interleaved at load in groups of four
// rows ("quads"). Also runs TQ1_0 weights, repacked to TQ2_0 rows and then interleaved.
//
// Theory of operation. The reference keeps, per weight block of 256 and per activation row, eight
// int32 lanes: lane l sums code * q8 over offsets 4l..4l+3 of each of the eight groups of 32,
// minus bsums[2l] + bsums[2l+1]; then acc[l] = fma(float(lane), d_x * d_w, acc[l]) across blocks
// and the eight lanes are summed in hsum_float_8's tree. The integers are exact in any order, so
// only the per-lane integer and the float steps must match.
//
// Quad layout (interleave_tq2_0_quad). Quad q holds rows 4q..4q+3 in 4 * w_stride bytes: first
// the codes, 256 bytes per block, as four 64-byte chunks c = 2h + s whose 16-byte quarter i is
// qs[32h + 16s .. 32h + 16s + 15] of row i; then the scales, 8 bytes per block (d of rows 0..3).
// Shifted right by 2n and masked, chunk (h, s) holds elements 16s..16s+15 of group 4h + n of the
// four rows; against those elements of the activations broadcast to the four quarters, vpdpbusd
// adds to int32 lane t of quarter i exactly row i's reference lane 4s + t. So two accumulators
// per quad and activation row (s = 0, 1) hold the reference's lanes of four rows with no folding,
// and one float step per accumulator serves four rows: the scales of a quad are one 8-byte load,
// one conversion and one permute per block. On the row layout, that step (gathering four scalar
// scales, folding the halves of each row) took about 40% of a decode matrix-vector product.
//
// Batches of kTq2PackMinCols activation rows or more first unpack a tile of quads (all blocks)
// into a stack buffer, so that each code is unpacked once for the whole batch, not once per
// column tile; smaller batches and single rows unpack as they go.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/tile_table.h"
#include "kernels/x86/avx512/avx512.h"
#include "kernels/x86/intrinsics.h"
#include "kernels/x86/tile_driver.h"
#include "kernels/x86/tq2_0_rows.h"
#include "quant/blocks.h"

namespace tern::kernels::avx512 {
namespace {

constexpr int kQuadRows = 4;
using QuadRows = x86::Tq2Rows<kQuadRows>;  // the layout and its interleave
constexpr size_t kQuadCodes = QuadRows::kCodes;
constexpr size_t kQuadScales = QuadRows::kScales;

// One quad's bytes: codes of block b, then the scales of every block.
struct Quad {
  const uint8_t* base;
  int64_t nb;
  const uint8_t* codes(int64_t b) const { return base + static_cast<size_t>(b) * kQuadCodes; }
  const uint8_t* scales(int64_t b) const {
    return base + static_cast<size_t>(nb) * kQuadCodes + static_cast<size_t>(b) * kQuadScales;
  }
};

Quad quad_at(const uint8_t* w, size_t w_stride, int64_t q, int64_t nb) {
  return {w + static_cast<size_t>(q) * kQuadRows * w_stride, nb};
}

// Per-call constants.
struct Consts {
  __m512i mask3 = _mm512_set1_epi8(3);
  __m512i quarter_index = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
  __m256i ones16 = _mm256_set1_epi16(1);
#ifdef __GFNI__
  // Affine byte maps taking bits 2n and 2n + 1 to bits 0 and 1 (matrix rows for output bits 0
  // and 1 are bytes 7 and 6 of each qword), for n = 2, 3.
  __m512i select[2] = {_mm512_set1_epi64(static_cast<long long>(0x1020ull << 48)),
                       _mm512_set1_epi64(static_cast<long long>(0x4080ull << 48))};
#endif
};

// Group 4h + n of the chunk's four rows, one code per byte. `affine`: take groups 2 and 3 (a
// shift and a mask each otherwise) by one vgf2p8affineqb in the GFNI build; it shares Zen 4's
// pipes with vpdpbusd, so it pays only in decode (0.91-0.93x the time of 8-row GEMV steps, but
// 1.02-1.03x with 3 activation rows) and only for two groups (all four measured slower).
inline __m512i unpack(__m512i chunk, int n, const Consts& k, bool affine = false) {
#ifdef __GFNI__
  if (affine && n >= 2) return _mm512_gf2p8affine_epi64_epi8(chunk, k.select[n - 2], 0);
#else
  (void)affine;
#endif
  return _mm512_and_si512(n == 0 ? chunk : _mm512_srli_epi16(chunk, 2 * n), k.mask3);
}

// [d_w(row i) x 4 for quarters i = 0..3] of a quad's block.
inline __m512 quad_scales(const uint8_t* scales, const Consts& k) {
  const __m128 d4 = _mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(scales)));
  return _mm512_permutexvar_ps(k.quarter_index, _mm512_castps128_ps512(d4));
}

// One activation row's block: its codes, d, and the accumulators' starting values
// -(bsums[2l] + bsums[2l+1]) for lanes l = 4s..4s+3, in every quarter.
struct XBlock {
  const uint8_t* qs;
  __m512 d;
  __m512i start[2];
};

inline XBlock x_block(const uint8_t* xb, const Consts& k) {
  float d;
  std::memcpy(&d, xb, sizeof d);
  const __m256i neg = _mm256_sub_epi32(
      _mm256_setzero_si256(),
      _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb + x86::kQ8KBsums)),
                        k.ones16));
  return {xb + x86::kQ8KQs,
          _mm512_set1_ps(d),
          {_mm512_broadcast_i32x4(_mm256_castsi256_si128(neg)),
           _mm512_broadcast_i32x4(_mm256_extracti128_si256(neg, 1))}};
}

// Elements 16s..16s+15 of group g of an activation row, in all four quarters.
inline __m512i x_quarter(const uint8_t* qs, int g, int s) {
  return _mm512_broadcast_i32x4(
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs + 32 * g + 16 * s)));
}

// Row i of a quad from its two float accumulators: the reference's lanes 0..3 (quarter i of
// acc0) then 4..7 (of acc1), summed in hsum_float_8's order. Rows outside [r0, r1) are skipped.
inline void store_quad(__m512 acc0, __m512 acc1, int64_t row, int64_t r0, int64_t r1, float* y) {
  alignas(64) float lo[16], hi[16];
  _mm512_store_ps(lo, acc0);
  _mm512_store_ps(hi, acc1);
  for (int i = 0; i < kQuadRows; ++i) {
    if (row + i < r0 || row + i >= r1) continue;
    y[row + i] = x86::hsum8(_mm256_set_m128(_mm_load_ps(hi + 4 * i), _mm_load_ps(lo + 4 * i)));
  }
}

// The loop of every tile: Q quads (from quad q0) x C activation rows over nb blocks. Per block,
// the accumulators start from the activations' bsums, Codes::accumulate adds every group, and the
// float step scales them by Codes::scales (the quads' d_w, as quad_scales returns them).
template <int Q, int C, class Codes>
void run_tile(const Codes& codes, int64_t q0, const uint8_t* x, size_t x_stride, int64_t nb,
              float* y, int64_t ldy, int64_t r0, int64_t r1, const Consts& k) {
  __m512 facc[Q][C][2];
#pragma GCC unroll 16
  for (int q = 0; q < Q; ++q) {
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) facc[q][c][0] = facc[q][c][1] = _mm512_setzero_ps();
  }
  for (int64_t b = 0; b < nb; ++b) {
    XBlock xb[C];
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) {
      xb[c] = x_block(
          x + static_cast<size_t>(c) * x_stride + static_cast<size_t>(b) * x86::kQ8KBlock, k);
    }
    __m512i acc[Q][C][2];
#pragma GCC unroll 16
    for (int q = 0; q < Q; ++q) {
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) {
        acc[q][c][0] = xb[c].start[0];
        acc[q][c][1] = xb[c].start[1];
      }
    }
    codes.template accumulate<Q, C>(b, xb, acc, k);
#pragma GCC unroll 4
    for (int q = 0; q < Q; ++q) {
      const __m512 dw = codes.scales(q, b, k);
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) {
        const __m512 d = _mm512_mul_ps(xb[c].d, dw);
#pragma GCC unroll 2
        for (int s = 0; s < 2; ++s) {
          facc[q][c][s] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[q][c][s]), d, facc[q][c][s]);
        }
      }
    }
  }
#pragma GCC unroll 4
  for (int q = 0; q < Q; ++q) {
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) {
      store_quad(facc[q][c][0], facc[q][c][1], (q0 + q) * kQuadRows, r0, r1,
                 y + static_cast<int64_t>(c) * ldy);
    }
  }
}

// Codes straight from the interleaved weights, unpacked as they go: each code vector serves C
// activation rows, each activation vector Q quads.
template <int Q>
struct InterleavedCodes {
  Quad quad[Q];
  x86::WeightPrefetch<kQuadRows * Q, x86::kTq2WBlock> prefetch;

  InterleavedCodes(const uint8_t* w, size_t w_stride, int64_t q0, int64_t nb)
      : prefetch(w + static_cast<size_t>(q0) * kQuadRows * w_stride, w_stride) {
#pragma GCC unroll 4
    for (int q = 0; q < Q; ++q) quad[q] = quad_at(w, w_stride, q0 + q, nb);
  }

  template <int, int C>
  void accumulate(int64_t b, const XBlock* xb, __m512i (*acc)[C][2], const Consts& k) const {
    prefetch.at(b);
#pragma GCC unroll 4
    for (int chunk = 0; chunk < 4; ++chunk) {
      const int h = chunk / 2, s = chunk % 2;
      __m512i bytes[Q];
#pragma GCC unroll 4
      for (int q = 0; q < Q; ++q) {
        bytes[q] = _mm512_loadu_si512(quad[q].codes(b) + 64 * chunk);
        asm("" : "+v"(bytes[q]));  // one load, not one per shift
      }
#pragma GCC unroll 4
      for (int n = 0; n < 4; ++n) {
        __m512i a[C];
#pragma GCC unroll 16
        for (int c = 0; c < C; ++c) {
          a[c] = x_quarter(xb[c].qs, 4 * h + n, s);
          if constexpr (Q > 1) asm("" : "+v"(a[c]));
        }
#pragma GCC unroll 4
        for (int q = 0; q < Q; ++q) {
          const __m512i codes = unpack(bytes[q], n, k, C == 1);
#pragma GCC unroll 16
          for (int c = 0; c < C; ++c) acc[q][c][s] = _mm512_dpbusd_epi32(acc[q][c][s], codes, a[c]);
        }
      }
    }
  }

  __m512 scales(int q, int64_t b, const Consts& k) const {
    return quad_scales(quad[q].scales(b), k);
  }
};

template <int Q, int C>
void quad_tile(const uint8_t* w, size_t w_stride, int64_t q0, const uint8_t* x, size_t x_stride,
               int64_t nb, float* y, int64_t ldy, int64_t r0, int64_t r1, const Consts& k) {
  run_tile<Q, C>(InterleavedCodes<Q>(w, w_stride, q0, nb), q0, x, x_stride, nb, y, ldy, r0, r1, k);
}

using QuadTileFn = void (*)(const uint8_t*, size_t, int64_t, const uint8_t*, size_t, int64_t,
                            float*, int64_t, int64_t, int64_t, const Consts&);

// quad_tile<Q, C> indexed [Q - 1][C - 1].
constexpr int kTileQuads = kTq2RowTile / kQuadRows;
static_assert(kTq2RowTile % kQuadRows == 0 && kQuadRows == kTq2InterleaveRows);
struct MakeQuadTile {
  template <int Q, int C>
  static constexpr QuadTileFn get() {
    return &quad_tile<Q, C>;
  }
};
constexpr TileTable<QuadTileFn, kTileQuads, kTq2ColTile, MakeQuadTile> kQuadTiles{};

// ---- Batches of kTq2PackMinCols rows or more: quads unpacked once for the whole batch --------

// One block of one unpacked quad: the 16 code vectors (chunk c, shift n at 4c + n), then the
// scales as quad_scales returns them.
struct alignas(64) UnpackedBlock {
  __m512i codes[16];
  __m512 scales;
};
// Blocks per quad the stack buffer holds (kTileQuads x 48 x 1088 bytes = 102 KiB, on the pool
// threads' stacks: glibc's default is 8 MiB; 7B's n_ff is 43 blocks); longer rows take the
// unpack-as-you-go tiles.
constexpr int64_t kPackBudgetBlocks = 48;

void unpack_quads(const uint8_t* w, size_t w_stride, int64_t q0, int quads, int64_t nb,
                  UnpackedBlock* out, const Consts& k) {
  for (int q = 0; q < quads; ++q) {
    const Quad quad = quad_at(w, w_stride, q0 + q, nb);
    for (int64_t b = 0; b < nb; ++b, ++out) {
      for (int chunk = 0; chunk < 4; ++chunk) {
        const __m512i bytes = _mm512_loadu_si512(quad.codes(b) + 64 * chunk);
#pragma GCC unroll 4
        for (int n = 0; n < 4; ++n) out->codes[4 * chunk + n] = unpack(bytes, n, k);
      }
      out->scales = quad_scales(quad.scales(b), k);
    }
  }
}

// Codes of quads unpacked by unpack_quads (nb blocks each, one quad after the other).
struct UnpackedCodes {
  const UnpackedBlock* pw;
  int64_t nb;

  template <int Q, int C>
  void accumulate(int64_t b, const XBlock* xb, __m512i (*acc)[C][2], const Consts& /*k*/) const {
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) {
      const int chunk = i / 4, n = i % 4, h = chunk / 2, s = chunk % 2;
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) {
        const __m512i a = x_quarter(xb[c].qs, 4 * h + n, s);
#pragma GCC unroll 4
        for (int q = 0; q < Q; ++q) {
          acc[q][c][s] =
              _mm512_dpbusd_epi32(acc[q][c][s], _mm512_load_si512(&pw[q * nb + b].codes[i]), a);
        }
      }
    }
  }

  __m512 scales(int q, int64_t b, const Consts& /*k*/) const {
    return pw[q * nb + b].scales;
  }
};

template <int Q, int C>
void unpacked_tile(const UnpackedBlock* pw, int64_t q0, const uint8_t* x, size_t x_stride,
                   int64_t nb, float* y, int64_t ldy, int64_t r0, int64_t r1, const Consts& k) {
  run_tile<Q, C>(UnpackedCodes{pw, nb}, q0, x, x_stride, nb, y, ldy, r0, r1, k);
}

using UnpackedTileFn = void (*)(const UnpackedBlock*, int64_t, const uint8_t*, size_t, int64_t,
                                float*, int64_t, int64_t, int64_t, const Consts&);

// unpacked_tile<Q, C> indexed [Q - 1][C - 1].
struct MakeUnpackedTile {
  template <int Q, int C>
  static constexpr UnpackedTileFn get() {
    return &unpacked_tile<Q, C>;
  }
};
constexpr TileTable<UnpackedTileFn, kTileQuads, kTq2ColTile, MakeUnpackedTile> kUnpackedTiles{};

void matmul_unpacked(const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride,
                     int64_t n_x, int64_t nb, float* y, int64_t ldy, int64_t r0, int64_t r1,
                     const Consts& k) {
  UnpackedBlock buf[kTileQuads * kPackBudgetBlocks];  // uninitialised: unpack_quads fills it
  const int64_t q_end = (r1 + kQuadRows - 1) / kQuadRows;
  // Column tiles of near-equal widths (64 = 21 x 3 + 1 becomes 20 x 3 + 2 x 2): narrow tiles
  // reload the codes for few multiplies.
  const int64_t n_tiles = (n_x + kTq2ColTile - 1) / kTq2ColTile;
  for (int64_t q = r0 / kQuadRows; q < q_end; q += kTileQuads) {
    const int quads = static_cast<int>(q_end - q < kTileQuads ? q_end - q : kTileQuads);
    unpack_quads(w, w_stride, q, quads, nb, buf, k);
    for (int64_t t = 0, m = 0, nc = 0; t < n_tiles; ++t, m += nc) {
      nc = n_x / n_tiles + (t < n_x % n_tiles ? 1 : 0);
      kUnpackedTiles.fn[quads - 1][nc - 1](buf, q, x + static_cast<size_t>(m) * x_stride, x_stride,
                                           nb, y + m * ldy, ldy, r0, r1, k);
    }
  }
}

// The MatmulFn body.
void tq2_0_quads_matmul(const std::byte* w, size_t w_stride, const std::byte* x, size_t x_stride,
                        int64_t n_x, int64_t k, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  const Consts consts;
  const int64_t nb = k / kQkK;
  const auto* wb = reinterpret_cast<const uint8_t*>(w);
  const auto* xb = reinterpret_cast<const uint8_t*>(x);
  if (n_x >= kTq2PackMinCols && nb <= kPackBudgetBlocks) {
    matmul_unpacked(wb, w_stride, xb, x_stride, n_x, nb, y, ldy, r0, r1, consts);
    return;
  }
  const int64_t q_end = (r1 + kQuadRows - 1) / kQuadRows;
  for (int64_t q = r0 / kQuadRows; q < q_end; q += kTileQuads) {
    const int quads = static_cast<int>(q_end - q < kTileQuads ? q_end - q : kTileQuads);
    for (int64_t m = 0; m < n_x; m += kTq2ColTile) {
      const int cols = static_cast<int>(n_x - m < kTq2ColTile ? n_x - m : kTq2ColTile);
      kQuadTiles.fn[quads - 1][cols - 1](wb, w_stride, q, xb + static_cast<size_t>(m) * x_stride,
                                         x_stride, nb, y + m * ldy, ldy, r0, r1, consts);
    }
  }
}

}  // namespace
}  // namespace tern::kernels::avx512

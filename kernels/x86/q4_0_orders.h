// The Q4_0 x Q8_0 matrix product's choice between the scalar reference's two orders and the
// repacked order's tile skeleton, shared by the x86 kernels. Included only by per-ISA kernel files,
// with tile providers and policies from their anonymous namespace (see tile_driver.h).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/x86/block_lanes.h"
#include "kernels/x86/tile_driver.h"
#include "quant/blocks.h"

namespace tern::kernels::x86 {

namespace {

// The repacked tiles keep the block sum of row P j + k (j < 4, k < P: P rows per register, one per
// 128-bit lane) in lane 4 k + j, where their unpack/add reduction leaves it. Per tile: the rows'
// quant pointers (rows past `rows` repeat the last one), each lane's row offset (to gather the
// scales in lane order), each row's lane (to store in row order) and which rows are stored.
template <int P>
struct RepackedLanes {
  static constexpr int kRows = 4 * P;
  static constexpr int lane_of_row(int r) { return 4 * (r % P) + r / P; }
  static constexpr int row_of_lane(int l) { return P * (l % 4) + l / 4; }

  RepackedLanes(int rows, const uint8_t* w, size_t w_stride, size_t qs_offset) {
    for (int i = 0; i < kRows; ++i) {
      qs[i] = w + static_cast<size_t>(i < rows ? i : rows - 1) * w_stride + qs_offset;
      const int lr = row_of_lane(i) < rows ? row_of_lane(i) : rows - 1;
      row_offset[i] = static_cast<int32_t>(static_cast<size_t>(lr) * w_stride);
      lane[i] = lane_of_row(i);
      stored[i] = i < rows ? -1 : 0;
    }
  }
  const uint8_t* qs[kRows];
  int32_t row_offset[kRows], lane[kRows], stored[kRows];
};

// The unpack/add reduction (exact integers) of v[j], whose 128-bit lane k holds 4 int32 parts of
// row P j + k's block sum, to one vector whose lane 4 k + j holds that row's sum.
template <class Q>
typename Q::I block_sums(const typename Q::I (&v)[4]) {
  const typename Q::I t01 = Q::add32(Q::unpacklo32(v[0], v[1]), Q::unpackhi32(v[0], v[1]));
  const typename Q::I t23 = Q::add32(Q::unpacklo32(v[2], v[3]), Q::unpackhi32(v[2], v[3]));
  return Q::add32(Q::unpacklo64(t01, t23), Q::unpackhi64(t01, t23));
}

// The repacked order's tiles (llama.cpp's interleaved gemv/gemm: one f32 accumulator per output,
// acc = fma(float(block sum), d_w * d_a, acc) block after block), written once over an ISA's
// policy Q: rows [0, rows) (rows <= 4 P) x C activation rows, row r in float lane lane_of_row(r);
// rows past `rows` repeat the last one and are not stored. The policy computes the integer block
// sums its own way and gathers the rows' scales in lane order, in the order that suits its
// registers (Q::sums, for one block of the tile's rows: add(c, sums, d_w) with activation row c's
// sums in lane order), and stores a tile in row order (Q::store); I and F are its integer and float
// vectors, Tile its per-tile constants.
template <class Q>
struct Q4RepackedTiles : TileShape<4 * Q::kPerReg, Q::kColTile, 4 * Q::kPerReg, kQk4_0> {
  using Lanes = RepackedLanes<Q::kPerReg>;
  template <int C>
  [[gnu::noinline]] static void run(int rows, const uint8_t* w, size_t w_stride, const uint8_t* x,
                                    size_t x_stride, int64_t nb, float* y, int64_t ldy) {
    constexpr size_t kWBlock = sizeof(BlockQ4_0);
    const Lanes lanes(rows, w, w_stride, offsetof(BlockQ4_0, qs));
    const typename Q::Tile tile(lanes, rows);
    typename Q::F facc[C];
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) facc[c] = Q::fzero();
    const WeightPrefetch<Lanes::kRows, kWBlock> prefetch(w, w_stride);
    for (int64_t b = 0; b < nb; ++b) {
      prefetch.at(b);
      const size_t off = static_cast<size_t>(b) * kWBlock;
      const uint8_t* xb[C];
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) {
        xb[c] = x + static_cast<size_t>(c) * x_stride + static_cast<size_t>(b) * sizeof(BlockQ8_0);
      }
      // d = d_w * d_a rounded once, as the reference; then one fused multiply-add per output.
      Q::template sums<C>(
          lanes, tile, w, off, xb, [&](int c, typename Q::I sums, typename Q::F wd) {
            facc[c] = Q::fma(Q::to_float(sums), Q::fmul(wd, Q::fsplat(fp16_at(xb[c]))), facc[c]);
          });
    }
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) Q::store(tile, y + static_cast<int64_t>(c) * ldy, facc[c]);
  }
};

}  // namespace

// quant::select_matmul_dot: llama.cpp repacks Q4_0 matrices of a multiple of 8 rows and always
// multiplies them in its interleaved order (Repacked, a RowMaskedTiles base); the others take the
// 8-lane vec_dot order (Lanes, a BlockLanes format).
template <class Repacked, class Lanes>
void matmul_q4_0(const std::byte* w, size_t w_stride, int64_t n_rows, const std::byte* x,
                 size_t x_stride, int64_t n_x, int64_t k, float* y, int64_t ldy, int64_t r0,
                 int64_t r1) {
  if (n_rows % 8 == 0) {
    TileDriver<RowMaskedTiles<Repacked>>::run(w, w_stride, x, x_stride, n_x, k, y, ldy, r0, r1);
  } else {
    TileDriver<BlockLanes<Lanes>>::run(w, w_stride, x, x_stride, n_x, k, y, ldy, r0, r1);
  }
}

}  // namespace tern::kernels::x86

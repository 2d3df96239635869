// The Q4_0 x Q8_0 matrix product's choice between the scalar reference's two orders, and the
// repacked order on rows interleaved at load in groups (the layout, its load-time interleave and
// the group tiles), written once for the x86 kernels over each ISA's policy. Included only by
// per-ISA kernel files, with policies from their anonymous namespace (see tile_driver.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/tile_table.h"
#include "kernels/x86/block_lanes.h"
#include "kernels/x86/tile_driver.h"
#include "quant/blocks.h"

namespace tern::kernels::x86 {

namespace {

// The repacked tiles keep the block sum of row P j + k (j < 4, k < P: P rows per register, one per
// 128-bit lane) in lane 4 k + j, where their unpack/add reduction leaves it.
template <int P>
struct RepackedLanes {
  static constexpr int kRows = 4 * P;
  static constexpr int lane_of_row(int r) { return 4 * (r % P) + r / P; }
  static constexpr int row_of_lane(int l) { return P * (l % 4) + l / 4; }
  // lane_of_row(r) for every row: the permutation that stores a tile in row order.
  struct ToRows {
    int32_t lane[kRows];
    constexpr ToRows() : lane{} {
      for (int r = 0; r < kRows; ++r) lane[r] = lane_of_row(r);
    }
  };
  static constexpr ToRows kToRows{};
};

// The unpack/add reduction (exact integers) of v[j], whose 128-bit lane k holds 4 int32 parts of
// row P j + k's block sum, to one vector whose lane 4 k + j holds that row's sum.
template <class Q>
typename Q::I block_sums(const typename Q::I (&v)[4]) {
  const typename Q::I t01 = Q::add32(Q::unpacklo32(v[0], v[1]), Q::unpackhi32(v[0], v[1]));
  const typename Q::I t23 = Q::add32(Q::unpacklo32(v[2], v[3]), Q::unpackhi32(v[2], v[3]));
  return Q::add32(Q::unpacklo64(t01, t23), Q::unpackhi64(t01, t23));
}

// The repacked order (llama.cpp's interleaved gemv/gemm: one f32 accumulator per output,
// acc = fma(float(block sum), d_w * d_a, acc) block after block) on rows interleaved at load in
// groups of 4 P rows, P per register (one per 128-bit lane), all of a group in the lanes of one
// accumulator. Group g holds rows 4Pg.. in 4P * w_stride bytes, block after block, 4P * 18 bytes a
// block: the rows' fp16 scales in lane order (lane l: row row_of_lane(l)), then register j = 0..3:
// rows Pj..Pj+P-1's 16 code bytes, a row per 128-bit lane. A block is then a few contiguous loads,
// where the file's rows took 4P 128-bit loads, their inserts and a gather of the scales.
//
// Policy Q (an ISA's Regs, with I and F its integer and float vectors):
//   static constexpr int kPerReg, kColTile;
//   template <int C, class Add> static void sums(const uint8_t* scales, const uint8_t* codes,
//       const uint8_t* const (&xb)[C], Add add);  // a block's: add(c, sums, d_w), in lane order
//   static void store(float* y, F acc, int lo, int hi);  // rows [lo, hi) of acc, in row order
template <class Q>
struct Q4Groups {
  static constexpr int kRows = 4 * Q::kPerReg;
  static constexpr size_t kBlock = kRows * sizeof(BlockQ4_0);
  static constexpr size_t kCodesAt = kRows * sizeof(uint16_t);
  using Lanes = RepackedLanes<Q::kPerReg>;

  // InterleaveRowsFn: kRows rows of n elements to one group.
  static void interleave(const std::byte* rows, size_t stride, std::byte* dst, int64_t n) {
    constexpr size_t kWBlock = sizeof(BlockQ4_0);
    constexpr size_t kQs = offsetof(BlockQ4_0, qs);
    for (int64_t b = 0; b < n / kQk4_0; ++b) {
      std::byte* out = dst + static_cast<size_t>(b) * kBlock;
      const auto block = [&](int r) {
        return rows + static_cast<size_t>(r) * stride + static_cast<size_t>(b) * kWBlock;
      };
      for (int l = 0; l < kRows; ++l) {
        std::memcpy(out + l * sizeof(uint16_t), block(Lanes::row_of_lane(l)), sizeof(uint16_t));
      }
      for (int r = 0; r < kRows; ++r) {
        std::memcpy(out + kCodesAt + r * sizeof(BlockQ4_0::qs), block(r) + kQs,
                    sizeof(BlockQ4_0::qs));
      }
    }
  }

  // The group at g x C activation rows over nb blocks; y is the group's first row's output, and
  // only rows [lo, hi) of the group are stored.
  template <int C>
  [[gnu::noinline]] static void tile(const uint8_t* g, const uint8_t* x, size_t x_stride,
                                     int64_t nb, float* y, int64_t ldy, int lo, int hi) {
    typename Q::F facc[C];
#pragma GCC unroll 16
    for (auto& f : facc) f = Q::fzero();
    const StreamPrefetch<kRows * sizeof(BlockQ4_0)> prefetch(g);
    for (int64_t b = 0; b < nb; ++b) {
      prefetch.at(b);
      const uint8_t* xb[C];
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) {
        xb[c] = x + static_cast<size_t>(c) * x_stride + static_cast<size_t>(b) * sizeof(BlockQ8_0);
      }
      // d = d_w * d_a rounded once, as the reference; then one fused multiply-add per output.
      const uint8_t* block = g + static_cast<size_t>(b) * kBlock;
      Q::template sums<C>(
          block, block + kCodesAt, xb, [&](int c, typename Q::I sums, typename Q::F wd) {
            facc[c] = Q::fma(Q::to_float(sums), Q::fmul(wd, Q::fsplat(fp16_at(xb[c]))), facc[c]);
          });
    }
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) Q::store(y + static_cast<int64_t>(c) * ldy, facc[c], lo, hi);
  }

  // Rows [r0, r1) x activation rows [0, n_x): whole groups, the edge groups stored in part.
  static void run(const std::byte* w, size_t w_stride, const std::byte* x, size_t x_stride,
                  int64_t n_x, int64_t k, float* y, int64_t ldy, int64_t r0, int64_t r1) {
    const auto* wb = reinterpret_cast<const uint8_t*>(w);
    const auto* xb = reinterpret_cast<const uint8_t*>(x);
    for (int64_t g = r0 / kRows; g * kRows < r1; ++g) {
      const int64_t first = g * kRows;
      const int lo = r0 > first ? static_cast<int>(r0 - first) : 0;
      const int hi = r1 - first < kRows ? static_cast<int>(r1 - first) : kRows;
      for (int64_t m = 0; m < n_x; m += Q::kColTile) {
        const int64_t nc = n_x - m < Q::kColTile ? n_x - m : Q::kColTile;
        kTiles.fn[0][nc - 1](wb + static_cast<size_t>(first) * w_stride,
                             xb + static_cast<size_t>(m) * x_stride, x_stride, k / kQk4_0,
                             y + m * ldy + first, ldy, lo, hi);
      }
    }
  }

 private:
  using TileFn = void (*)(const uint8_t*, const uint8_t*, size_t, int64_t, float*, int64_t, int,
                          int);
  struct Make {  // one row of tiles: a group is always whole
    template <int, int C>
    static constexpr TileFn get() {
      return &tile<C>;
    }
  };
  static constexpr TileTable<TileFn, 1, Q::kColTile, Make> kTiles{};
};

}  // namespace

// quant::select_matmul_dot: llama.cpp repacks Q4_0 matrices of a multiple of kRowMultiple (8) rows
// and always multiplies them in its interleaved order (Groups, a Q4Groups on rows interleaved at
// load); the others take the 8-lane vec_dot order on the file's rows (Lanes, a BlockLanes format).
template <int kRowMultiple, class Groups, class Lanes>
void matmul_q4_0(const std::byte* w, size_t w_stride, int64_t n_rows, const std::byte* x,
                 size_t x_stride, int64_t n_x, int64_t k, float* y, int64_t ldy, int64_t r0,
                 int64_t r1) {
  if (n_rows % kRowMultiple == 0) {
    Groups::run(w, w_stride, x, x_stride, n_x, k, y, ldy, r0, r1);
  } else {
    TileDriver<BlockLanes<Lanes>>::run(w, w_stride, x, x_stride, n_x, k, y, ldy, r0, r1);
  }
}

}  // namespace tern::kernels::x86

// The Q4_0 x Q8_0 matrix product's choice between the scalar reference's two orders, shared by
// the x86 kernels. Included only by per-ISA kernel files, with tile providers from their
// anonymous namespace (see tile_driver.h).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/x86/block_lanes.h"
#include "kernels/x86/tile_driver.h"

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

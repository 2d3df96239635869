// TileTable: a constant table of a kernel's register tiles, fn[R - 1][C - 1] = Make::get<R, C>()
// for R in 1..kRows and C in 1..kCols, so that the edges of a matrix (fewer rows or activation
// rows than a full tile) pick a tile compiled for their size. Written once for every ISA's tile
// loops; internal linkage, so each per-ISA object keeps its own table.
#pragma once

namespace tern::kernels {
namespace {

// Make: `template <int R, int C> static constexpr Fn get()`, the tile for R x C.
template <class Fn, int kRows, int kCols, class Make>
struct TileTable {
  Fn fn[kRows][kCols];
  constexpr TileTable() : fn{} { fill<1, 1>(); }

 private:
  template <int R, int C>
  constexpr void fill() {
    fn[R - 1][C - 1] = Make::template get<R, C>();
    if constexpr (C < kCols) {
      fill<R, C + 1>();
    } else if constexpr (R < kRows) {
      fill<R + 1, 1>();
    }
  }
};

}  // namespace
}  // namespace tern::kernels

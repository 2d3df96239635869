// The F32 and F16 matrix products in llama.cpp's two x86 orders (quant/float_dot.h), as tile
// providers for TileDriver, written once over a 16-lane vector type each ISA supplies. Included
// only by per-ISA kernel files, with lane types from their anonymous namespace (see tile_driver.h).
//
// Theory of operation. Both orders keep 16-lane f32 FMA accumulators along k, element i in lane
// i % 16, and only the accumulators' number, the lane-sum tree and the tail differ:
//  - tinyBLAS (batches of >= 2 rows, k % 16 == 0, rows % 4 == 0): one accumulator per output,
//    then _mm512_reduce_add_ps. Every output is independent, so R x C outputs share their loads.
//  - ggml_vec_dot_*: four accumulators over 64-element steps ((acc0 + acc2) + (acc1 + acc3), then
//    the lane sum), and the k % 64 leftovers summed in scalar code in the reference's order: F32
//    rounds each product and adds it (the last k % 8 fused), F16 adds exact products in double.
// A tile never reassociates: each lane's FMA chain and each sum is the reference's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/x86/intrinsics.h"
#include "kernels/x86/tile_driver.h"

namespace tern::kernels::x86 {
namespace {

// F32 elements: the vec_dot leftovers in f32, groups of 16 and one of 8 as rounded products, the
// rest fused (GCC's vectorised loop and scalar epilogue in ggml_vec_dot_f32).
struct F32Elems {
  using Elem = float;
  static float tail(float sum, const float* w, const float* x, int64_t np, int64_t n) {
    const int64_t left = n - np;
    const int64_t rounded_end = np + left / 16 * 16 + (left % 16 >= 8 ? 8 : 0);
    int64_t i = np;
    for (; i < rounded_end; ++i) sum += w[i] * x[i];
    for (; i < n; ++i) {
      sum = _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(w[i]), _mm_set_ss(x[i]), _mm_set_ss(sum)));
    }
    return sum;
  }
};

// F16 elements (F16 activations): the vector sum and the leftovers' exact products in double.
struct F16Elems {
  using Elem = uint16_t;
  static float tail(float sum, const uint16_t* w, const uint16_t* x, int64_t np, int64_t n) {
    double s = static_cast<double>(sum);
    for (int64_t i = np; i < n; ++i) {
      s += static_cast<double>(_cvtsh_ss(w[i]) * _cvtsh_ss(x[i]));
    }
    return static_cast<float>(s);
  }
};

// L: the ISA's 16 lanes: `Reg`, zero(), load(const float*), load(const uint16_t*) (16 elements as
// f32), fma(a, b, acc), add(a, b) and reduce(v) (_mm512_reduce_add_ps's tree); kSgemmRows,
// kSgemmCols and kDotRows (tiles). E: F32Elems or F16Elems. The block is one element (nb == k).
template <class L, class E>
struct SgemmTiles : TileShape<L::kSgemmRows, L::kSgemmCols, L::kDotRows, 1> {
  template <int R, int C>
  static void tile(const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, int64_t k,
                   float* y, int64_t ldy, const NoContext& /*ctx*/) {
    using Elem = typename E::Elem;
    typename L::Reg acc[R][C];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) acc[r][c] = L::zero();
    }
    for (int64_t i = 0; i < k; i += 16) {
      typename L::Reg xv[C];
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) {
        xv[c] = L::load(reinterpret_cast<const Elem*>(x + c * x_stride) + i);
      }
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        const typename L::Reg wv = L::load(reinterpret_cast<const Elem*>(w + r * w_stride) + i);
#pragma GCC unroll 16
        for (int c = 0; c < C; ++c) acc[r][c] = L::fma(wv, xv[c], acc[r][c]);
      }
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) y[c * ldy + r] = L::reduce(acc[r][c]);
    }
  }
};

// ggml_vec_dot_*: R rows times one activation row per tile (the driver steps through the rest).
template <class L, class E>
struct VecDotTiles : TileShape<L::kDotRows, 1, L::kDotRows, 1> {
  template <int R, int C>
  static void tile(const uint8_t* w, size_t w_stride, const uint8_t* x, size_t /*x_stride*/,
                   int64_t k, float* y, int64_t /*ldy*/, const NoContext& /*ctx*/) {
    static_assert(C == 1);
    using Elem = typename E::Elem;
    const auto* xe = reinterpret_cast<const Elem*>(x);
    const int64_t np = k & ~int64_t{63};
    typename L::Reg acc[R][4];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) acc[r][j] = L::zero();
    }
    for (int64_t i = 0; i < np; i += 64) {
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) {
        const typename L::Reg xv = L::load(xe + i + 16 * j);
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r) {
          const auto* wr = reinterpret_cast<const Elem*>(w + r * w_stride);
          acc[r][j] = L::fma(L::load(wr + i + 16 * j), xv, acc[r][j]);
        }
      }
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const float sum =
          L::reduce(L::add(L::add(acc[r][0], acc[r][2]), L::add(acc[r][1], acc[r][3])));
      y[r] = E::tail(sum, reinterpret_cast<const Elem*>(w + r * w_stride), xe, np, k);
    }
  }
};

// The MatmulFn body: the order select_matmul_dot picks for the whole product.
template <class L, class E>
void float_matmul(const TypeTraits& w_type, const std::byte* w, size_t w_stride, int64_t n_rows,
                  const std::byte* x, size_t x_stride, int64_t n_x, int64_t k, float* y,
                  int64_t ldy, int64_t r0, int64_t r1) {
  if (select_matmul_dot(w_type, n_rows, k, n_x) == w_type.vec_dot_sgemm) {
    TileDriver<SgemmTiles<L, E>>::run(w, w_stride, x, x_stride, n_x, k, y, ldy, r0, r1);
  } else {
    TileDriver<VecDotTiles<L, E>>::run(w, w_stride, x, x_stride, n_x, k, y, ldy, r0, r1);
  }
}

}  // namespace
}  // namespace tern::kernels::x86

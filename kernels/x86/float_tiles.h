// The F32, F16 and BF16 matrix products in llama.cpp's two x86 orders (quant/float_dot.h), as tile
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
//  - BF16 steps 32 elements at a time (dpbf16: lane l takes a pair of elements), k % 32 == 0 for
//    tinyBLAS, two accumulators per 64 elements for vec_dot, each lane-summed into a double.
// A tile never reassociates: each lane's FMA chain and each sum is the reference's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/float_tails.h"
#include "kernels/x86/intrinsics.h"
#include "kernels/x86/tile_driver.h"

namespace tern::kernels::x86 {
namespace {

// L: the ISA's 16 lanes: `Reg`, zero(), load(const float*), load(const uint16_t*) (16 elements as
// f32), bf16_pairs(p, even, odd) (32 bfloat16s: lane l gets elements 2l and 2l + 1 as f32),
// fma(a, b, acc), add(a, b), daz(v) (subnormal lanes to signed zero), reduce(v)
// (_mm512_reduce_add_ps's tree); kSgemmRows, kSgemmCols and kDotRows (tiles).
//
// E: the element type's step. kStep elements go into one accumulator per step (the vec_dot order
// has 64 / kStep accumulators over each 64 elements); prepare(x) converts an activation step once
// for all rows, step(acc, w, prepared) adds one weight step, finish(acc, w, x, np, n) is vec_dot's
// sum of its accumulators and the leftovers [np, n).

// F32 and F16: one FMA per element, 16 per step. F is the element type's conversion.
template <class Elem, class F>
struct FmaElems {
  using T = Elem;
  static constexpr int kStep = 16;
  template <class L>
  using Prepared = typename L::Reg;
  template <class L>
  static typename L::Reg prepare(const Elem* x) {
    return L::load(x);
  }
  template <class L>
  static typename L::Reg step(typename L::Reg acc, const Elem* w, typename L::Reg x) {
    return L::fma(L::load(w), x, acc);
  }
  template <class L>
  static float finish(const typename L::Reg (&acc)[4], const Elem* w, const Elem* x, int64_t np,
                      int64_t n) {
    return F::tail(L::reduce(L::add(L::add(acc[0], acc[2]), L::add(acc[1], acc[3]))), w, x, np, n);
  }
};

inline float cvtsh_at(const uint16_t* p) {
  return _cvtsh_ss(*p);
}

// The leftovers: kernels/float_tails.h.
using F32Elems = FmaElems<float, F32Tail>;
using F16Elems = FmaElems<uint16_t, F16Tail<cvtsh_at>>;

// BF16 (BF16 activations): one _mm512_dpbf16_ps per 32 elements, lane l adding the product of
// elements 2l + 1 and then of 2l, each an FMA with subnormal inputs and results flushed to zero.
struct Bf16Elems {
  using T = uint16_t;
  static constexpr int kStep = 32;
  template <class L>
  struct Pair {
    typename L::Reg even, odd;
  };
  template <class L>
  using Prepared = Pair<L>;
  template <class L>
  static Pair<L> prepare(const uint16_t* x) {
    Pair<L> p;
    L::bf16_pairs(x, p.even, p.odd);
    return {L::daz(p.even), L::daz(p.odd)};
  }
  template <class L>
  static typename L::Reg step(typename L::Reg acc, const uint16_t* w, const Pair<L>& x) {
    const Pair<L> wp = prepare<L>(w);
    acc = L::daz(L::fma(wp.odd, x.odd, acc));
    return L::daz(L::fma(wp.even, x.even, acc));
  }
  // Each accumulator's lane sum added to a double, then the leftovers' exact products.
  template <class L>
  static float finish(const typename L::Reg (&acc)[2], const uint16_t* w, const uint16_t* x,
                      int64_t np, int64_t n) {
    double s = static_cast<double>(L::reduce(acc[0]));
    s += static_cast<double>(L::reduce(acc[1]));
    for (int64_t i = np; i < n; ++i) s += static_cast<double>(bf16_at(w[i]) * bf16_at(x[i]));
    return static_cast<float>(s);
  }
};

// tinyBLAS: R x C outputs, one accumulator each. The block is one element (nb == k).
template <class L, class E>
struct SgemmTiles : TileShape<L::kSgemmRows, L::kSgemmCols, L::kDotRows, 1> {
  template <int R, int C>
  static void tile(const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, int64_t k,
                   float* y, int64_t ldy, const NoContext& /*ctx*/) {
    using Elem = typename E::T;
    typename L::Reg acc[R][C];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) acc[r][c] = L::zero();
    }
    for (int64_t i = 0; i < k; i += E::kStep) {
      typename E::template Prepared<L> xv[C];
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) {
        xv[c] = E::template prepare<L>(reinterpret_cast<const Elem*>(x + c * x_stride) + i);
      }
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        const auto* wr = reinterpret_cast<const Elem*>(w + r * w_stride) + i;
#pragma GCC unroll 16
        for (int c = 0; c < C; ++c) acc[r][c] = E::template step<L>(acc[r][c], wr, xv[c]);
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
    using Elem = typename E::T;
    constexpr int kAccs = 64 / E::kStep;
    const auto* xe = reinterpret_cast<const Elem*>(x);
    const int64_t np = k & ~int64_t{63};
    typename L::Reg acc[R][kAccs];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
      for (int j = 0; j < kAccs; ++j) acc[r][j] = L::zero();
    }
    for (int64_t i = 0; i < np; i += 64) {
#pragma GCC unroll 4
      for (int j = 0; j < kAccs; ++j) {
        const auto xv = E::template prepare<L>(xe + i + E::kStep * j);
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r) {
          const auto* wr = reinterpret_cast<const Elem*>(w + r * w_stride) + i + E::kStep * j;
          acc[r][j] = E::template step<L>(acc[r][j], wr, xv);
        }
      }
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      y[r] =
          E::template finish<L>(acc[r], reinterpret_cast<const Elem*>(w + r * w_stride), xe, np, k);
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

// Q4_K, Q5_K and Q6_K x Q8_K matrix products with AVX-512, bit-identical to
// quant::vec_dot_q4_K_q8_K / q5_K / q6_K. The tiles and their theory of operation are
// kernels/x86/kquant_tiles.h, written once for the x86 ISAs; this file supplies the AVX-512 vector
// (KQuantLanes, in kquant_lanes.h) and the tile sizes.
#include <cstddef>
#include <cstdint>

#include "kernels/x86/avx512/avx512.h"
#include "kernels/x86/avx512/kquant_lanes.h"
#include "kernels/x86/intrinsics.h"
#include "kernels/x86/kquant_tiles.h"
#include "kernels/x86/tile_driver.h"

namespace tern::kernels::avx512 {
namespace {

template <class Format>
using Tiles =
    x86::KQuantTiles<KQuantLanes, Format, kKQuantRowTile, kKQuantColTile, kKQuantGemvRows>;

}  // namespace

void matmul_q4_K_q8_K(const TypeTraits& /*w_type*/, const std::byte* w, size_t w_stride,
                      int64_t /*n_rows*/, const std::byte* x, size_t x_stride, int64_t n_x,
                      int64_t k, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  x86::TileDriver<Tiles<x86::Q4KFormat>>::run(w, w_stride, x, x_stride, n_x, k, y, ldy, r0, r1);
}

void matmul_q5_K_q8_K(const TypeTraits& /*w_type*/, const std::byte* w, size_t w_stride,
                      int64_t /*n_rows*/, const std::byte* x, size_t x_stride, int64_t n_x,
                      int64_t k, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  x86::TileDriver<Tiles<x86::Q5KFormat>>::run(w, w_stride, x, x_stride, n_x, k, y, ldy, r0, r1);
}

void matmul_q6_K_q8_K(const TypeTraits& /*w_type*/, const std::byte* w, size_t w_stride,
                      int64_t /*n_rows*/, const std::byte* x, size_t x_stride, int64_t n_x,
                      int64_t k, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  x86::TileDriver<Tiles<x86::Q6Format>>::run(w, w_stride, x, x_stride, n_x, k, y, ldy, r0, r1);
}

}  // namespace tern::kernels::avx512

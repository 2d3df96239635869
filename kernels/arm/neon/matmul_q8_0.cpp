// Q8_0 x Q8_0 matrix product with NEON (the output head of most quantized files), bit-identical
// to quant::vec_dot_q8_0_q8_0: the block tile of block32.h on the 32 int8 weights of each block,
// in the reference's per-lane float order. Any int8 on either side is exact (sdot, or int16
// products: 128 x 128 fits).
#include <cstddef>
#include <cstdint>

#include "kernels/arm/neon/block32.h"
#include "kernels/arm/neon/neon.h"
#include "quant/blocks.h"

namespace tern::kernels::neon {
namespace {

struct Q8Weights {
  static constexpr size_t kBlockBytes = sizeof(BlockQ8_0);
  static void decode(const uint8_t* block, int8x16_t& lo, int8x16_t& hi) {
    const auto* qs = reinterpret_cast<const int8_t*>(block + offsetof(BlockQ8_0, qs));
    lo = vld1q_s8(qs);
    hi = vld1q_s8(qs + 16);
  }
};

}  // namespace

void TERN_NEON_NAME(matmul_q8_0_q8_0)(const TypeTraits& /*w_type*/, const std::byte* w,
                                      size_t w_stride, int64_t /*n_rows*/, const std::byte* x,
                                      size_t x_stride, int64_t n_x, int64_t k, float* y,
                                      int64_t ldy, int64_t r0, int64_t r1) {
  run_tiles<Block32Tile<Q8Weights, FloatOrder::kLanes>, kQ8RowTile, kQ8ColTile, kQ8GemvRows>(
      w, w_stride, x, x_stride, n_x, k / kQk8_0, y, ldy, r0, r1);
}

}  // namespace tern::kernels::neon

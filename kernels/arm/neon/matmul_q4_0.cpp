// Q4_0 x Q8_0 matrix product with NEON, bit-identical to the dot the scalar reference picks for
// the matrix (select_matmul_dot): llama.cpp repacks Q4_0 matrices whose row count is a multiple
// of 8 and multiplies them with one float accumulator per output (kBlockSums); the others go
// through vec_dot's eight lanes (kLanes). The file's layout is read as it is: byte j of a block
// holds element j in its low nibble and element j + 16 in its high one, so one mask and one shift
// give elements 0..15 and 16..31 (codes - 8: -8..7, exact in int16 products).
#include <cstddef>
#include <cstdint>

#include "kernels/arm/neon/block32.h"
#include "kernels/arm/neon/neon.h"
#include "quant/blocks.h"

namespace tern::kernels::neon {
namespace {

struct Q4Weights {
  static constexpr size_t kBlockBytes = sizeof(BlockQ4_0);
  static void decode(const uint8_t* block, int8x16_t& lo, int8x16_t& hi) {
    const uint8x16_t bytes = vld1q_u8(block + offsetof(BlockQ4_0, qs));
    const int8x16_t eight = vdupq_n_s8(8);
    lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(bytes, vdupq_n_u8(0x0f))), eight);
    hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(bytes, 4)), eight);
  }
};

}  // namespace

void TERN_NEON_NAME(matmul_q4_0_q8_0)(const TypeTraits& w_type, const std::byte* w, size_t w_stride,
                                      int64_t n_rows, const std::byte* x, size_t x_stride,
                                      int64_t n_x, int64_t k, float* y, int64_t ldy, int64_t r0,
                                      int64_t r1) {
  const int64_t nb = k / kQk4_0;
  if (select_matmul_dot(w_type, n_rows, k, n_x) == w_type.vec_dot_repacked) {
    run_tiles<Block32Tile<Q4Weights, FloatOrder::kBlockSums>, kQ4RowTile, kQ4ColTile, kQ4GemvRows>(
        w, w_stride, x, x_stride, n_x, nb, y, ldy, r0, r1);
  } else {
    run_tiles<Block32Tile<Q4Weights, FloatOrder::kLanes>, kQ4RowTile, kQ4ColTile, kQ4GemvRows>(
        w, w_stride, x, x_stride, n_x, nb, y, ldy, r0, r1);
  }
}

}  // namespace tern::kernels::neon

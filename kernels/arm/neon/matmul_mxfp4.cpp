// MXFP4 x Q8_0 matrix product with NEON, bit-identical to
// quant::vec_dot_mxfp4_q8_0: the block tile of block32.h in its paired-lanes
// order (blocks alternate between two sets of eight float lanes, added before
// the lane sum; an odd last block is one scalar fma of its whole sum). The E2M1
// codes are the integers 0..12 and negatives (values doubled, so the E8M0 scale
// is halved: 2^(e - 128)), looked up with tbl from the nibbles (byte j: element
// j low, j + 16 high); |value x q8| <= 12 x 128 is exact in int16 products.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/arm/neon/block32.h"
#include "kernels/arm/neon/neon.h"
#include "quant/blocks.h"
#include "quant/kquants.h"

namespace tern::kernels::neon {
namespace {

struct Mxfp4Weights {
  static constexpr size_t kBlockBytes = sizeof(BlockMxfp4);
  // 2^(e - 128); e = 0 and 1 give f32 subnormals (quant::e8m0_to_fp32_half).
  static float scale(const uint8_t* block) {
    const uint8_t e = block[offsetof(BlockMxfp4, e)];
    const uint32_t bits = e < 2 ? 0x00200000u << e : static_cast<uint32_t>(e - 1) << 23;
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
  }
  static void decode(const uint8_t* block, int8x16_t& lo, int8x16_t& hi) {
    static constexpr int8_t kValues[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
    const int8x16_t values = vld1q_s8(kValues);
    const uint8x16_t bytes = vld1q_u8(block + offsetof(BlockMxfp4, qs));
    lo = vqtbl1q_s8(values, vandq_u8(bytes, vdupq_n_u8(0x0f)));
    hi = vqtbl1q_s8(values, vshrq_n_u8(bytes, 4));
  }
};

}  // namespace

void TERN_NEON_NAME(matmul_mxfp4_q8_0)(const TypeTraits& /*w_type*/, const std::byte* w,
                                       size_t w_stride, int64_t /*n_rows*/, const std::byte* x,
                                       size_t x_stride, int64_t n_x, int64_t k, float* y,
                                       int64_t ldy, int64_t r0, int64_t r1) {
  run_tiles<Block32Tile<Mxfp4Weights, FloatOrder::kPairedLanes>, kMxfp4RowTile, kMxfp4ColTile,
            kMxfp4GemvRows>(w, w_stride, x, x_stride, n_x, k / kQkMxfp4, y, ldy, r0, r1);
}

}  // namespace tern::kernels::neon

// Q5_0 x Q8_0 and Q5_1 x Q8_1 matrix products with NEON, bit-identical to
// quant::vec_dot_q5_0_q8_0 and vec_dot_q5_1_q8_1: the block tile of block32.h
// in vec_dot's per-lane float order, Q5_1 with its minimum's scalar sum. The
// low four bits sit in nibbles as in Q4_0 (byte j: element j low, j + 16 high);
// the fifth bits are one little-endian u32, bit e for element e, spread to
// bytes by a bit test against 1, 2, 4, ... 128. Codes 0..31 (Q5_0: minus 16)
// are exact in int16 products.
#include <cstddef>
#include <cstdint>

#include "kernels/arm/neon/block32.h"
#include "kernels/arm/neon/neon.h"
#include "quant/blocks.h"
#include "quant/q5.h"

namespace tern::kernels::neon {
namespace {

// Elements 0..15 and 16..31 of a 5-bit block: 0..31, minus kCentre.
template <class Block, int kCentre>
struct Q5Weights {
  static constexpr size_t kBlockBytes = sizeof(Block);
  static void decode(const uint8_t* block, int8x16_t& lo, int8x16_t& hi) {
    const uint8x16_t bytes = vld1q_u8(block + offsetof(Block, qs));
    const uint8_t* qh = block + offsetof(Block, qh);
    static constexpr uint8_t kBits[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    const uint8x16_t bits = vld1q_u8(kBits);
    const uint8x16_t bit4 = vdupq_n_u8(0x10);
    // Byte j of h0 tests bit j of qh (elements 0..15), of h1 bit 16 + j.
    const uint8x16_t h0 =
        vandq_u8(vtstq_u8(vcombine_u8(vdup_n_u8(qh[0]), vdup_n_u8(qh[1])), bits), bit4);
    const uint8x16_t h1 =
        vandq_u8(vtstq_u8(vcombine_u8(vdup_n_u8(qh[2]), vdup_n_u8(qh[3])), bits), bit4);
    const int8x16_t centre = vdupq_n_s8(kCentre);
    lo = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vandq_u8(bytes, vdupq_n_u8(0x0f)), h0)), centre);
    hi = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(bytes, 4), h1)), centre);
  }
};

struct Q5_0Weights : Q5Weights<BlockQ5_0, 16> {};

struct Q5_1Weights : Q5Weights<BlockQ5_1, 0> {
  using Acts = BlockQ8_1;
  static constexpr size_t kMinOffset = offsetof(BlockQ5_1, m);
};

}  // namespace

void TERN_NEON_NAME(matmul_q5_0_q8_0)(const TypeTraits& /*w_type*/, const std::byte* w,
                                      size_t w_stride, int64_t /*n_rows*/, const std::byte* x,
                                      size_t x_stride, int64_t n_x, int64_t k, float* y,
                                      int64_t ldy, int64_t r0, int64_t r1) {
  run_tiles<Block32Tile<Q5_0Weights, FloatOrder::kLanes>, kQ5RowTile, kQ5ColTile, kQ5GemvRows>(
      w, w_stride, x, x_stride, n_x, k / kQk5_0, y, ldy, r0, r1);
}

void TERN_NEON_NAME(matmul_q5_1_q8_1)(const TypeTraits& /*w_type*/, const std::byte* w,
                                      size_t w_stride, int64_t /*n_rows*/, const std::byte* x,
                                      size_t x_stride, int64_t n_x, int64_t k, float* y,
                                      int64_t ldy, int64_t r0, int64_t r1) {
  run_tiles<Block32Tile<Q5_1Weights, FloatOrder::kLanes>, kQ5RowTile, kQ5ColTile, kQ5GemvRows>(
      w, w_stride, x, x_stride, n_x, k / kQk5_1, y, ldy, r0, r1);
}

}  // namespace tern::kernels::neon

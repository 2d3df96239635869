// BFP8 x BFP8 matrix product with NEON, bit-identical to
// quant::vec_dot_bfp8_bfp8.
//
// Theory of operation. Per block the reference takes the exact int32 dot of the
// 32 mantissas (GroupLanes, then the eight lanes added: any order, integers),
// scales it once by 2^(e_w + e_a) with ldexp's correct rounding, and adds the
// term to float lane b % 8; at the end hsum_float_8. The scaling here is a
// product in double, exact (|sum| < 2^19, exponent sum in
// [-256, 254]), converted to float once: the correctly rounded result,
// underflow and overflow included. Each of the eight lanes is then a float add
// in block order, as the reference's.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/arm/neon/lanes.h"
#include "kernels/arm/neon/neon.h"
#include "quant/blocks.h"
#include "quant/kquants.h"

namespace tern::kernels::neon {
namespace {

// float(sum * 2^e), rounded once.
inline float scale_exact(int32_t sum, int e) {
  const uint64_t bits = static_cast<uint64_t>(e + 1023) << 52;
  double p;
  std::memcpy(&p, &bits, sizeof p);
  return static_cast<float>(static_cast<double>(sum) * p);
}

struct Bfp8Tile {
  static constexpr size_t kBlock = sizeof(BlockBfp8);
  static constexpr size_t kM = offsetof(BlockBfp8, m);

  template <int R, int C>
  static void tile(const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, int64_t nb,
                   float* y, int64_t ldy) {
    float acc[R][C][8] = {};
    for (int64_t b = 0; b < nb; ++b) {
      int8x16_t a[C][2];
      int xe[C];
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) {
        const uint8_t* xb = x + c * x_stride + static_cast<size_t>(b) * kBlock;
        xe[c] = static_cast<int8_t>(xb[offsetof(BlockBfp8, e)]);
        a[c][0] = vld1q_s8(reinterpret_cast<const int8_t*>(xb + kM));
        a[c][1] = vld1q_s8(reinterpret_cast<const int8_t*>(xb + kM + 16));
      }
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const uint8_t* wb = w + r * w_stride + static_cast<size_t>(b) * kBlock;
        const int we = static_cast<int8_t>(wb[offsetof(BlockBfp8, e)]);
        const int8x16_t q0 = vld1q_s8(reinterpret_cast<const int8_t*>(wb + kM));
        const int8x16_t q1 = vld1q_s8(reinterpret_cast<const int8_t*>(wb + kM + 16));
#pragma GCC unroll 8
        for (int c = 0; c < C; ++c) {
          GroupLanes lanes;
          lanes.add(q0, a[c][0], q1, a[c][1]);
          const int32_t s = vaddvq_s32(vaddq_s32(lanes.lo(), lanes.hi()));
          acc[r][c][b % 8] += scale_exact(s, we + xe[c]);
        }
      }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) {
        y[c * ldy + r] = hsum8(vld1q_f32(acc[r][c]), vld1q_f32(acc[r][c] + 4));
      }
    }
  }
};

}  // namespace

void TERN_NEON_NAME(matmul_bfp8_bfp8)(const TypeTraits& /*w_type*/, const std::byte* w,
                                      size_t w_stride, int64_t /*n_rows*/, const std::byte* x,
                                      size_t x_stride, int64_t n_x, int64_t k, float* y,
                                      int64_t ldy, int64_t r0, int64_t r1) {
  run_tiles<Bfp8Tile, kBfp8RowTile, kBfp8ColTile, kBfp8GemvRows>(w, w_stride, x, x_stride, n_x,
                                                                 k / kQkBfp8, y, ldy, r0, r1);
}

}  // namespace tern::kernels::neon

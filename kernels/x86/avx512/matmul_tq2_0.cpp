// TQ2_0 x Q8_K matrix product with AVX-512 VNNI on rows interleaved in quads (tq2_0_quads.h),
// and the load-time interleave that makes the quads.
#include <cstring>

#include "kernels/x86/avx512/tq2_0_quads.h"

namespace tern::kernels::avx512 {

void interleave_tq2_0_quad(const std::byte* rows, size_t stride, std::byte* dst, int64_t n) {
  const int64_t nb = n / kQkK;
  for (int64_t b = 0; b < nb; ++b) {
    for (int chunk = 0; chunk < 4; ++chunk) {
      const int h = chunk / 2, s = chunk % 2;
      for (int i = 0; i < kQuadRows; ++i) {
        std::memcpy(dst + static_cast<size_t>(b) * kQuadCodes + 64 * chunk + 16 * i,
                    rows + static_cast<size_t>(i) * stride + static_cast<size_t>(b) * kWBlock +
                        32 * h + 16 * s,
                    16);
      }
    }
    for (int i = 0; i < kQuadRows; ++i) {
      std::memcpy(
          dst + static_cast<size_t>(nb) * kQuadCodes + static_cast<size_t>(b) * kQuadScales + 2 * i,
          rows + static_cast<size_t>(i) * stride + static_cast<size_t>(b) * kWBlock + kWScale, 2);
    }
  }
}

void matmul_tq2_0_q8_K(const TypeTraits& /*w_type*/, const std::byte* w, size_t w_stride,
                       int64_t /*n_rows*/, const std::byte* x, size_t x_stride, int64_t n_x,
                       int64_t k, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  tq2_0_quads_matmul(w, w_stride, x, x_stride, n_x, k, y, ldy, r0, r1);
}

}  // namespace tern::kernels::avx512

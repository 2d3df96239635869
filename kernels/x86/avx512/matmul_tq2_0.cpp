// TQ2_0 x Q8_K matrix product with AVX-512 VNNI on rows interleaved in quads (tq2_0_quads.h),
// and the load-time interleave that makes the quads.
#include "kernels/x86/avx512/tq2_0_quads.h"

namespace tern::kernels::avx512 {

void interleave_tq2_0_quad(const std::byte* rows, size_t stride, std::byte* dst, int64_t n) {
  QuadRows::interleave(rows, stride, dst, n);
}

void matmul_tq2_0_q8_K(const TypeTraits& /*w_type*/, const std::byte* w, size_t w_stride,
                       int64_t /*n_rows*/, const std::byte* x, size_t x_stride, int64_t n_x,
                       int64_t k, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  tq2_0_quads_matmul(w, w_stride, x, x_stride, n_x, k, y, ldy, r0, r1);
}

}  // namespace tern::kernels::avx512

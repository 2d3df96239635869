// Scalar reference matmul: one traits dot per (weight row, activation row). Slow by design;
// it is the specification the per-ISA kernels are tested against.
#include "kernels/scalar/scalar.h"

namespace tern::kernels::scalar {

void matmul(const TypeTraits& w_type, const std::byte* w, size_t w_stride, int64_t n_rows,
            const std::byte* x, size_t x_stride, int64_t n_x, int64_t k, float* y, int64_t ldy,
            int64_t r0, int64_t r1) {
  // The dot llama.cpp's x86 CPU backend would use for this whole product (repacked Q4_0, sgemm
  // for batches, or vec_dot): needed for token-identical output with quantized models.
  const VecDotFn dot = select_matmul_dot(w_type, n_rows, k, n_x);
  for (int64_t r = r0; r < r1; ++r) {
    const std::byte* w_row = w + static_cast<size_t>(r) * w_stride;
    for (int64_t m = 0; m < n_x; ++m) {
      y[m * ldy + r] = dot(k, w_row, x + static_cast<size_t>(m) * x_stride);
    }
  }
}

}  // namespace tern::kernels::scalar

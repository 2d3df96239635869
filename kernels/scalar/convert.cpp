// Scalar reference row conversion f32 -> fp16 (the KV cache store): quant/fp16.h's rounding.
#include "kernels/scalar/scalar.h"
#include "quant/fp16.h"

namespace tern::kernels::scalar {

void fp32_to_fp16_row(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}

}  // namespace tern::kernels::scalar

// GELU (a gather from ggml's fp16 table) and squared ReLU with AVX-512, bit-identical to
// scalar::gelu and scalar::relu_sqr: kernels/elementwise_lanes.h over simd.h's lanes.
#include <cstdint>

#include "kernels/elementwise_lanes.h"
#include "kernels/x86/avx512/avx512.h"
#include "kernels/x86/avx512/simd.h"

namespace tern::kernels::avx512 {

void gelu(const float* x, float* y, int64_t n) {
  elementwise_lanes::gelu<Lanes>(x, y, n, gelu_fp16_table());
}

void relu_sqr(const float* x, float* y, int64_t n) {
  elementwise_lanes::relu_sqr<Lanes>(x, y, n);
}

}  // namespace tern::kernels::avx512

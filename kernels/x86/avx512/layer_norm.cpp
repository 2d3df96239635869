// LayerNorm, residual add + LayerNorm and LayerNorm + GELU + residual add with AVX-512,
// bit-identical to scalar::layer_norm, scalar::add_layer_norm and scalar::layer_norm_gelu_add
// (llama.cpp's norm, mul and add ops, and its gelu): kernels/layer_norm_lanes.h (theory of
// operation there) over simd.h's 16-float lanes.
#include <cstdint>

#include "kernels/layer_norm_lanes.h"
#include "kernels/x86/avx512/avx512.h"
#include "kernels/x86/avx512/simd.h"
#include "kernels/x86/intrinsics.h"

namespace tern::kernels::avx512 {
void layer_norm(const float* x, const float* w, const float* b, float* y, int64_t n, float eps) {
  layer_norm_lanes::layer_norm<Lanes>(x, w, b, y, n, eps);
}

void add_layer_norm(const float* x, const float* r, float* sum, const float* w, const float* b,
                    float* y, int64_t n, float eps) {
  layer_norm_lanes::add_layer_norm<Lanes>(x, r, sum, w, b, y, n, eps);
}

void layer_norm_gelu_add(const float* x, const float* w, const float* b, const float* residual,
                         float* out, int64_t n, float eps) {
  layer_norm_lanes::layer_norm_gelu_add<Lanes>(x, w, b, residual, out, n, eps, gelu_fp16_table());
}

}  // namespace tern::kernels::avx512

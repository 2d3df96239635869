// LayerNorm, residual add + LayerNorm and LayerNorm + GELU + residual add with NEON, bit-identical
// to scalar::layer_norm, scalar::add_layer_norm and scalar::layer_norm_gelu_add (llama.cpp's norm,
// mul and add ops, and its gelu): kernels/layer_norm_lanes.h (theory of operation there, an
// argument about the numbers only) over simd.h's 4-float lanes, the double sums in two-lane
// vectors; the last n % 4 elements go through a zero-padded vector.
#include <cstdint>

#include "kernels/arm/neon/neon.h"
#include "kernels/arm/neon/simd.h"
#include "kernels/layer_norm_lanes.h"

namespace tern::kernels::neon {

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

}  // namespace tern::kernels::neon

// NEON RMSNorm, RoPE, SiLU-gated multiply and softmax: kernels/elementwise_lanes.h (theory of
// operation there) over simd.h's 4-float lanes, bit-identical to the scalar reference.
#include <cstddef>
#include <cstdint>

#include "kernels/arm/neon/neon.h"
#include "kernels/arm/neon/simd.h"
#include "kernels/elementwise_lanes.h"

namespace tern::kernels::neon {

void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
  elementwise_lanes::rms_norm<Lanes>(x, w, y, n, eps);
}

void rope(float* x, int64_t n_heads, int64_t head_dim, const float* cos_sin, int64_t n_pairs) {
  elementwise_lanes::rope<Lanes>(x, n_heads, head_dim, cos_sin, n_pairs);
}

void silu_mul(const float* gate, const float* up, float* out, int64_t n) {
  elementwise_lanes::silu_mul<Lanes>(gate, up, out, n);
}

void softmax(float* x, int64_t n, int64_t n_span) {
  elementwise_lanes::softmax<Lanes>(x, n, n_span);
}

}  // namespace tern::kernels::neon

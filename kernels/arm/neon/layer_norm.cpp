// LayerNorm, residual add + LayerNorm and LayerNorm + GELU + residual add with NEON, bit-identical
// to scalar::layer_norm, scalar::add_layer_norm and scalar::layer_norm_gelu_add (llama.cpp's norm,
// mul and add ops, and its gelu): kernels/layer_norm_lanes.h (theory of operation there, an
// argument about the numbers only) over 4-float lanes, the double sums in two-lane vectors; the
// last n % 4 elements go through a zero-padded vector.
#include <arm_neon.h>

#include <cstdint>

#include "kernels/arm/neon/gelu4.h"
#include "kernels/arm/neon/neon.h"
#include "kernels/layer_norm_lanes.h"

namespace tern::kernels::neon {
namespace {

struct Lanes {
  using V = float32x4_t;
  static constexpr int64_t kWidth = 4;

  static V load(const float* p) { return vld1q_f32(p); }
  static void store(float* p, V v) { vst1q_f32(p, v); }
  static V load_n(const float* p, int64_t k) {
    if (k == kWidth) return vld1q_f32(p);
    float t[4] = {};
    for (int64_t j = 0; j < k; ++j) t[j] = p[j];
    return vld1q_f32(t);
  }
  static void store_n(float* p, V v, int64_t k) {
    if (k == kWidth) {
      vst1q_f32(p, v);
      return;
    }
    float t[4];
    vst1q_f32(t, v);
    for (int64_t j = 0; j < k; ++j) p[j] = t[j];
  }
  static V splat(float f) { return vdupq_n_f32(f); }
  static V add(V a, V b) { return vaddq_f32(a, b); }
  static V sub(V a, V b) { return vsubq_f32(a, b); }
  static V mul(V a, V b) { return vmulq_f32(a, b); }
  static float sqrt(float f) { return vget_lane_f32(vsqrt_f32(vdup_n_f32(f)), 0); }
  static V gelu(V v, const float* table) { return gelu4(v, table); }

  template <bool kNonNegative>
  static layer_norm_lanes::ChunkSums chunk_sums(const V (&d)[layer_norm_lanes::kChunk / kWidth]) {
    const uint32x4_t abs_mask = vdupq_n_u32(0x7fffffff);
    const uint32x4_t exp_mask = vdupq_n_u32(0x7f800000);
    const uint32x4_t min_exp = vdupq_n_u32(0x00800000);  // subnormals: the step of exponent 1
    uint32x4_t e = exp_mask;
    float64x2_t sum = vdupq_n_f64(0.0);
    float32x4_t abs_sum = vdupq_n_f32(0.0f);
    for (const V& v : d) {
      const uint32x4_t a = vandq_u32(vreinterpretq_u32_f32(v), abs_mask);
      // The exponent field (at least 1) of a nonzero element; 255 for a zero.
      const uint32x4_t field = vmaxq_u32(vandq_u32(a, exp_mask), min_exp);
      e = vminq_u32(e, vorrq_u32(field, vandq_u32(vceqzq_u32(a), exp_mask)));
      sum = vaddq_f64(sum, vaddq_f64(vcvt_f64_f32(vget_low_f32(v)), vcvt_high_f64_f32(v)));
      if (!kNonNegative) abs_sum = vaddq_f32(abs_sum, vreinterpretq_f32_u32(a));
    }
    return {.sum = vaddvq_f64(sum),
            .min_field = static_cast<int>(vminvq_u32(e) >> 23),
            .abs_sum = vaddvq_f32(abs_sum)};
  }
};

}  // namespace

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

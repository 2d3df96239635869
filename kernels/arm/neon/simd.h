// The NEON float policy `Lanes` of the kernels written once for every ISA:
// kernels/elementwise_lanes.h, attention_lanes.h and layer_norm_lanes.h. Included only by NEON
// kernel files; everything here has internal linkage. A register holds 4 floats, so the reference's
// 16-lane vectors are four registers (lanes 0..3, 4..7, 8..11, 12..15) and its reduce_add_16 tree
// starts with vertical adds.
//
// Rounding: every operation is IEEE single (or double) with round to nearest even, as on x86: Linux
// leaves FPCR's FZ, FZ16 and DN clear, so subnormals are kept and fp16 conversions round like the
// reference's fp32_to_fp16 on every finite float. The one x86 operation without a NEON counterpart
// is AVX-512's scalef (scale_exp2 below).
#pragma once

#include <arm_neon.h>

#include <cstdint>
#include <cstring>

#include "kernels/arm/neon/gelu4.h"
#include "kernels/layer_norm_lanes.h"

namespace tern::kernels::neon {
namespace {

// 2^k for integer lanes k in [-126, 127].
inline float32x4_t pow2i(int32x4_t k) {
  return vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(k, vdupq_n_s32(127)), 23));
}

struct Lanes {
  using V = float32x4_t;
  using DV = float64x2_t;  // half of V's lanes as doubles
  static constexpr int64_t kWidth = 4;
  // Lanes [0, t); t >= kWidth is every lane.
  using Tail = int64_t;

  static Tail tail(int64_t n) { return n; }
  static bool full(Tail t) { return t >= kWidth; }

  static V load(const float* p) { return vld1q_f32(p); }
  static void store(float* p, V v) { vst1q_f32(p, v); }
  // The first k floats at p, zeros after, and the store of the first k lanes; nothing past p + k
  // is read or written (the row may end at a page).
  static V load_n(const float* p, Tail k) {
    if (k >= kWidth) return vld1q_f32(p);
    float t[4] = {};
    std::memcpy(t, p, static_cast<size_t>(k) * sizeof(float));
    return vld1q_f32(t);
  }
  static void store_n(float* p, V v, Tail k) {
    if (k >= kWidth) {
      vst1q_f32(p, v);
      return;
    }
    float t[4];
    vst1q_f32(t, v);
    std::memcpy(p, t, static_cast<size_t>(k) * sizeof(float));
  }
  // Lanes [0, k) set, the others clear.
  static uint32x4_t mask(Tail k) {
    const uint32_t lane[4] = {0, 1, 2, 3};
    return vcltq_u32(vld1q_u32(lane), vdupq_n_u32(static_cast<uint32_t>(k < 4 ? k : 4)));
  }
  // load_n with `fill` in the lanes past k.
  static V load_n_or(const float* p, Tail k, V fill) {
    return k >= kWidth ? vld1q_f32(p) : vbslq_f32(mask(k), load_n(p, k), fill);
  }
  // v with the lanes past k cleared.
  static V keep_n(V v, Tail k) {
    return k >= kWidth ? v : vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(v), mask(k)));
  }
  // fp16 to float is exact (fcvtl).
  static V load_h(const uint16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
  static V load_h(const uint16_t* p, Tail k) {
    if (k >= kWidth) return load_h(p);
    uint16_t t[4] = {};
    std::memcpy(t, p, static_cast<size_t>(k) * sizeof(uint16_t));
    return load_h(t);
  }
  static V round_fp16(V v) { return vcvt_f32_f16(vcvt_f16_f32(v)); }

  static V zero() { return vdupq_n_f32(0.0f); }
  static V splat(float f) { return vdupq_n_f32(f); }
  static V add(V a, V b) { return vaddq_f32(a, b); }
  static V sub(V a, V b) { return vsubq_f32(a, b); }
  static V mul(V a, V b) { return vmulq_f32(a, b); }
  static V div(V a, V b) { return vdivq_f32(a, b); }
  // a * b + c and c - a * b, rounded once (x86's fmadd and fnmadd).
  static V fma(V a, V b, V c) { return vfmaq_f32(c, a, b); }
  static V fnma(V a, V b, V c) { return vfmsq_f32(c, a, b); }
  // fmaxnm: a quiet NaN operand loses to the other, as in std::fmax (which GCC compiles to the
  // same instruction on AArch64); +0 counts as above -0 in any order, so the order of a max is
  // free.
  static V max(V a, V b) { return vmaxnmq_f32(a, b); }
  static float hmax(V v) { return vmaxnmvq_f32(v); }
  static float sqrt(float f) { return vget_lane_f32(vsqrt_f32(vdup_n_f32(f)), 0); }
  static V gelu(V v, const float* table) { return gelu4(v, table); }

  // quant::reduce_add_16 of the 16 lanes in v[0..3]: lanes i + 8 to i (v2 + v0, v3 + v1), then
  // i + 4 to i, then (t0 + t2) + (t1 + t3).
  static float reduce_add_16(const V (&v)[4]) {
    const V t4 = vaddq_f32(vaddq_f32(v[3], v[1]), vaddq_f32(v[2], v[0]));
    const V t2 = vaddq_f32(t4, vextq_f32(t4, t4, 2));
    return vgetq_lane_f32(t2, 0) + vgetq_lane_f32(t2, 1);
  }

  // Lanes as doubles and back (each rounding once, to nearest even).
  static void widen(V v, DV (&d)[2]) {
    d[0] = vcvt_f64_f32(vget_low_f32(v));
    d[1] = vcvt_high_f64_f32(v);
  }
  static V narrow(const DV (&d)[2]) { return vcvt_high_f32_f64(vcvt_f32_f64(d[0]), d[1]); }
  static DV add(DV a, DV b) { return vaddq_f64(a, b); }

  // ggml_v_expf's last step (elementwise_lanes.h's v_expf): j * 2^n as _mm512_scalef_ps rounds
  // it, n an integer in [-192, 192], and its overflow, underflow and NaN lanes. Here it is
  // (j * 2^(n - n/2)) * 2^(n/2): both powers are normal floats, the first product is exact (j is
  // near 1), so the second is the only rounding, subnormal and overflowing results included.
  static V scale_exp2(V j, V n) {
    const V n_clamped = vminq_f32(vmaxq_f32(n, vdupq_n_f32(-192.0f)), vdupq_n_f32(192.0f));
    const int32x4_t ni = vcvtq_s32_f32(n_clamped);
    const int32x4_t half = vshrq_n_s32(ni, 1);  // floor(n / 2)
    const V scaled = vmulq_f32(vmulq_f32(j, pow2i(vsubq_s32(ni, half))), pow2i(half));
    // |n| > 192: 0 below, infinity above; a NaN n is the result itself.
    const V zero = vdupq_n_f32(0.0f);
    const V out_of_range = vbslq_f32(vcleq_f32(n, zero), zero, vdupq_n_f32(__builtin_inff()));
    const V e = vbslq_f32(vcagtq_f32(n, vdupq_n_f32(192.0f)), out_of_range, scaled);
    return vbslq_f32(vceqq_f32(n, n), e, n);
  }

  // RoPE (elementwise_lanes.h's rope): even lanes x0*c - x1*s, odd lanes x0*s + x1*c. The x1
  // products are rounded first and negated in the even lanes (exact), then the x0 products are
  // fused with them (x86's fmaddsub) or rounded apart and added (its mul, mul, addsub).
  static V x1_products(V xv, V cs) {
    const V x1sc = vmulq_f32(vtrn2q_f32(xv, xv), vrev64q_f32(cs));
    const uint32x4_t even_sign = vreinterpretq_u32_u64(vdupq_n_u64(0x80000000u));
    return vreinterpretq_f32_u32(veorq_u32(vreinterpretq_u32_f32(x1sc), even_sign));
  }
  static void rope4(float* v, const float* cs) {
    for (int h = 0; h < 2; ++h) {
      const V xv = vld1q_f32(v + 4 * h), c = vld1q_f32(cs + 4 * h);
      vst1q_f32(v + 4 * h, vfmaq_f32(x1_products(xv, c), vtrn1q_f32(xv, xv), c));
    }
  }
  static void rope1(float* v, const float* cs) {
    const float32x2_t xv = vld1_f32(v), c = vld1_f32(cs);
    const float32x2_t x0cs = vmul_f32(vtrn1_f32(xv, xv), c);
    const float32x2_t x1sc = vmul_f32(vtrn2_f32(xv, xv), vrev64_f32(c));
    const uint32x2_t even_sign = vreinterpret_u32_u64(vdup_n_u64(0x80000000u));
    vst1_f32(v,
             vadd_f32(x0cs, vreinterpret_f32_u32(veor_u32(vreinterpret_u32_f32(x1sc), even_sign))));
  }

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
}  // namespace tern::kernels::neon

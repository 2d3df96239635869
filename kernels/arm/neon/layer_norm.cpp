// LayerNorm, residual add + LayerNorm and LayerNorm + GELU + residual add with NEON, bit-identical
// to scalar::layer_norm, scalar::add_layer_norm and scalar::layer_norm_gelu_add (llama.cpp's norm,
// mul and add ops, and its gelu).
//
// Theory of operation: as in kernels/x86/avx512/layer_norm.cpp, an argument about the numbers
// only. The reference's double sums are taken 64 floats at a time in two-lane double vectors
// wherever chunk_sum_is_exact (kernels/exact_chunk.h) says no add of the reference's one-at-a-time
// chain can round; other chunks, and the elements that do not fill a chunk, are added one at a
// time. The element-wise steps are the reference's, four lanes at a time, the last n % 4 elements
// in a zero-padded vector; the fused kernel applies GELU (gelu4.h) and the residual add before
// each store.
#include <arm_neon.h>

#include <cstdint>

#include "kernels/arm/neon/gelu4.h"
#include "kernels/arm/neon/neon.h"
#include "kernels/exact_chunk.h"

namespace tern::kernels::neon {
namespace {

constexpr int kVecs = 16;
constexpr int64_t kChunk = 4 * kVecs;

// s + d[0][0] + ... + d[kVecs - 1][3] rounded as the reference's one-at-a-time double adds.
// kNonNegative: the elements are squares, so sum |d| is their sum.
template <bool kNonNegative>
double add_chunk(double s, const float32x4_t (&d)[kVecs]) {
  const uint32x4_t abs_mask = vdupq_n_u32(0x7fffffff);
  const uint32x4_t exp_mask = vdupq_n_u32(0x7f800000);
  const uint32x4_t min_exp = vdupq_n_u32(0x00800000);  // subnormals: the step of exponent 1
  uint32x4_t e = exp_mask;
  float64x2_t sum = vdupq_n_f64(0.0);
  float32x4_t abs_sum = vdupq_n_f32(0.0f);
  for (const float32x4_t& v : d) {
    const uint32x4_t a = vandq_u32(vreinterpretq_u32_f32(v), abs_mask);
    // The exponent field (at least 1) of a nonzero element; 255 for a zero, which imposes nothing.
    const uint32x4_t field = vmaxq_u32(vandq_u32(a, exp_mask), min_exp);
    e = vminq_u32(e, vorrq_u32(field, vandq_u32(vceqzq_u32(a), exp_mask)));
    sum = vaddq_f64(sum, vaddq_f64(vcvt_f64_f32(vget_low_f32(v)), vcvt_high_f64_f32(v)));
    if (!kNonNegative) abs_sum = vaddq_f32(abs_sum, vreinterpretq_f32_u32(a));
  }
  const auto e_min = static_cast<int>(vminvq_u32(e) >> 23);
  const double chunk = vaddvq_f64(sum);
  // An upper bound of sum |d|, enlarged by far more than its rounding error: the squares' double
  // lane sum, or a float sum of the magnitudes.
  const double bound = kNonNegative ? chunk * (1.0 + 0x1p-40)
                                    : static_cast<double>(vaddvq_f32(abs_sum)) * (1.0 + 0x1p-16);
  if (chunk_sum_is_exact(s, e_min, bound)) return s + chunk;

  float f[kChunk];
  for (int j = 0; j < kVecs; ++j) vst1q_f32(f + 4 * j, d[j]);
  for (const float v : f) s += static_cast<double>(v);
  return s;
}

// Lanes [0, k) of p (1 <= k <= 4), zeros above: the row's last elements without reading past it.
float32x4_t load_lanes(const float* p, int64_t k) {
  if (k == 4) return vld1q_f32(p);
  float t[4] = {};
  for (int64_t j = 0; j < k; ++j) t[j] = p[j];
  return vld1q_f32(t);
}

void store_lanes(float* p, float32x4_t v, int64_t k) {
  if (k == 4) {
    vst1q_f32(p, v);
    return;
  }
  float t[4];
  vst1q_f32(t, v);
  for (int64_t j = 0; j < k; ++j) p[j] = t[j];
}

// The reference's normalise: the sum of squares of x - mean, then the element-wise steps; y gets
// finish(v, i, k) of the results v of elements i.. (k lanes valid). y may be x.
template <class Finish>
void normalise(const float* x, double sum, const float* w, const float* b, float* y, int64_t n,
               float eps, Finish finish) {
  const auto nd = static_cast<double>(n);
  const auto mean = static_cast<float>(sum / nd);
  const float32x4_t vmean = vdupq_n_f32(mean);
  double sum2 = 0.0;
  int64_t i = 0;
  for (; i + kChunk <= n; i += kChunk) {
    float32x4_t sq[kVecs];
    for (int j = 0; j < kVecs; ++j) {
      const float32x4_t v = vsubq_f32(vld1q_f32(x + i + 4 * j), vmean);
      sq[j] = vmulq_f32(v, v);
    }
    sum2 = add_chunk<true>(sum2, sq);
  }
  for (; i < n; ++i) {
    const float v = x[i] - mean;
    sum2 += static_cast<double>(v * v);
  }
  const auto var = static_cast<float>(sum2 / nd);
  const float32x4_t vscale = vdupq_n_f32(1.0f / vget_lane_f32(vsqrt_f32(vdup_n_f32(var + eps)), 0));
  const auto step = [&](int64_t at, int64_t k) {
    float32x4_t v = vmulq_f32(vsubq_f32(load_lanes(x + at, k), vmean), vscale);
    if (w != nullptr) v = vmulq_f32(v, load_lanes(w + at, k));
    if (b != nullptr) v = vaddq_f32(v, load_lanes(b + at, k));
    store_lanes(y + at, finish(v, at, k), k);
  };
  for (i = 0; i + 4 <= n; i += 4) step(i, 4);
  if (i < n) step(i, n - i);
}

void normalise(const float* x, double sum, const float* w, const float* b, float* y, int64_t n,
               float eps) {
  normalise(x, sum, w, b, y, n, eps, [](float32x4_t v, int64_t, int64_t) { return v; });
}

double row_sum(const float* x, int64_t n) {
  double sum = 0.0;
  int64_t i = 0;
  for (; i + kChunk <= n; i += kChunk) {
    float32x4_t d[kVecs];
    for (int j = 0; j < kVecs; ++j) d[j] = vld1q_f32(x + i + 4 * j);
    sum = add_chunk<false>(sum, d);
  }
  for (; i < n; ++i) sum += static_cast<double>(x[i]);
  return sum;
}

}  // namespace

void layer_norm(const float* x, const float* w, const float* b, float* y, int64_t n, float eps) {
  normalise(x, row_sum(x, n), w, b, y, n, eps);
}

void add_layer_norm(const float* x, const float* r, float* sum, const float* w, const float* b,
                    float* y, int64_t n, float eps) {
  double total = 0.0;
  int64_t i = 0;
  for (; i + kChunk <= n; i += kChunk) {
    float32x4_t d[kVecs];
    for (int j = 0; j < kVecs; ++j) {
      d[j] = vaddq_f32(vld1q_f32(x + i + 4 * j), vld1q_f32(r + i + 4 * j));
      vst1q_f32(sum + i + 4 * j, d[j]);
    }
    total = add_chunk<false>(total, d);
  }
  for (; i < n; ++i) {
    const float s = x[i] + r[i];
    sum[i] = s;
    total += static_cast<double>(s);
  }
  normalise(sum, total, w, b, y, n, eps);
}

void layer_norm_gelu_add(const float* x, const float* w, const float* b, const float* residual,
                         float* out, int64_t n, float eps) {
  const float* table = gelu_fp16_table();
  normalise(x, row_sum(x, n), w, b, out, n, eps, [=](float32x4_t v, int64_t i, int64_t k) {
    return vaddq_f32(load_lanes(residual + i, k), gelu4(v, table));
  });
}

}  // namespace tern::kernels::neon

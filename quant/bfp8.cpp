// BFP8 rows (tern-internal, id 200): block floating point with 8-bit mantissas and a shared
// power-of-two exponent, its quantizer, and the BFP8 x BFP8 dot. Layout in kquants.h.
// It has no llama.cpp counterpart; the rules here are the specification kernels must meet.
#include <cmath>
#include <cstring>

#include "quant/formats.h"
#include "quant/kquants.h"

namespace tern::quant {

namespace {

constexpr int kBfp8MaxMantissa = 127;
constexpr int kBfp8MinExponent = -128;
constexpr int kBfp8MaxExponent = 127;
// The exponent finite inputs reach when amax >= 127.5 * 2^121. There, 64 * 2^122 = 2^128 would
// overflow f32, so mantissas are held to 63: the one place a finite input saturates (by less than
// one part in 127 of FLT_MAX).
constexpr int kBfp8TopFiniteExponent = 122;
constexpr int kBfp8TopFiniteMantissa = 63;

// Round to nearest, ties to even, for |v| <= 2^22 (the magic-number method of nearest_int, which
// does not depend on the rounding-mode register).
int32_t round_half_even(float v) {
  return detail::nearest_int(v);
}

// The smallest exponent e at which every value of the block fits: round(amax / 2^e) <= 127.
// Rounding is monotonic, so the block's largest magnitude decides. amax / 2^e must stay below
// 127.5 (which would round to the even 128). With amax = f * 2^k, f in [0.5, 1), e = k - 7 puts
// amax / 2^e = 128 f in [64, 128); that fits unless 128 f >= 127.5, and e - 1 never fits
// (256 f >= 128). Finite amax gives e <= 122; e is clamped at -128 for amax < 2^-122 (mantissas
// then lose low bits, but still never saturate).
int bfp8_exponent(float amax) {
  int k = 0;
  const float f = std::frexp(amax, &k);
  int e = k - 7;
  if (128.0f * f >= 127.5f) ++e;
  return e < kBfp8MinExponent ? kBfp8MinExponent : e;
}

}  // namespace

void dequantize_row_bfp8(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockBfp8*>(src);
  for (int64_t b = 0; b < n / kQkBfp8; ++b) {
    // m * 2^e is exact for every block the quantizer writes from finite inputs (|m| <= 127 needs
    // 7 bits, e >= -128 keeps it above the f32 subnormal step, and e <= 121, or 122 with
    // |m| <= 63, keeps it below 2^128). Other blocks can overflow to infinity.
    for (int j = 0; j < kQkBfp8; ++j)
      dst[b * kQkBfp8 + j] = std::ldexp(static_cast<float>(blocks[b].m[j]), blocks[b].e);
  }
}

// Mantissas are x / 2^e rounded to nearest, ties to even; the scaling is exact (a power of two)
// except where x / 2^e falls below 2^-126, far under the 0.5 rounding threshold.
// Non-finite inputs are outside the contract but deterministic: NaN becomes 0; a block holding
// +-inf gets e = 127 and those elements m = +-127, which decode back to +-inf (everything else in
// the block then rounds to 0 or a few units of 2^127).
void quantize_row_bfp8(const float* src, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockBfp8*>(dst);
  for (int64_t b = 0; b < n / kQkBfp8; ++b) {
    const float* x = src + b * kQkBfp8;
    BlockBfp8& y = blocks[b];
    float amax = 0.0f;
    for (int j = 0; j < kQkBfp8; ++j) {
      const float a = std::fabs(x[j]);
      if (a > amax) amax = a;  // NaN never compares greater
    }
    if (amax == 0.0f) {
      y.e = 0;
      std::memset(y.m, 0, sizeof y.m);
      continue;
    }
    const int e = std::isinf(amax) ? kBfp8MaxExponent : bfp8_exponent(amax);
    y.e = static_cast<int8_t>(e);
    for (int j = 0; j < kQkBfp8; ++j) {
      int32_t m = 0;
      if (std::isinf(x[j])) {
        m = x[j] > 0.0f ? kBfp8MaxMantissa : -kBfp8MaxMantissa;
      } else if (!std::isnan(x[j])) {
        m = round_half_even(std::ldexp(x[j], -e));
        if (e == kBfp8TopFiniteExponent) {
          m = m > kBfp8TopFiniteMantissa    ? kBfp8TopFiniteMantissa
              : m < -kBfp8TopFiniteMantissa ? -kBfp8TopFiniteMantissa
                                            : m;
        }
      }
      y.m[j] = static_cast<int8_t>(m);
    }
  }
}

// Exact integer dot per block (|sum| <= 32 * 127^2 < 2^19, so its f32 conversion is exact), then
// one correctly rounded scaling per block, term_b = ldexp(sum_b, e_w + e_a), exact unless it
// underflows below 2^-126 or overflows. The terms are summed in eight f32 lanes, block b going to
// lane b % 8 (the order an 8-wide kernel that handles eight blocks per step produces), and the
// lanes are reduced with sum_dot_lanes. So the only roundings are the lane additions, the tree,
// and the scaling's underflow.
float vec_dot_bfp8_bfp8(int64_t n, const void* weights, const void* activations) {
  const auto* w = static_cast<const BlockBfp8*>(weights);
  const auto* a = static_cast<const BlockBfp8*>(activations);
  float acc[kDotLanes] = {};
  for (int64_t b = 0; b < n / kQkBfp8; ++b) {
    int32_t sum = 0;
    for (int j = 0; j < kQkBfp8; ++j) sum += int32_t{w[b].m[j]} * int32_t{a[b].m[j]};
    const float term = std::ldexp(static_cast<float>(sum), int{w[b].e} + int{a[b].e});
    acc[b % kDotLanes] += term;
  }
  return sum_dot_lanes(acc);
}

}  // namespace tern::quant

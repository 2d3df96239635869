// Activation rows to Q8_0 and Q8_1 (the from_float of Q4_0, Q5_0, Q8_0, MXFP4 and of Q5_1),
// written once over a policy that each ISA's quantize_q8_0.cpp supplies (x86/avx2, x86/avx512,
// arm/neon); the same bytes as quant::quantize_row_q8_0_activation and quant::quantize_row_q8_1.
// Included only by per-ISA kernel files; everything here has internal linkage.
//
// The reference's steps per block of 32: amax = the largest |x| (a NaN never wins), id = 127 /
// amax (0 for an all-zero block), q = x * id converted to int32 to nearest with ties to even
// (INT32_MIN when out of range or NaN, as x86's cvtps2dq), the wrapping sum of q, q saturated to
// int8, d = amax / 127 stored as fp16 (never NaN, so the ISA's round-to-nearest-even conversion
// is the reference's); Q8_1 adds s = fp16(d * sum).
//
// The policy Q: V, kWidth, load, splat, mul, abs, max(a, b) (b when a is NaN), hmax,
// round_pack(const V (&v)[32 / kWidth], int8_t* qs) (the conversion, the saturated codes to qs,
// their unsaturated wrapping sum returned) and to_fp16(float).
#pragma once

#include <cstdint>

#include "quant/blocks.h"
#include "quant/q5.h"

namespace tern::kernels {
namespace {
namespace q8_0_lanes {

// One block: its codes to qs, their sum to `sum`, d returned in f32.
template <class Q>
float quantize_block(const float* x, int8_t* qs, int32_t& sum) {
  using V = typename Q::V;
  constexpr int kR = kQk8_0 / Q::kWidth;
  V v[kR];
  V m = Q::splat(0.0f);
  for (int r = 0; r < kR; ++r) {
    v[r] = Q::load(x + Q::kWidth * r);
    m = Q::max(Q::abs(v[r]), m);
  }
  const float amax = Q::hmax(m);
  const V id = Q::splat(amax != 0.0f ? 127.0f / amax : 0.0f);
  for (auto& r : v) r = Q::mul(r, id);
  sum = Q::round_pack(v, qs);
  return amax / 127.0f;
}

template <class Q>
void quantize_row_q8_0(const float* src, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockQ8_0*>(dst);
  for (int64_t b = 0; b < n / kQk8_0; ++b) {
    int32_t sum = 0;
    blocks[b].d = Q::to_fp16(quantize_block<Q>(src + b * kQk8_0, blocks[b].qs, sum));
  }
}

template <class Q>
void quantize_row_q8_1(const float* src, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockQ8_1*>(dst);
  for (int64_t b = 0; b < n / kQk8_1; ++b) {
    int32_t sum = 0;
    const float d = quantize_block<Q>(src + b * kQk8_1, blocks[b].qs, sum);
    blocks[b].d = Q::to_fp16(d);
    blocks[b].s = Q::to_fp16(d * static_cast<float>(sum));
  }
}

}  // namespace q8_0_lanes
}  // namespace
}  // namespace tern::kernels

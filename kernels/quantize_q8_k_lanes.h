// Activation rows to Q8_K (the from_float of TQ2_0, TQ1_0 and the K-quants), written once over a
// policy that each ISA's quantize_q8_k.cpp supplies (x86/avx512, arm/neon); the same bytes as
// quant::quantize_row_q8_K. Included only by per-ISA kernel files; everything here has internal
// linkage.
//
// The reference's steps per block of 256: the largest magnitude (strict > over |x|, so a NaN is
// never picked), the scale from the first element of that magnitude (signed, so it maps to exactly
// -127), q = nearest_int(iscale * x) clamped at 127 and stored as int8, bsums of 16 stored values,
// d = 1 / iscale; an all-zero block is zeros with d = 0.
//
// The policy Q: largest_magnitude(x) (over 256 floats; a NaN must never win, signalling ones
// included), first_of_magnitude(x, amax) (the first x[j] with |x[j]| == amax, its value), and
// quantize16(x, iscale, qs) (16 values to qs by the reference's float steps: one multiply, then
// + 1.5 * 2^23 and the low mantissa bits, bit-exact even for inf or NaN products; returns their
// sum).
#pragma once

#include <cstdint>
#include <cstring>

#include "quant/blocks.h"

namespace tern::kernels {
namespace {
namespace q8_k_lanes {

template <class Q>
void quantize_row_q8_K(const float* src, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockQ8_K*>(dst);
  for (int64_t b = 0; b < n / kQkK; ++b) {
    const float* x = src + b * kQkK;
    BlockQ8_K& y = blocks[b];
    const float amax = Q::largest_magnitude(x);
    if (amax == 0.0f) {
      y.d = 0.0f;
      std::memset(y.qs, 0, sizeof y.qs);
      std::memset(y.bsums, 0, sizeof y.bsums);
      continue;
    }
    const float iscale = -127.0f / Q::first_of_magnitude(x, amax);
    for (int g = 0; g < kQkK / 16; ++g)
      y.bsums[g] = Q::quantize16(x + 16 * g, iscale, y.qs + 16 * g);
    y.d = 1.0f / iscale;
  }
}

}  // namespace q8_k_lanes
}  // namespace
}  // namespace tern::kernels

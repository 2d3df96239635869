// Q8_0 rows: the weight quantizer, the (differently rounding) activation quantizer, and the
// Q8_0 x Q8_0 dot. Block layout in blocks.h; SIMD versions belong in kernels/.
#include <cmath>

#include "quant/blocks.h"
#include "quant/formats.h"
#include "quant/fp16.h"

namespace tern::quant {

namespace {

// Saturating int32 -> int8, as the packs_epi32/packs_epi16 pair of the x86 quantizer does.
int8_t saturate_to_i8(int32_t v) {
  return static_cast<int8_t>(v < -128 ? -128 : (v > 127 ? 127 : v));
}

}  // namespace

void dequantize_row_q8_0(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockQ8_0*>(src);
  for (int64_t b = 0; b < n / kQk8_0; ++b) {
    const float d = fp16_to_fp32(blocks[b].d);
    for (int64_t j = 0; j < kQk8_0; ++j)
      dst[b * kQk8_0 + j] = static_cast<float>(blocks[b].qs[j]) * d;
  }
}

// What llama-quantize writes (quantize_row_q8_0_ref): scale by the reciprocal of d and round
// half away from zero.
void quantize_row_q8_0(const float* src, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockQ8_0*>(dst);
  for (int64_t b = 0; b < n / kQk8_0; ++b) {
    const float* x = src + b * kQk8_0;
    float amax = 0.0f;
    for (int64_t j = 0; j < kQk8_0; ++j) {
      const float a = std::fabs(x[j]);
      amax = amax > a ? amax : a;
    }
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    blocks[b].d = fp32_to_fp16(d);
    for (int64_t j = 0; j < kQk8_0; ++j) {
      blocks[b].qs[j] = static_cast<int8_t>(truncate_to_i32(std::round(x[j] * id)));
    }
  }
}

// What llama.cpp's x86 CPU backend uses for activations (quantize_row_q8_0 and quantize_row_q8_1,
// AVX/AVX2 branch): the multiplier is 127/amax rather than 1/(amax/127), and rounding is the SSE
// default, to nearest with ties to even. Both differences can change a code by one relative to
// the weight quantizer, so the two must not be interchanged. Returns d = amax / 127 in f32 (Q8_1
// derives its sum from it) and the sum of the codes before saturation (as cvtps_epi32 leaves
// them), in wrapping 32-bit arithmetic.
float quantize_block_q8_activation(const float* x, int8_t* qs, int32_t& sum) {
  float amax = 0.0f;
  for (int64_t j = 0; j < kQk8_0; ++j) {
    const float a = std::fabs(x[j]);
    amax = a > amax ? a : amax;  // a NaN never wins, whatever its position
  }
  const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
  uint32_t total = 0;
  for (int64_t j = 0; j < kQk8_0; ++j) {
    // nearbyint rounds ties to even in the default floating-point environment.
    const int32_t q = truncate_to_i32(std::nearbyint(x[j] * id));
    total += static_cast<uint32_t>(q);
    qs[j] = saturate_to_i8(q);
  }
  sum = static_cast<int32_t>(total);
  return amax / 127.0f;
}

void quantize_row_q8_0_activation(const float* src, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockQ8_0*>(dst);
  int32_t sum = 0;
  for (int64_t b = 0; b < n / kQk8_0; ++b)
    blocks[b].d = fp32_to_fp16(quantize_block_q8_activation(src + b * kQk8_0, blocks[b].qs, sum));
}

// The integer products of each block are exact; scaling follows the AVX2 kernel: per lane,
// acc = fma(d_w * d_a, lane_sum, acc), then sum_dot_lanes.
float vec_dot_q8_0_q8_0(int64_t n, const void* weights, const void* activations) {
  const auto* w = static_cast<const BlockQ8_0*>(weights);
  const auto* a = static_cast<const BlockQ8_0*>(activations);
  float acc[kDotLanes] = {};
  for (int64_t b = 0; b < n / kQk8_0; ++b) {
    const float d = fp16_to_fp32(w[b].d) * fp16_to_fp32(a[b].d);
    for (int lane = 0; lane < kDotLanes; ++lane) {
      int32_t sum = 0;
      for (int k = 4 * lane; k < 4 * lane + 4; ++k)
        sum += int32_t{w[b].qs[k]} * int32_t{a[b].qs[k]};
      acc[lane] = std::fma(d, static_cast<float>(sum), acc[lane]);
    }
  }
  return sum_dot_lanes(acc);
}

}  // namespace tern::quant

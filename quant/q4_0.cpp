// Q4_0 rows: the weight quantizer (llama-quantize's, without an importance matrix) and the
// Q4_0 x Q8_0 dot. Block layout in blocks.h; SIMD versions belong in kernels/.
#include <algorithm>
#include <cmath>

#include "quant/blocks.h"
#include "quant/formats.h"
#include "quant/fp16.h"

namespace tern::quant {

namespace {

int32_t q4_0_code(const BlockQ4_0& block, int64_t j) {
  const uint8_t byte = block.qs[j % (kQk4_0 / 2)];
  return (j < kQk4_0 / 2 ? (byte & 0x0f) : (byte >> 4)) - 8;
}

// The quantizer's code for x * id: truncate x * id + 8.5 (not round) through an int8 as the C
// reference does, and clip the one value that can reach 16 (the negative-of-max extreme).
uint8_t q4_0_encode(float scaled) {
  const auto truncated = static_cast<int8_t>(truncate_to_i32(scaled + 8.5f));
  return static_cast<uint8_t>(std::min<int32_t>(15, truncated));
}

}  // namespace

void dequantize_row_q4_0(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockQ4_0*>(src);
  for (int64_t b = 0; b < n / kQk4_0; ++b) {
    const float d = fp16_to_fp32(blocks[b].d);
    for (int64_t j = 0; j < kQk4_0; ++j) {
      dst[b * kQk4_0 + j] = static_cast<float>(q4_0_code(blocks[b], j)) * d;
    }
  }
}

// quantize_row_q4_0_ref: the signed value of largest magnitude maps to code 0 (= -8 d), so the
// scale is d = max / -8 and the opposite extreme can only reach +7 d.
void quantize_row_q4_0(const float* src, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockQ4_0*>(dst);
  for (int64_t b = 0; b < n / kQk4_0; ++b) {
    const float* x = src + b * kQk4_0;
    const float d = signed_absmax(x, kQk4_0) / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    blocks[b].d = fp32_to_fp16(d);
    for (int64_t j = 0; j < kQk4_0 / 2; ++j) {
      const uint8_t lo = q4_0_encode(x[j] * id);
      const uint8_t hi = q4_0_encode(x[j + kQk4_0 / 2] * id);
      blocks[b].qs[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

// Exact integer products per block, scaled like the AVX2 kernel (see sum_dot_lanes): the nibbles
// are unpacked into element order 0..31 and lane l takes elements 4l..4l+3.
float vec_dot_q4_0_q8_0(int64_t n, const void* weights, const void* activations) {
  const auto* w = static_cast<const BlockQ4_0*>(weights);
  const auto* a = static_cast<const BlockQ8_0*>(activations);
  float acc[kDotLanes] = {};
  for (int64_t b = 0; b < n / kQk4_0; ++b) {
    const float d = fp16_to_fp32(w[b].d) * fp16_to_fp32(a[b].d);
    for (int lane = 0; lane < kDotLanes; ++lane) {
      int32_t sum = 0;
      for (int k = 4 * lane; k < 4 * lane + 4; ++k) sum += q4_0_code(w[b], k) * int32_t{a[b].qs[k]};
      acc[lane] = std::fma(d, static_cast<float>(sum), acc[lane]);
    }
  }
  return sum_dot_lanes(acc);
}

// On AVX2 machines llama.cpp repacks every Q4_0 matrix whose row count is a multiple of 8 into
// 8-row interleaved blocks (block_q4_0x8) at load time and multiplies it with
// ggml_gemv_q4_0_8x8_q8_0 / ggml_gemm_q4_0_8x8_q8_0 instead of vec_dot. Those keep one f32
// accumulator per output and add each block's exact integer dot in block order:
// acc = fma(float(block sum), d_w * d_a, acc). (The product of two halves is exact in f32.)
float vec_dot_q4_0_q8_0_repacked(int64_t n, const void* weights, const void* activations) {
  const auto* w = static_cast<const BlockQ4_0*>(weights);
  const auto* a = static_cast<const BlockQ8_0*>(activations);
  float acc = 0.0f;
  for (int64_t b = 0; b < n / kQk4_0; ++b) {
    int32_t sum = 0;
    for (int k = 0; k < kQk4_0; ++k) sum += q4_0_code(w[b], k) * int32_t{a[b].qs[k]};
    acc = std::fma(static_cast<float>(sum), fp16_to_fp32(w[b].d) * fp16_to_fp32(a[b].d), acc);
  }
  return acc;
}

}  // namespace tern::quant

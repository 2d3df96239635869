// Q5_1 rows: the weight quantizer (llama-quantize's, without an importance matrix), dequantize,
// and the Q5_1 x Q8_1 dot in llama.cpp's x86 order. Block layout in q5.h.
#include <cfloat>
#include <cmath>

#include "quant/formats.h"
#include "quant/fp16.h"
#include "quant/q5.h"

namespace tern::quant {

// dequantize_row_q5_1: code * d, rounded, then + m (ggml-base has no FMA to contract into).
void dequantize_row_q5_1(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockQ5_1*>(src);
  for (int64_t b = 0; b < n / kQk5_1; ++b) {
    const float d = fp16_to_fp32(blocks[b].d);
    const float m = fp16_to_fp32(blocks[b].m);
    for (int64_t j = 0; j < kQk5_1; ++j) {
      const float scaled = static_cast<float>(q5_code(blocks[b].qs, blocks[b].qh, j)) * d;
      dst[b * kQk5_1 + j] = scaled + m;
    }
  }
}

// quantize_row_q5_1_ref: min and max of the block (strict comparisons from FLT_MAX / -FLT_MAX),
// d = (max - min) / 31, and codes (x - min) / d + 0.5 truncated to a byte, without a clip.
void quantize_row_q5_1(const float* src, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockQ5_1*>(dst);
  for (int64_t b = 0; b < n / kQk5_1; ++b) {
    const float* x = src + b * kQk5_1;
    float min = FLT_MAX;
    float max = -FLT_MAX;
    for (int64_t j = 0; j < kQk5_1; ++j) {
      if (x[j] < min) min = x[j];
      if (x[j] > max) max = x[j];
    }
    const float d = (max - min) / 31.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    blocks[b].d = fp32_to_fp16(d);
    blocks[b].m = fp32_to_fp16(min);
    uint8_t codes[kQk5_1];
    for (int64_t j = 0; j < kQk5_1; ++j) {
      const float shifted = x[j] - min;
      codes[j] = static_cast<uint8_t>(truncate_to_i32(shifted * id + 0.5f));
    }
    pack_q5_codes(codes, blocks[b].qs, blocks[b].qh);
  }
}

// ggml_vec_dot_q5_1_q8_1, AVX2 branch (also what AVX-512 builds run; tinyBLAS has no Q5_1):
// lane l of each block holds the exact products code * q of elements 4l..4l+3 (codes 0..31),
// acc[l] = fma(lane, d_w * d_a, acc[l]); the minimum's part is summed apart in scalar,
// summs = fma(m, s_a, summs) (GCC contracts the kernel's multiply and add); the result is
// sum_dot_lanes(acc) + summs.
float vec_dot_q5_1_q8_1(int64_t n, const void* weights, const void* activations) {
  const auto* w = static_cast<const BlockQ5_1*>(weights);
  const auto* a = static_cast<const BlockQ8_1*>(activations);
  float acc[kDotLanes] = {};
  float summs = 0.0f;
  for (int64_t b = 0; b < n / kQk5_1; ++b) {
    summs = std::fma(fp16_to_fp32(w[b].m), fp16_to_fp32(a[b].s), summs);
    const float d = fp16_to_fp32(w[b].d) * fp16_to_fp32(a[b].d);
    for (int lane = 0; lane < kDotLanes; ++lane) {
      int32_t sum = 0;
      for (int k = 4 * lane; k < 4 * lane + 4; ++k)
        sum += q5_code(w[b].qs, w[b].qh, k) * int32_t{a[b].qs[k]};
      acc[lane] = std::fma(static_cast<float>(sum), d, acc[lane]);
    }
  }
  return sum_dot_lanes(acc) + summs;
}

}  // namespace tern::quant

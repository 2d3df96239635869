// Q5_0 rows: the weight quantizer (llama-quantize's, without an importance matrix), dequantize,
// and the Q5_0 x Q8_0 dot in llama.cpp's x86 order. Block layout in q5.h.
#include <algorithm>
#include <cmath>

#include "quant/formats.h"
#include "quant/fp16.h"
#include "quant/q5.h"

namespace tern::quant {

void dequantize_row_q5_0(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockQ5_0*>(src);
  for (int64_t b = 0; b < n / kQk5_0; ++b) {
    const float d = fp16_to_fp32(blocks[b].d);
    for (int64_t j = 0; j < kQk5_0; ++j)
      dst[b * kQk5_0 + j] = static_cast<float>(q5_code(blocks[b].qs, blocks[b].qh, j) - 16) * d;
  }
}

// quantize_row_q5_0_ref: as Q4_0 with 16 steps. The signed value of largest magnitude (the first
// on a tie) maps to code 0 (= -16 d), so d = max / -16; codes are x / d + 16.5 truncated through
// an int8, clipped to 31.
void quantize_row_q5_0(const float* src, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockQ5_0*>(dst);
  for (int64_t b = 0; b < n / kQk5_0; ++b) {
    const float* x = src + b * kQk5_0;
    const float d = signed_absmax(x, kQk5_0) / -16.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    blocks[b].d = fp32_to_fp16(d);
    uint8_t codes[kQk5_0];
    for (int64_t j = 0; j < kQk5_0; ++j) {
      const auto truncated = static_cast<int8_t>(truncate_to_i32(x[j] * id + 16.5f));
      codes[j] = static_cast<uint8_t>(std::min<int32_t>(31, truncated));
    }
    pack_q5_codes(codes, blocks[b].qs, blocks[b].qh);
  }
}

// ggml_vec_dot_q5_0_q8_0, AVX2 branch (also what AVX-512 builds run, and what llamafile's
// tinyBLAS computes for batches): the codes become int8 code - 16, lane l of each block holds the
// exact products of elements 4l..4l+3, acc[l] = fma(d_w * d_a, lane, acc[l]), then
// sum_dot_lanes. (Activations from from_float never hold -128, where the kernel's sign trick
// would wrap.)
float vec_dot_q5_0_q8_0(int64_t n, const void* weights, const void* activations) {
  const auto* w = static_cast<const BlockQ5_0*>(weights);
  const auto* a = static_cast<const BlockQ8_0*>(activations);
  float acc[kDotLanes] = {};
  for (int64_t b = 0; b < n / kQk5_0; ++b) {
    const float d = fp16_to_fp32(w[b].d) * fp16_to_fp32(a[b].d);
    for (int lane = 0; lane < kDotLanes; ++lane) {
      int32_t sum = 0;
      for (int k = 4 * lane; k < 4 * lane + 4; ++k)
        sum += (q5_code(w[b].qs, w[b].qh, k) - 16) * int32_t{a[b].qs[k]};
      acc[lane] = std::fma(d, static_cast<float>(sum), acc[lane]);
    }
  }
  return sum_dot_lanes(acc);
}

}  // namespace tern::quant

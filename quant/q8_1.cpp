// Q8_1 rows: the activation format of Q5_1 (llama.cpp's x86 from_float) and its dequantize.
// Never a weight in files tern reads or writes. Block layout in q5.h.
#include "quant/formats.h"
#include "quant/fp16.h"
#include "quant/q5.h"

namespace tern::quant {

void dequantize_row_q8_1(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockQ8_1*>(src);
  for (int64_t b = 0; b < n / kQk8_1; ++b) {
    const float d = fp16_to_fp32(blocks[b].d);
    for (int64_t j = 0; j < kQk8_1; ++j)
      dst[b * kQk8_1 + j] = static_cast<float>(blocks[b].qs[j]) * d;
  }
}

// quantize_row_q8_1, AVX2 branch: the codes and d of Q8_0's activation quantizer, and
// s = f16(d * sum of the codes) with the unrounded f32 d.
void quantize_row_q8_1(const float* src, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockQ8_1*>(dst);
  for (int64_t b = 0; b < n / kQk8_1; ++b) {
    int32_t sum = 0;
    const float d = quantize_block_q8_activation(src + b * kQk8_1, blocks[b].qs, sum);
    blocks[b].d = fp32_to_fp16(d);
    blocks[b].s = fp32_to_fp16(d * static_cast<float>(sum));
  }
}

}  // namespace tern::quant

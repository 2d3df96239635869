// TQ2_0 rows: ternary weights as 2-bit codes, their quantizer and the TQ2_0 x Q8_K dot.
// Block layout in blocks.h; SIMD versions belong in kernels/.
#include <cmath>

#include "quant/blocks.h"
#include "quant/formats.h"
#include "quant/fp16.h"

namespace tern::quant {

namespace {

// Code of element e (0..255): byte 32 * (e / 128) + e % 32, bit pair (e / 32) % 4.
int32_t tq2_code(const BlockTQ2_0& block, int64_t e) {
  const uint8_t byte = block.qs[32 * (e / 128) + e % 32];
  return (byte >> (2 * ((e / 32) % 4))) & 3;
}

}  // namespace

void dequantize_row_tq2_0(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockTQ2_0*>(src);
  for (int64_t b = 0; b < n / kQkK; ++b) {
    const float d = fp16_to_fp32(blocks[b].d);
    for (int64_t e = 0; e < kQkK; ++e) {
      dst[b * kQkK + e] = static_cast<float>(tq2_code(blocks[b], e) - 1) * d;
    }
  }
}

// quantize_row_tq2_0_ref: d is the block's absolute maximum; codes are lround(x / d) + 1, masked
// to two bits as the reference does.
void quantize_row_tq2_0(const float* src, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockTQ2_0*>(dst);
  for (int64_t b = 0; b < n / kQkK; ++b) {
    const float* x = src + b * kQkK;
    float amax = 0.0f;
    for (int64_t j = 0; j < kQkK; ++j) {
      const float a = std::fabs(x[j]);
      amax = amax > a ? amax : a;
    }
    const float d = amax;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    blocks[b].d = fp32_to_fp16(d);
    for (int half = 0; half < 2; ++half) {
      for (int m = 0; m < 32; ++m) {
        uint32_t byte = 0;
        for (int pair = 0; pair < 4; ++pair) {
          const long code = std::lround(x[128 * half + 32 * pair + m] * id) + 1;
          byte |= (static_cast<uint32_t>(code) & 3u) << (2 * pair);
        }
        blocks[b].qs[32 * half + m] = static_cast<uint8_t>(byte);
      }
    }
  }
}

// Same lane structure as vec_dot_tq1_0_q8_K (see there): codes 0..3 times activations, minus the
// group sums, lane l covering offsets 4l..4l+3 of every group of 32, fma-accumulated per lane.
float vec_dot_tq2_0_q8_K(int64_t n, const void* weights, const void* activations) {
  const auto* w = static_cast<const BlockTQ2_0*>(weights);
  const auto* a = static_cast<const BlockQ8_K*>(activations);
  float acc[kDotLanes] = {};
  for (int64_t b = 0; b < n / kQkK; ++b) {
    const float d = a[b].d * fp16_to_fp32(w[b].d);
    for (int lane = 0; lane < kDotLanes; ++lane) {
      int32_t sum = -(int32_t{a[b].bsums[2 * lane]} + int32_t{a[b].bsums[2 * lane + 1]});
      for (int group = 0; group < kQkK / 32; ++group) {
        for (int k = 32 * group + 4 * lane; k < 32 * group + 4 * lane + 4; ++k) {
          sum += tq2_code(w[b], k) * int32_t{a[b].qs[k]};
        }
      }
      acc[lane] = std::fma(static_cast<float>(sum), d, acc[lane]);
    }
  }
  return sum_dot_lanes(acc);
}

}  // namespace tern::quant

// Q8_K rows: the activation format paired with the ternary weights. No weight quantizer and no
// dot of its own (the TQ dots consume it). Block layout in blocks.h.
#include <cmath>
#include <cstring>

#include "quant/blocks.h"
#include "quant/formats.h"

namespace tern::quant {

namespace {

// Round to nearest, ties to even, by adding 1.5 * 2^23: the sum's last mantissa bits are then the
// rounded integer (offset by 2^22). Valid for |v| < 2^22; llama.cpp's nearest_int does the same,
// and copying its exact method keeps the reference independent of the rounding-mode register.
int32_t nearest_int(float v) {
  const float biased = v + 12582912.0f;
  int32_t bits = 0;
  std::memcpy(&bits, &biased, sizeof bits);
  return (bits & 0x007fffff) - 0x00400000;
}

}  // namespace

void dequantize_row_q8_K(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockQ8_K*>(src);
  for (int64_t b = 0; b < n / kQkK; ++b) {
    for (int64_t j = 0; j < kQkK; ++j)
      dst[b * kQkK + j] = blocks[b].d * static_cast<float>(blocks[b].qs[j]);
  }
}

// quantize_row_q8_K_ref, which is also what the x86 CPU backend runs. The scale is derived from
// the signed extreme so that it maps to exactly -127 (never -128: maddubs-style kernels need the
// activations in -127..127), and d is stored as f32 1/iscale.
void quantize_row_q8_K(const float* src, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockQ8_K*>(dst);
  for (int64_t b = 0; b < n / kQkK; ++b) {
    const float* x = src + b * kQkK;
    BlockQ8_K& y = blocks[b];
    float max = 0.0f;
    float amax = 0.0f;
    for (int64_t j = 0; j < kQkK; ++j) {
      const float a = std::fabs(x[j]);
      if (a > amax) {
        amax = a;
        max = x[j];
      }
    }
    if (amax == 0.0f) {
      // llama.cpp leaves bsums unwritten here; zero is the only value consistent with qs.
      y.d = 0.0f;
      std::memset(y.qs, 0, sizeof y.qs);
      std::memset(y.bsums, 0, sizeof y.bsums);
      continue;
    }
    const float iscale = -127.0f / max;
    for (int64_t j = 0; j < kQkK; ++j) {
      const int32_t v = nearest_int(iscale * x[j]);
      y.qs[j] = static_cast<int8_t>(v < 127 ? v : 127);
    }
    for (int g = 0; g < kQkK / 16; ++g) {
      int32_t sum = 0;
      for (int j = 16 * g; j < 16 * g + 16; ++j) sum += y.qs[j];
      y.bsums[g] = static_cast<int16_t>(sum);
    }
    y.d = 1.0f / iscale;
  }
}

}  // namespace tern::quant

// I2_S (bitnet.cpp's ternary tensors): dequantize and quantize both code layouts, the size check,
// and the load-time conversion to TQ2_0. Layout notes in kquants.h and docs/QUANT_FORMATS.md.
// No dot product: tern never multiplies I2_S directly, the loader converts it to TQ2_0 first.
#include <array>
#include <cmath>
#include <cstring>

#include "quant/blocks.h"
#include "quant/fp16.h"
#include "quant/kquants.h"

namespace tern::quant {

namespace {

// bitnet.cpp's dequantize_row_i2_s maps the codes through {-1, 0, +1, 0}: code 3 is never written
// and decodes as 0 there (its kernels, which compute code * x - sum x, would treat it as +2).
constexpr float kI2sCodeValue[4] = {-1.0f, 0.0f, 1.0f, 0.0f};

// Group geometry: a group of g weights is g/4 bytes; byte k holds elements k + (g/4) s at bits
// 7-2s..6-2s for s = 0..3 (highest bits first).
int64_t group_size(I2sLayout layout) {
  return layout == I2sLayout::kX86 ? kI2sGroupX86 : kI2sGroupArm;
}

// Code (0..3) of element i of the tensor.
uint32_t i2s_code(const uint8_t* codes, int64_t i, int64_t group) {
  const int64_t stride = group / 4;
  const int64_t base = (i / group) * stride;
  const int64_t r = i % group;
  const uint8_t byte = codes[base + r % stride];
  return (byte >> (6 - 2 * (r / stride))) & 3u;
}

void dequantize_i2_s(const void* data, size_t n, float* out, I2sLayout layout) {
  const auto* codes = static_cast<const uint8_t*>(data);
  const float scale = i2_s_scale(data, n);
  const int64_t group = group_size(layout);
  for (int64_t i = 0; i < static_cast<int64_t>(n); ++i)
    out[i] = scale * kI2sCodeValue[i2s_code(codes, i, group)];
}

// quantize_i2_s: the scale is the largest |x| over the whole tensor (in double, as bitnet.cpp
// computes it, which is exact here); a value within 1e-6 of zero is code 1, otherwise the sign
// picks code 2 or 0. The magnitude is not looked at: the converter has already made the weights
// ternary times the scale. NaN is code 0 (its product with the scale is not > 0).
void quantize_i2_s(const float* src, void* dst, size_t n, I2sLayout layout) {
  auto* out = static_cast<uint8_t*>(dst);
  double max = 0.0;
  for (size_t i = 0; i < n; ++i) max = std::fmax(max, std::fabs(static_cast<double>(src[i])));
  const int64_t group = group_size(layout);
  const int64_t stride = group / 4;
  std::memset(out, 0, i2_s_nbytes(static_cast<int64_t>(n)));
  for (int64_t i = 0; i < static_cast<int64_t>(n); ++i) {
    const double v = static_cast<double>(src[i]);
    uint32_t code = 1;
    if (!(std::fabs(v) < 1e-6)) code = v * max > 0.0 ? 2u : 0u;
    const int64_t r = i % group;
    uint8_t& byte = out[(i / group) * stride + r % stride];
    byte = static_cast<uint8_t>(byte | (code << (6 - 2 * (r / stride))));
  }
  const auto scale = static_cast<float>(max);
  std::memcpy(out + n / 4, &scale, sizeof scale);
}

}  // namespace

float i2_s_scale(const void* data, size_t n) {
  float scale = 0.0f;
  std::memcpy(&scale, static_cast<const uint8_t*>(data) + n / 4, sizeof scale);
  return scale;
}

void dequantize_i2_s_x86(const void* data, size_t n, float* out) {
  dequantize_i2_s(data, n, out, I2sLayout::kX86);
}

void dequantize_i2_s_arm(const void* data, size_t n, float* out) {
  dequantize_i2_s(data, n, out, I2sLayout::kArm);
}

void quantize_i2_s_x86(const float* src, void* dst, size_t n) {
  quantize_i2_s(src, dst, n, I2sLayout::kX86);
}

void quantize_i2_s_arm(const float* src, void* dst, size_t n) {
  quantize_i2_s(src, dst, n, I2sLayout::kArm);
}

bool i2_s_scale_fits_fp16(float scale) {
  const uint16_t h = fp32_to_fp16(scale);
  return fp16_to_fp32(h) == scale || (std::isnan(scale) && std::isnan(fp16_to_fp32(h)));
}

// TQ2_0 stores element 128 h + 32 s + m of a block at bits 2s+1..2s of byte 32 h + m, codes
// 0, 1, 2 meaning -1, 0, +1 as in I2_S, so the conversion only moves 2-bit fields. Each output
// byte gathers its four codes; the group size is a template parameter so that the index
// arithmetic is shifts (a 2B-parameter model has billions of codes to move at load).
namespace {

template <int64_t kGroup>
void i2_s_codes_to_tq2_0(const uint8_t* codes, size_t n, uint16_t d, BlockTQ2_0* blocks) {
  constexpr int64_t kStride = kGroup / 4;
  for (int64_t b = 0; b < static_cast<int64_t>(n) / kQkK; ++b) {
    BlockTQ2_0& blk = blocks[b];
    blk.d = d;
    for (int64_t byte = 0; byte < 64; ++byte) {
      uint32_t out = 0;
      for (int64_t s = 0; s < 4; ++s) {
        const int64_t i = b * kQkK + 128 * (byte / 32) + 32 * s + byte % 32;
        const int64_t r = i % kGroup;
        uint32_t code =
            (codes[(i / kGroup) * kStride + r % kStride] >> (6 - 2 * (r / kStride))) & 3u;
        if (code == 3) code = 1;  // decodes as 0 in I2_S; TQ2_0 would read 3 as +2
        out |= code << (2 * s);
      }
      blk.qs[byte] = static_cast<uint8_t>(out);
    }
  }
}

// The x86 layout needs no gathering: I2_S group 2b + h (32 bytes, elements k + 32 s at bits
// 7-2s..6-2s of byte k) is exactly half h of TQ2_0 block b (elements k + 32 s at bits 2s+1..2s),
// so each byte only has its four fields reversed (and code 3 made 1): one table lookup per byte.
// The tests check it against dequantize_i2_s_x86 on every byte value.
void i2_s_x86_codes_to_tq2_0(const uint8_t* codes, size_t n, uint16_t d, BlockTQ2_0* blocks) {
  static const std::array<uint8_t, 256> kReversed = [] {
    std::array<uint8_t, 256> table{};
    for (uint32_t byte = 0; byte < 256; ++byte) {
      uint32_t out = 0;
      for (uint32_t s = 0; s < 4; ++s) {
        uint32_t code = (byte >> (6 - 2 * s)) & 3u;
        if (code == 3) code = 1;
        out |= code << (2 * s);
      }
      table[byte] = static_cast<uint8_t>(out);
    }
    return table;
  }();
  for (size_t b = 0; b < n / kQkK; ++b) {
    const uint8_t* in = codes + b * (kQkK / 4);
    for (size_t j = 0; j < kQkK / 4; ++j) blocks[b].qs[j] = kReversed[in[j]];
    blocks[b].d = d;
  }
}

}  // namespace

float i2_s_to_tq2_0(const void* data, size_t n, I2sLayout layout, void* dst, bool fold_scale) {
  const auto* codes = static_cast<const uint8_t*>(data);
  const float scale = i2_s_scale(data, n);
  const uint16_t d = fold_scale ? fp32_to_fp16(scale) : fp32_to_fp16(1.0f);
  auto* blocks = static_cast<BlockTQ2_0*>(dst);
  if (layout == I2sLayout::kX86) {
    i2_s_x86_codes_to_tq2_0(codes, n, d, blocks);
  } else {
    i2_s_codes_to_tq2_0<kI2sGroupArm>(codes, n, d, blocks);
  }
  return scale;
}

I2sShapeCheck check_i2_s_shape(size_t nbytes, int64_t n) {
  I2sShapeCheck check{};
  check.size_matches = n > 0 && nbytes == i2_s_nbytes(n);
  check.x86_possible = check.size_matches && n % kI2sGroupX86 == 0;
  check.arm_possible = check.size_matches && n % kI2sGroupArm == 0;
  return check;
}

}  // namespace tern::quant

// IEEE half and bfloat16 conversions, bit-identical to ggml's (round to nearest even).
#pragma once

#include <cstdint>
#include <cstring>

namespace tern {

inline float fp32_from_bits(uint32_t w) {
  float f;
  std::memcpy(&f, &w, sizeof f);
  return f;
}
inline uint32_t fp32_to_bits(float f) {
  uint32_t w;
  std::memcpy(&w, &f, sizeof w);
  return w;
}

float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);
inline float bf16_to_fp32(uint16_t h) {
  return fp32_from_bits(static_cast<uint32_t>(h) << 16);
}
uint16_t fp32_to_bf16(float f);

}  // namespace tern

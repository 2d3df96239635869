// The six-bit scales and mins of a Q4_K / Q5_K block, unpacked to bytes with plain integer code
// that the x86 and NEON K-quant kernels share. Internal linkage (anonymous namespace), standard
// headers only, so that ISA files may include it.
#pragma once

#include <cstdint>
#include <cstring>

namespace tern::kernels {
namespace {

// Byte j of each word is entry j of its quarter (both ISAs are little-endian): scales 0..3,
// scales 4..7, mins 0..3, mins 4..7. Layout in quant/kquants.h, above kKScaleBytes: entries 0..3
// are the low six bits of bytes 0..3 (scales) and 4..7 (mins); entries 4..7 take their low four
// bits from the nibbles of bytes 8..11 and their top two from the spare bits of bytes 0..7.
struct K4ScaleWords {
  uint32_t sc_lo, sc_hi, m_lo, m_hi;
};

inline K4ScaleWords k4_scale_words(const uint8_t* packed) {
  uint32_t u[3];
  std::memcpy(u, packed, sizeof u);
  const uint32_t low6 = 0x3f3f3f3fu, low4 = 0x0f0f0f0fu, top2 = 0x03030303u;
  return {.sc_lo = u[0] & low6,
          .sc_hi = (u[2] & low4) | (((u[0] >> 6) & top2) << 4),
          .m_lo = u[1] & low6,
          .m_hi = ((u[2] >> 4) & low4) | (((u[1] >> 6) & top2) << 4)};
}

}  // namespace
}  // namespace tern::kernels

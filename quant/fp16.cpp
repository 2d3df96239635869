// IEEE half and bfloat16 rounding from f32: integer-only, round to nearest even, no tables.
// Must stay bit-identical to ggml's software conversions (ggml-impl.h), which the F16 files and
// activations are made with.
#include "quant/fp16.h"

namespace tern {

namespace {

constexpr uint32_t kF32SignMask = 0x80000000u;
constexpr uint32_t kF32AbsMask = 0x7fffffffu;
constexpr uint32_t kF32Inf = 0x7f800000u;
constexpr uint32_t kF32QuietBit = 0x00400000u;

constexpr uint16_t kF16Inf = 0x7c00u;
// ggml's software path turns every NaN into this one quiet NaN (keeping only the sign).
constexpr uint16_t kF16CanonicalNan = 0x7e00u;

// |f| at or above 65520 (halfway between 65504, the largest half, and 65536) rounds to infinity:
// the tie goes up because 65504's mantissa is odd.
constexpr uint32_t kF32HalfOverflow = 0x477ff000u;
// Below 2^-14 the half result is subnormal.
constexpr uint32_t kF32HalfMinNormal = 0x38800000u;

// Shifts `m` right by `shift` bits, rounding the dropped bits to nearest, ties to even.
uint32_t shift_right_round_even(uint32_t m, uint32_t shift) {
  if (shift >= 32) return 0;  // only reached with m < 2^24: far below one half
  if (shift == 0) return m;
  const uint32_t kept = m >> shift;
  const uint32_t dropped = m & ((1u << shift) - 1);
  const uint32_t half = 1u << (shift - 1);
  return (dropped > half || (dropped == half && (kept & 1u))) ? kept + 1 : kept;
}

}  // namespace

float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) {
    // Inf stays inf; a NaN keeps its payload and comes out quiet, as F16C and ggml's path give.
    return fp32_from_bits(sign | kF32Inf | (mant << 13) | (mant ? kF32QuietBit : 0u));
  }
  if (exp == 0) {
    // Zero or subnormal: mant * 2^-24 is exact in f32.
    const float magnitude = static_cast<float>(mant) * 0x1p-24f;
    return fp32_from_bits(sign | fp32_to_bits(magnitude));
  }
  // Rebias the exponent from 15 to 127.
  return fp32_from_bits(sign | ((exp + 112u) << 23) | (mant << 13));
}

uint16_t fp32_to_fp16(float f) {
  const uint32_t bits = fp32_to_bits(f);
  const auto sign = static_cast<uint16_t>((bits & kF32SignMask) >> 16);
  const uint32_t abs = bits & kF32AbsMask;
  if (abs > kF32Inf) return sign | kF16CanonicalNan;
  if (abs >= kF32HalfOverflow) return sign | kF16Inf;
  const uint32_t exp = abs >> 23;
  const uint32_t mant = abs & 0x7fffffu;
  if (abs < kF32HalfMinNormal) {
    // Result in units of 2^-24 (the half subnormal step). A carry out of the mantissa lands on
    // 0x0400, the smallest normal half, which is the right answer.
    if (exp == 0) return sign;                      // f32 subnormals are far below half a half-step
    const uint32_t significand = mant | 0x800000u;  // value = significand * 2^(exp - 150)
    return sign | static_cast<uint16_t>(shift_right_round_even(significand, 126u - exp));
  }
  // Normal half: rebias, keep 10 mantissa bits, round the other 13. A carry out of the mantissa
  // correctly bumps the exponent.
  const uint32_t rebased = ((exp - 112u) << 23) | mant;
  return sign | static_cast<uint16_t>(shift_right_round_even(rebased, 13));
}

uint16_t fp32_to_bf16(float f) {
  const uint32_t bits = fp32_to_bits(f);
  if ((bits & kF32AbsMask) > kF32Inf) {
    // Truncate the payload and force it quiet so that it cannot turn into an infinity.
    return static_cast<uint16_t>((bits >> 16) | 0x40u);
  }
  // Round the low 16 bits away, ties to even; a carry may correctly reach the exponent (and inf).
  return static_cast<uint16_t>(shift_right_round_even(bits, 16));
}

}  // namespace tern

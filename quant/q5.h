// Block structs and reference row functions of Q5_0 and Q5_1, and of Q8_1, the activation
// format Q5_1 pairs with. llama-quantize writes Q5_0 and Q5_1 for Q4_K and Q5_K tensors whose
// rows are not a multiple of 256. Layouts and declarations only; the functions live in
// q5_0.cpp, q5_1.cpp and q8_1.cpp with the signatures of types.h.
#pragma once

#include <cstdint>

#include "quant/blocks.h"

namespace tern {

inline constexpr int64_t kQk5_0 = 32;
inline constexpr int64_t kQk5_1 = 32;
inline constexpr int64_t kQk8_1 = 32;

// Q5_0: 32 five-bit codes and one scale; value = (code - 16) * d.
// The low four bits sit in nibbles as in Q4_0; the fifth bits of all 32 elements fill one
// little-endian u32.
//
//   byte  0      2             6                                  22
//         +------+-------------+----------------------------------+
//         | d f16| qh[0..3]    | qs[0..15]                        |
//         +------+-------------+----------------------------------+
//   qs[j]: bits 3..0 = low bits of element j, bits 7..4 = low bits of element j + 16
//   qh (u32): bit e = bit 4 of element e's code
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[kQk5_0 / 2];
};
static_assert(sizeof(BlockQ5_0) == 22);

// Q5_1: as Q5_0, with a minimum instead of a centred code; value = code * d + m.
//
//   byte  0      2      4             8                                  24
//         +------+------+-------------+----------------------------------+
//         | d f16| m f16| qh[0..3]    | qs[0..15]                        |
//         +------+------+-------------+----------------------------------+
struct BlockQ5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[kQk5_1 / 2];
};
static_assert(sizeof(BlockQ5_1) == 24);

// Q8_1 (activations for Q5_1): Q8_0 plus s = d * sum(qs), so that a dot with a block of minimum m
// adds m * s once instead of m * d_a * sum per element.
//
//   byte  0      2      4                                   36
//         +------+------+-----------------------------------+
//         | d f16| s f16| qs[0] ... qs[31]   (int8)         |
//         +------+------+-----------------------------------+
struct BlockQ8_1 {
  uint16_t d;
  uint16_t s;
  int8_t qs[kQk8_1];
};
static_assert(sizeof(BlockQ8_1) == 36);

}  // namespace tern

namespace tern::quant {

void dequantize_row_q5_0(const void* src, float* dst, int64_t n);
void quantize_row_q5_0(const float* src, void* dst, int64_t n);  // quantize_row_q5_0_ref
float vec_dot_q5_0_q8_0(int64_t n, const void* weights, const void* activations);

void dequantize_row_q5_1(const void* src, float* dst, int64_t n);
void quantize_row_q5_1(const float* src, void* dst, int64_t n);  // quantize_row_q5_1_ref
float vec_dot_q5_1_q8_1(int64_t n, const void* weights, const void* activations);

void dequantize_row_q8_1(const void* src, float* dst, int64_t n);
void quantize_row_q8_1(const float* src, void* dst, int64_t n);  // activations: x86 from_float

// The code (0..31) of element j of a Q5_0 or Q5_1 block.
inline int32_t q5_code(const uint8_t (&qs)[16], const uint8_t (&qh)[4], int64_t j) {
  const uint32_t high = (static_cast<uint32_t>(qh[j / 8]) >> (j % 8)) & 1u;
  const uint8_t byte = qs[j % 16];
  return static_cast<int32_t>((j < 16 ? (byte & 0x0f) : (byte >> 4)) | (high << 4));
}

// Packs 32 codes (0..31, or any byte: only bits 4..0 are kept, as llama.cpp's masks do) into a
// Q5_0 / Q5_1 block's qs and qh.
inline void pack_q5_codes(const uint8_t (&codes)[32], uint8_t (&qs)[16], uint8_t (&qh)[4]) {
  uint32_t high = 0;
  for (int j = 0; j < 16; ++j) {
    qs[j] = static_cast<uint8_t>((codes[j] & 0x0f) | ((codes[j + 16] & 0x0f) << 4));
    high |= static_cast<uint32_t>((codes[j] >> 4) & 1) << j;
    high |= static_cast<uint32_t>((codes[j + 16] >> 4) & 1) << (j + 16);
  }
  for (int i = 0; i < 4; ++i) qh[i] = static_cast<uint8_t>(high >> (8 * i));
}

}  // namespace tern::quant

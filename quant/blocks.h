// Block structs of the quantized formats, byte for byte as llama.cpp stores them in GGUF files.
// Layout only: no functions here (the row functions are in formats.h, the table in types.h).
#pragma once

#include <cstddef>
#include <cstdint>

namespace tern {

// Elements per block. The "K" super-block size is shared by the ternary types and Q8_K.
inline constexpr int64_t kQk8_0 = 32;
inline constexpr int64_t kQk4_0 = 32;
inline constexpr int64_t kQkK = 256;

// Scales are IEEE half bit patterns (uint16_t), little-endian like the rest of the file.
// Every struct has only 1-, 2- or 4-byte members and no padding, so a row of blocks can be read in
// place from a mapped file whose tensor data is 32-byte aligned.

// Q8_0: 32 signed bytes and one scale; value = qs[j] * d.
//
//   byte  0      2                                   34
//         +------+-----------------------------------+
//         | d f16| qs[0] qs[1] ... qs[31]   (int8)   |
//         +------+-----------------------------------+
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[kQk8_0];
};
static_assert(sizeof(BlockQ8_0) == 34);

// Q4_0: 32 four-bit codes and one scale; value = (code - 8) * d.
// Byte j holds element j in its low nibble and element j + 16 in its high nibble, so the two
// halves of the block unpack with one mask and one shift.
//
//   byte  0      2                                              18
//         +------+----------------------------------------------+
//         | d f16| qs[0] ... qs[15]                              |
//         +------+----------------------------------------------+
//   qs[j]:  bits 7..4 = code of element j+16 | bits 3..0 = code of element j
struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[kQk4_0 / 2];
};
static_assert(sizeof(BlockQ4_0) == 18);

// TQ1_0: 256 ternary values at 1.6875 bits each. Five trits t0..t4 (each 0, 1, 2 for -1, 0, +1)
// form q = 81 t0 + 27 t1 + 9 t2 + 3 t3 + t4 < 243, stored as ceil(q * 256 / 243) so that trit n
// is the top two bits of (byte * 3^n mod 256) * 3, i.e. read with a multiply and a shift.
//
//   byte  0                 32            48        52      54
//         +-----------------+-------------+---------+-------+
//         | qs[0..31]       | qs[32..47]  | qh[0..3]| d f16 |
//         +-----------------+-------------+---------+-------+
//   qs[m],      m < 32:  trit n = element m + 32 n            (elements   0..159)
//   qs[32 + m], m < 16:  trit n = element 160 + m + 16 n      (elements 160..239)
//   qh[j],      j < 4 :  trit n = element 240 + j + 4 n, n < 4 (elements 240..255); trit 4 is 0
// value = (trit - 1) * d, where d is the block's absolute maximum.
struct BlockTQ1_0 {
  uint8_t qs[(kQkK - 4 * kQkK / 64) / 5];
  uint8_t qh[kQkK / 64];
  uint16_t d;
};
static_assert(sizeof(BlockTQ1_0) == 54);

// TQ2_0: 256 ternary values as 2-bit codes (0, 1, 2 for -1, 0, +1; 3 never written).
//
//   byte  0                   32                   64      66
//         +-------------------+--------------------+-------+
//         | qs[0..31]         | qs[32..63]         | d f16 |
//         +-------------------+--------------------+-------+
//   qs[32 h + m]: bits 2n+1..2n = code of element 128 h + 32 n + m   (h < 2, m < 32, n < 4)
// value = (code - 1) * d, where d is the block's absolute maximum.
struct BlockTQ2_0 {
  uint8_t qs[kQkK / 4];
  uint16_t d;
};
static_assert(sizeof(BlockTQ2_0) == 66);

// Q8_K: activation-only format paired with the ternary (and K-quant) weights. The scale is f32,
// and bsums caches the sum of each group of 16 codes, which kernels use to undo the +1 offset of
// ternary codes stored as 0, 1, 2 without summing the activations again.
//
//   byte  0       4                          260                        292
//         +-------+--------------------------+--------------------------+
//         | d f32 | qs[0..255]  (int8)       | bsums[0..15]  (int16)    |
//         +-------+--------------------------+--------------------------+
//   bsums[g] = qs[16 g] + ... + qs[16 g + 15]
struct BlockQ8_K {
  float d;
  int8_t qs[kQkK];
  int16_t bsums[kQkK / 16];
};
static_assert(sizeof(BlockQ8_K) == 292);

}  // namespace tern

// Block structs and reference row functions of the K-quants (Q4_K, Q5_K, Q6_K), MXFP4, tern's
// BFP8, and bitnet.cpp's whole-tensor I2_S with its conversion to TQ2_0.
// Layouts and declarations only; the functions live in q4_k.cpp, q5_k.cpp, q6_k.cpp, mxfp4.cpp,
// bfp8.cpp and i2_s.cpp. Row functions have the DequantizeRowFn / QuantizeRowFn / VecDotFn
// signatures of types.h so that they drop into the traits table.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "quant/blocks.h"

namespace tern {

// Elements per block of the 32-element formats.
inline constexpr int64_t kQkMxfp4 = 32;
inline constexpr int64_t kQkBfp8 = 32;

// tern-internal type id for BFP8. GGUF has no BFP8 and llama.cpp does not know 200: a file that
// llama.cpp is meant to read must never contain it.
inline constexpr uint32_t kBfp8TypeId = 200;

// Every struct has only 1- and 2-byte members and no padding. As in blocks.h, f16 fields are IEEE
// half bit patterns and multi-byte fields are little-endian.

// The 12 bytes that hold the eight 6-bit scales sc[0..7] and eight 6-bit mins m[0..7] of Q4_K
// and Q5_K. The first four of each sit whole in the low 6 bits of bytes 0..7; the last four are
// split, low nibbles in bytes 8..11 and top two bits in the spare bits 7..6 of bytes 0..7.
//
//   byte   0..3 : bits 5..0 = sc[j]        bits 7..6 = sc[j+4] bits 5..4     (j = byte)
//   byte   4..7 : bits 5..0 = m[j]         bits 7..6 = m[j+4]  bits 5..4     (j = byte - 4)
//   byte  8..11 : bits 3..0 = sc[j+4] bits 3..0, bits 7..4 = m[j+4] bits 3..0 (j = byte - 8)
inline constexpr int kKScaleBytes = 12;

// Q4_K: 256 weights in eight sub-blocks of 32, each with a 6-bit scale and a 6-bit min.
// value = d * sc[s] * q - dmin * m[s], q = 0..15, s = element / 32.
//
//   byte 0      2      4                  16                                      144
//        +------+------+------------------+---------------------------------------+
//        | d f16|dmin  | scales[12]       | qs[0..127]                            |
//        +------+------+------------------+---------------------------------------+
//   qs[32 c + l] (c < 4, l < 32): bits 3..0 = q of element 64 c + l      (sub-block 2c)
//                                 bits 7..4 = q of element 64 c + 32 + l (sub-block 2c+1)
struct BlockQ4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qs[kQkK / 2];
};
static_assert(sizeof(BlockQ4_K) == 144);

// Q5_K: Q4_K plus a fifth (high) bit per weight; q = 0..31.
//
//   byte 0      2      4             16                 48                      176
//        +------+------+-------------+------------------+-----------------------+
//        | d f16|dmin  | scales[12]  | qh[0..31]        | qs[0..127]            |
//        +------+------+-------------+------------------+-----------------------+
//   qs[32 c + l] as in Q4_K (low four bits);
//   qh[l], bit 2c   = bit 4 of element 64 c + l,
//          bit 2c+1 = bit 4 of element 64 c + 32 + l        (c < 4, l < 32)
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qh[kQkK / 8];
  uint8_t qs[kQkK / 2];
};
static_assert(sizeof(BlockQ5_K) == 176);

// Q6_K: 256 weights in sixteen sub-blocks of 16, each with a signed 8-bit scale; no min.
// value = d * scales[e / 16] * (q - 32), q = 0..63.
//
//   byte 0                        128              192            208     210
//        +------------------------+----------------+--------------+-------+
//        | ql[0..127]             | qh[0..63]      | scales[16]   | d f16 |
//        +------------------------+----------------+--------------+-------+
//   Half h (h < 2) covers elements 128 h .. 128 h + 127; with l < 32:
//   ql[64 h + l]      bits 3..0 = low 4 bits of element 128 h + l,      bits 7..4: 128 h + 64 + l
//   ql[64 h + 32 + l] bits 3..0 = low 4 bits of element 128 h + 32 + l, bits 7..4: 128 h + 96 + l
//   qh[32 h + l]      bits 1..0, 3..2, 5..4, 7..6 = high 2 bits of elements
//                     128 h + l, + 32 + l, + 64 + l, + 96 + l
struct BlockQ6_K {
  uint8_t ql[kQkK / 2];
  uint8_t qh[kQkK / 4];
  int8_t scales[kQkK / 16];
  uint16_t d;
};
static_assert(sizeof(BlockQ6_K) == 210);

// Q6_K with dense codes: tern's load-time layout for kernels that unpack six-bit fields directly
// (quant::repack_q6_K_dense_codes). The same 210 bytes per block, scales and d where Q6_K has
// them; the codes q (0..63) of elements 0..255 in element order, six bits each, little-endian:
// element e in bits 6 e .. 6 e + 5 of codes[] (bit i of the stream is bit i % 8 of byte i / 8).
//
//   byte 0                                         192            208     210
//        +-----------------------------------------+--------------+-------+
//        | codes[0..191]: 48 bytes per 64 elements | scales[16]   | d f16 |
//        +-----------------------------------------+--------------+-------+
struct BlockQ6KDense {
  uint8_t codes[kQkK * 6 / 8];
  int8_t scales[kQkK / 16];
  uint16_t d;
};
static_assert(sizeof(BlockQ6KDense) == sizeof(BlockQ6_K));
static_assert(offsetof(BlockQ6KDense, scales) == offsetof(BlockQ6_K, scales));
static_assert(offsetof(BlockQ6KDense, d) == offsetof(BlockQ6_K, d));

// MXFP4 (OCP microscaling, GGUF id 39): 32 E2M1 values sharing one E8M0 exponent.
// The codes index the E2M1 values doubled to integers (0, 1, 2, 3, 4, 6, 8, 12 and negatives;
// code 8 is -0), so the stored exponent is decoded as half its value: 2^(e - 128).
//
//   byte 0     1                                      17
//        +-----+--------------------------------------+
//        | e   | qs[0..15]                            |
//        +-----+--------------------------------------+
//   qs[j]: bits 3..0 = code of element j, bits 7..4 = code of element j + 16   (as Q4_0)
//   value = kvalue[code] * 2^(e - 128)   (e = 0 and 1 give the subnormals 2^-128 and 2^-127)
struct BlockMxfp4 {
  uint8_t e;
  uint8_t qs[kQkMxfp4 / 2];
};
static_assert(sizeof(BlockMxfp4) == 17);

// BFP8 (tern-internal, id 200): block floating point, 32 signed 8-bit mantissas sharing one
// signed power-of-two exponent. Meant for activations and the KV cache.
//
//   byte 0     1                                      33
//        +-----+--------------------------------------+
//        | e   | m[0..31]   (int8, -127..127)         |
//        +-----+--------------------------------------+
//   value = m[j] * 2^e
struct BlockBfp8 {
  int8_t e;
  int8_t m[kQkBfp8];
};
static_assert(sizeof(BlockBfp8) == 33);

// I2_S (bitnet.cpp) has no block struct: a tensor of n ternary weights is n/4 bytes of 2-bit codes
// (0, 1, 2 = -1, 0, +1) followed by a 32-byte tail whose first 4 bytes are one f32 scale for the
// whole tensor. Within the codes, bitnet.cpp's x86 and ARM builds group differently:
//
//   x86: 128 weights per 32 bytes. Byte k of a group: bits 7..6 = element k, 5..4 = k + 32,
//        3..2 = k + 64, 1..0 = k + 96.
//   ARM:  64 weights per 16 bytes. Byte k of a group: bits 7..6 = element k, 5..4 = k + 16,
//        3..2 = k + 32, 1..0 = k + 48.
inline constexpr int64_t kI2sGroupX86 = 128;
inline constexpr int64_t kI2sGroupArm = 64;
inline constexpr size_t kI2sTailBytes = 32;

enum class I2sLayout : uint8_t { kX86, kArm };

}  // namespace tern

namespace tern::quant {

// ---- Helpers the K-quant files share (not for callers) ----------------------------------------

namespace detail {

// llama.cpp's nearest_int: round to nearest, ties to even, by adding 1.5 * 2^23 and reading the
// low mantissa bits. Exact for |v| < 2^22; outside that (and for inf or NaN, which the quantizers
// can produce from extreme inputs) it returns whatever those bits say, exactly as llama.cpp does,
// so extreme blocks still quantize to the same bytes.
inline int32_t nearest_int(float v) {
  const float biased = v + 12582912.0f;
  uint32_t bits = 0;
  static_assert(sizeof bits == sizeof biased);
  std::memcpy(&bits, &biased, sizeof bits);
  return static_cast<int32_t>(bits & 0x007fffffu) - 0x00400000;
}

// Sub-block j's 6-bit scale and min from the 12 packed bytes (layout above kKScaleBytes).
inline void unpack_scale_min_k4(int j, const uint8_t* q, int32_t& sc, int32_t& m) {
  if (j < 4) {
    sc = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    sc = (q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4);
    m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// llama.cpp's make_qkx2_quants: fits x[i] ~ scale * L[i] - the_min with L in 0..nmax, trying
// nstep + 1 scales around nmax / (max - min) and keeping the best weighted error. Returns the
// scale. Defined in q4_k.cpp; Q4_K and Q5_K call it with different constants.
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                       float* the_min, uint8_t* Laux, float rmin, float rdelta, int nstep,
                       bool use_mad);

// The Q4_K / Q5_K super-block quantizer around make_qkx2_quants (shared because the two differ
// only in nmax and the search constants). Writes d, dmin and the 12 scale bytes, and the 256
// codes to L. Defined in q4_k.cpp.
void quantize_k4_superblock(const float* x, int nmax, float rmin, float rdelta, int nstep,
                            uint16_t& d, uint16_t& dmin, uint8_t* scales, uint8_t* L);

}  // namespace detail

// ---- K-quants: weights paired with Q8_K activations -----------------------------------------

void dequantize_row_q4_K(const void* src, float* dst, int64_t n);
void quantize_row_q4_K(const float* src, void* dst, int64_t n);  // quantize_row_q4_K_ref
float vec_dot_q4_K_q8_K(int64_t n, const void* weights, const void* activations);

void dequantize_row_q5_K(const void* src, float* dst, int64_t n);
void quantize_row_q5_K(const float* src, void* dst, int64_t n);  // quantize_row_q5_K_ref
float vec_dot_q5_K_q8_K(int64_t n, const void* weights, const void* activations);

void dequantize_row_q6_K(const void* src, float* dst, int64_t n);
void quantize_row_q6_K(const float* src, void* dst, int64_t n);  // quantize_row_q6_K_ref
float vec_dot_q6_K_q8_K(int64_t n, const void* weights, const void* activations);
// Load-time repack: Q6_K blocks to BlockQ6KDense blocks holding the same codes, scales and d.
// dst may be src (each block is read whole before it is written).
void repack_q6_K_dense_codes(const void* src, void* dst, int64_t n);

// ---- MXFP4: weights paired with Q8_0 activations ---------------------------------------------

void dequantize_row_mxfp4(const void* src, float* dst, int64_t n);
void quantize_row_mxfp4(const float* src, void* dst, int64_t n);  // quantize_row_mxfp4_ref
float vec_dot_mxfp4_q8_0(int64_t n, const void* weights, const void* activations);

// ---- BFP8: its own activation type -----------------------------------------------------------

void dequantize_row_bfp8(const void* src, float* dst, int64_t n);
void quantize_row_bfp8(const float* src, void* dst, int64_t n);
float vec_dot_bfp8_bfp8(int64_t n, const void* weights, const void* activations);

// ---- I2_S: whole tensors, converted to TQ2_0 at load ------------------------------------------

// Bytes of an I2_S tensor of n elements: n/4 codes plus the 32-byte tail.
inline size_t i2_s_nbytes(int64_t n) {
  return static_cast<size_t>(n / 4) + kI2sTailBytes;
}

// The f32 scale stored in the tail of an I2_S tensor of n elements.
float i2_s_scale(const void* data, size_t n);

// n elements (a multiple of the layout's group size: 128 for x86, 64 for ARM) to f32, as
// bitnet.cpp's dequantize_row_i2_s: scale * {-1, 0, +1, 0} for codes 0, 1, 2, 3.
void dequantize_i2_s_x86(const void* data, size_t n, float* out);
void dequantize_i2_s_arm(const void* data, size_t n, float* out);

// bitnet.cpp's quantize_i2_s over a whole tensor of n elements: the scale is max |x| and each code
// only keeps the sign (|x| < 1e-6 is 0), so the input is expected to be ternary times the scale
// already. Writes i2_s_nbytes(n) bytes, the tail's last 28 bytes zero. n must be a multiple of
// the group size (bitnet.cpp silently drops a remainder).
void quantize_i2_s_x86(const float* src, void* dst, size_t n);
void quantize_i2_s_arm(const float* src, void* dst, size_t n);

// Rewrites an I2_S tensor of n elements (n % 256 == 0, and rows must be a multiple of 256 long for
// the result to be a valid row-major TQ2_0 tensor) as n/256 BlockTQ2_0 blocks at dst.
// Codes are copied unchanged except the never-written code 3, which becomes 0 (as I2_S decodes it).
//   fold_scale = true:  every block's d is fp32_to_fp16(scale). The TQ2_0 values equal the I2_S
//                       values exactly when i2_s_scale_fits_fp16(scale); otherwise they carry the
//                       scale rounded to half (relative error <= 2^-11, or 0 / inf outside the
//                       half range).
//   fold_scale = false: every d is 1.0 and the caller multiplies each output of the matrix
//                       product by the returned scale: exact for any f32 scale.
// Returns the tensor's f32 scale.
float i2_s_to_tq2_0(const void* data, size_t n, I2sLayout layout, void* dst, bool fold_scale);

// Whether the f32 scale converts to a half and back unchanged.
bool i2_s_scale_fits_fp16(float scale);

// What the size of a tensor says about I2_S. Both layouts have the same size, and any byte is a
// valid code group in either, so the bytes cannot tell x86 from ARM: the caller decides the layout
// from metadata (see docs/QUANT_FORMATS.md, I2_S) and this only rules layouts out.
struct I2sShapeCheck {
  bool size_matches;  // nbytes == n/4 + 32
  bool x86_possible;  // size_matches and n % 128 == 0
  bool arm_possible;  // size_matches and n % 64 == 0
};
I2sShapeCheck check_i2_s_shape(size_t nbytes, int64_t n);

}  // namespace tern::quant

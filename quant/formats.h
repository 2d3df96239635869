// The reference row functions of each format, which the traits table (traits.cpp) points at,
// plus two helpers the format files share. Generic code reaches these through TypeTraits.
#pragma once

#include <cmath>
#include <cstdint>

namespace tern::quant {

// Signatures follow types.h: n elements, a multiple of the block size.

void dequantize_row_f32(const void* src, float* dst, int64_t n);
void quantize_row_f32(const float* src, void* dst, int64_t n);
float vec_dot_f32(int64_t n, const void* weights, const void* activations);
float vec_dot_f32_sgemm(int64_t n, const void* weights, const void* activations);  // n % 16 == 0

void dequantize_row_f16(const void* src, float* dst, int64_t n);
void quantize_row_f16(const float* src, void* dst, int64_t n);
float vec_dot_f16(int64_t n, const void* weights, const void* activations);
float vec_dot_f16_sgemm(int64_t n, const void* weights, const void* activations);  // n % 16 == 0

void dequantize_row_bf16(const void* src, float* dst, int64_t n);
void quantize_row_bf16(const float* src, void* dst, int64_t n);
float vec_dot_bf16(int64_t n, const void* weights, const void* activations);
float vec_dot_bf16_sgemm(int64_t n, const void* weights, const void* activations);  // n % 32 == 0

void dequantize_row_q8_0(const void* src, float* dst, int64_t n);
void quantize_row_q8_0(const float* src, void* dst, int64_t n);             // weights (*_ref)
void quantize_row_q8_0_activation(const float* src, void* dst, int64_t n);  // x86 from_float
float vec_dot_q8_0_q8_0(int64_t n, const void* weights, const void* activations);
// One block of 32 activations as the x86 from_float of Q8_0 and Q8_1 rounds them: writes the
// codes, sets `sum` to their sum before saturation and returns d = amax / 127 (f32, unrounded).
float quantize_block_q8_activation(const float* x, int8_t* qs, int32_t& sum);

void dequantize_row_q4_0(const void* src, float* dst, int64_t n);
void quantize_row_q4_0(const float* src, void* dst, int64_t n);
float vec_dot_q4_0_q8_0(int64_t n, const void* weights, const void* activations);
float vec_dot_q4_0_q8_0_repacked(int64_t n, const void* weights, const void* activations);

void dequantize_row_tq1_0(const void* src, float* dst, int64_t n);
void quantize_row_tq1_0(const float* src, void* dst, int64_t n);
float vec_dot_tq1_0_q8_K(int64_t n, const void* weights, const void* activations);
// Load-time repack: TQ1_0 blocks to TQ2_0 blocks holding the same codes and scales, so that
// vec_dot_tq2_0_q8_K on the result gives the bits of vec_dot_tq1_0_q8_K on the input.
void repack_tq1_0_as_tq2_0(const void* src, void* dst, int64_t n);

void dequantize_row_tq2_0(const void* src, float* dst, int64_t n);
void quantize_row_tq2_0(const float* src, void* dst, int64_t n);
float vec_dot_tq2_0_q8_K(int64_t n, const void* weights, const void* activations);

void dequantize_row_q8_K(const void* src, float* dst, int64_t n);
void quantize_row_q8_K(const float* src, void* dst, int64_t n);  // activations only

// ---- Helpers shared by the format files -----------------------------------------------------

// float -> int32 the way x86 cvttss2si does it: truncate toward zero, and INT32_MIN for NaN and
// out-of-range values. llama.cpp's C casts compile to exactly this; spelling it out keeps NaN or
// infinite inputs from being undefined behaviour here.
inline int32_t truncate_to_i32(float v) {
  if (v >= -2147483648.0f && v < 2147483648.0f) return static_cast<int32_t>(v);
  return INT32_MIN;
}

// The element of largest magnitude with its sign (the first one on a tie; 0 for an all-zero or
// all-NaN block), which Q4_0 and Q5_0 map to their lowest code.
inline float signed_absmax(const float* x, int64_t n) {
  float amax = 0.0f;
  float max = 0.0f;
  for (int64_t j = 0; j < n; ++j) {
    // Strictly greater: the first element of largest magnitude wins a tie in sign.
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

// The integer kernels of llama.cpp's x86 build (AVX2 and AVX-512 alike) keep 8 int32 lanes per
// 32-element group: lane l holds the products of elements 4l..4l+3 of that group. Each lane is
// scaled and accumulated across blocks on its own, then the lanes are summed in this tree (the
// order of hsum_float_8). Reproducing the association makes the reference bit-identical to
// llama.cpp's CPU path on x86 rather than merely close to it.
inline constexpr int kDotLanes = 8;
inline float sum_dot_lanes(const float (&acc)[kDotLanes]) {
  const float r0 = acc[0] + acc[4];
  const float r1 = acc[1] + acc[5];
  const float r2 = acc[2] + acc[6];
  const float r3 = acc[3] + acc[7];
  return (r0 + r2) + (r1 + r3);
}

}  // namespace tern::quant

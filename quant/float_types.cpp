// Rows of the unquantized types F32, F16 and BF16: conversion and the float dot products.
// Reference loops only; vectorised versions belong in kernels/.
#include <cstring>

#include "quant/float_dot.h"
#include "quant/formats.h"
#include "quant/fp16.h"

namespace tern::quant {

// The dots copy the association of llama.cpp's x86 CPU path on the AVX-512 (and AVX512-BF16)
// machine tern is checked on (see float_dot.h): vec_dot is ggml_vec_dot_*, vec_dot_sgemm the
// llamafile tinyBLAS kernel llama.cpp uses for batches. Products of two halves or two bfloat16s
// are exact in f32, so for F16 and BF16 only the additions round.

void dequantize_row_f32(const void* src, float* dst, int64_t n) {
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}

void quantize_row_f32(const float* src, void* dst, int64_t n) {
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}

float vec_dot_f32(int64_t n, const void* weights, const void* activations) {
  const auto* w = static_cast<const float*>(weights);
  const auto* a = static_cast<const float*>(activations);
  return dot_f32_ggml(
      n, [w](int64_t i) { return w[i]; }, [a](int64_t i) { return a[i]; });
}

float vec_dot_f32_sgemm(int64_t n, const void* weights, const void* activations) {
  const auto* w = static_cast<const float*>(weights);
  const auto* a = static_cast<const float*>(activations);
  return dot_sgemm16(
      n, [w](int64_t i) { return w[i]; }, [a](int64_t i) { return a[i]; });
}

void dequantize_row_f16(const void* src, float* dst, int64_t n) {
  const auto* h = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(h[i]);
}

void quantize_row_f16(const float* src, void* dst, int64_t n) {
  auto* h = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) h[i] = fp32_to_fp16(src[i]);
}

float vec_dot_f16(int64_t n, const void* weights, const void* activations) {
  const auto* w = static_cast<const uint16_t*>(weights);
  const auto* a = static_cast<const uint16_t*>(activations);
  return dot_f16_ggml(
      n, [w](int64_t i) { return fp16_to_fp32(w[i]); },
      [a](int64_t i) { return fp16_to_fp32(a[i]); });
}

float vec_dot_f16_sgemm(int64_t n, const void* weights, const void* activations) {
  const auto* w = static_cast<const uint16_t*>(weights);
  const auto* a = static_cast<const uint16_t*>(activations);
  return dot_sgemm16(
      n, [w](int64_t i) { return fp16_to_fp32(w[i]); },
      [a](int64_t i) { return fp16_to_fp32(a[i]); });
}

void dequantize_row_bf16(const void* src, float* dst, int64_t n) {
  const auto* h = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(h[i]);
}

void quantize_row_bf16(const float* src, void* dst, int64_t n) {
  auto* h = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) h[i] = fp32_to_bf16(src[i]);
}

float vec_dot_bf16(int64_t n, const void* weights, const void* activations) {
  const auto* w = static_cast<const uint16_t*>(weights);
  const auto* a = static_cast<const uint16_t*>(activations);
  return dot_bf16_ggml(
      n, [w](int64_t i) { return bf16_to_fp32(w[i]); },
      [a](int64_t i) { return bf16_to_fp32(a[i]); });
}

float vec_dot_bf16_sgemm(int64_t n, const void* weights, const void* activations) {
  const auto* w = static_cast<const uint16_t*>(weights);
  const auto* a = static_cast<const uint16_t*>(activations);
  return dot_sgemm_bf16(
      n, [w](int64_t i) { return bf16_to_fp32(w[i]); },
      [a](int64_t i) { return bf16_to_fp32(a[i]); });
}

}  // namespace tern::quant

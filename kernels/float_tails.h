// The scalar pieces of llama.cpp's float dots (quant/float_dot.h) that the x86 and NEON float
// matmul kernels share. Plain C++ with internal linkage and standard headers only, so that ISA
// files may include it; like every kernel object, they are built with -ffp-contract=off.
#pragma once

#include <cstdint>
#include <cstring>

namespace tern::kernels {
namespace {

// ggml_vec_dot_f32's leftovers [np, n) added to sum in f32: groups of 16 and one of 8 as rounded
// products (GCC's vectorised loop), the rest fused (its scalar epilogue).
inline float f32_dot_tail(float sum, const float* w, const float* x, int64_t np, int64_t n) {
  const int64_t left = n - np;
  const int64_t rounded_end = np + left / 16 * 16 + (left % 16 >= 8 ? 8 : 0);
  int64_t i = np;
  for (; i < rounded_end; ++i) sum += w[i] * x[i];
  for (; i < n; ++i) sum = __builtin_fmaf(w[i], x[i], sum);
  return sum;
}

inline float bf16_at(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

}  // namespace
}  // namespace tern::kernels

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

// The leftovers as the float tiles' tail policies. F16Tail's Half is the ISA's exact conversion
// of one fp16 value.
struct F32Tail {
  static float tail(float sum, const float* w, const float* x, int64_t np, int64_t n) {
    return f32_dot_tail(sum, w, x, np, n);
  }
};

// ggml_vec_dot_f16's: the vector sum and the leftovers' exact products in double.
template <float (*Half)(const uint16_t*)>
struct F16Tail {
  static float tail(float sum, const uint16_t* w, const uint16_t* x, int64_t np, int64_t n) {
    double s = static_cast<double>(sum);
    for (int64_t i = np; i < n; ++i) s += static_cast<double>(Half(w + i) * Half(x + i));
    return static_cast<float>(s);
  }
};

inline float bf16_at(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

}  // namespace
}  // namespace tern::kernels

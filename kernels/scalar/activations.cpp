// Scalar reference activations of the GPT-2 and BitNet FFNs: GELU through ggml's fp16 table, and
// squared ReLU. Also builds that table (once), which the ISA kernels read too.
#include <array>
#include <cmath>
#include <cstdint>

#include "kernels/scalar/gelu_fp16.h"
#include "kernels/scalar/scalar.h"
#include "quant/fp16.h"

namespace tern::kernels {
namespace {

// ggml_gelu_f32 as llama.cpp's x86 build compiles it (GCC, -O3 -march=native, C with the default
// -ffp-contract=fast): 1 + 0.044715*x*x becomes one FMA; nothing else can fuse. Checked against
// llama.cpp's gelu op on every finite half in (-10, 10): the unfused form differs on one input.
float gelu_tanh(float x) {
  constexpr float kCoefA = 0.044715f;
  constexpr float kSqrt2OverPi = 0.79788456080286535587989211986876f;
  const float inner = std::fma(kCoefA * x, x, 1.0f);
  return 0.5f * x * (1.0f + std::tanh((kSqrt2OverPi * x) * inner));
}

std::array<float, 65536> build_gelu_table() {
  std::array<float, 65536> t{};
  for (uint32_t h = 0; h < t.size(); ++h) {
    const float x = fp16_to_fp32(static_cast<uint16_t>(h));
    t[h] = fp16_to_fp32(fp32_to_fp16(gelu_tanh(x)));
  }
  return t;
}

}  // namespace

const float* gelu_fp16_table() {
  static const std::array<float, 65536> table = build_gelu_table();
  return table.data();
}

namespace scalar {

void gelu(const float* x, float* y, int64_t n) {
  const float* table = gelu_fp16_table();
  for (int64_t i = 0; i < n; ++i) y[i] = gelu_fp16(x[i], table);
}

void relu_sqr(const float* x, float* y, int64_t n) {
  // ggml_vec_relu_f32 (x > 0 ? x : 0, so -0 and NaN give +0), then ggml_vec_sqr_f32.
  for (int64_t i = 0; i < n; ++i) {
    const float r = x[i] > 0.0f ? x[i] : 0.0f;
    y[i] = r * r;
  }
}

}  // namespace scalar
}  // namespace tern::kernels

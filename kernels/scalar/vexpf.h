// ggml's vectorised exp (ggml_v_expf, AVX-512 version), one lane at a time. llama.cpp's CPU
// softmax and SiLU run it on every full group of 16 elements and libm's expf only on the rest;
// it is accurate to about 1.5 ulp, so it differs from expf on many inputs and the reference must
// compute the same approximation to stay token-identical.
#pragma once

#include <cmath>
#include <limits>

namespace tern::kernels::scalar {

// Each std::fma is one of the kernel's _mm512_fmadd_ps / _mm512_fnmadd_ps. The file including
// this is built with -ffp-contract=off, so the remaining multiplies and adds round on their own.
inline float ggml_v_expf(float x) {
  const float r = 0x1.8p23f;
  const float z = std::fma(x, 0x1.715476p+0f, r);
  const float n = z - r;  // x / ln 2 rounded to an integer
  const float b = std::fma(-n, 0x1.7f7d1cp-20f, std::fma(-n, 0x1.62e4p-1f, x));
  const float u = b * b;
  const float j = std::fma(std::fma(std::fma(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u,
                                    std::fma(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                           u, std::fma(0x1.ffffecp-1f, b, 1.0f));
  if (std::isnan(n)) return n;
  if (std::fabs(n) > 192.0f) return n <= 0.0f ? 0.0f : std::numeric_limits<float>::infinity();
  // _mm512_scalef_ps(j, n) = j * 2^n rounded once (subnormal and overflowing results included),
  // which is what ldexp does; n is an integer here.
  return std::ldexp(j, static_cast<int>(n));
}

// ggml_v_silu on one lane: x / (1 + v_expf(0 - x)).
inline float ggml_v_silu(float x) {
  return x / (1.0f + ggml_v_expf(0.0f - x));
}

}  // namespace tern::kernels::scalar

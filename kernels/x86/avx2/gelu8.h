// GELU of 8 lanes through ggml's fp16 table, shared by activations.cpp and the fused
// LayerNorm + GELU + add of layer_norm.cpp; private to each translation unit (anonymous namespace).
#pragma once

#include "kernels/x86/intrinsics.h"

namespace tern::kernels::avx2 {
namespace {

// vcvtps2ph rounds to nearest even like ggml's _cvtss_sh(x, 0); every index is a half, so the
// gather stays inside the 65536 entries whatever x is. Lanes outside (-10, 10) are then replaced.
inline __m256 gelu8(__m256 x, const float* table) {
  const __m256i h = _mm256_cvtepu16_epi32(_mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT));
  const __m256 t = _mm256_i32gather_ps(table, h, 4);
  const __m256 low = _mm256_cmp_ps(x, _mm256_set1_ps(-10.0f), _CMP_LE_OQ);
  const __m256 high = _mm256_cmp_ps(x, _mm256_set1_ps(10.0f), _CMP_GE_OQ);
  return _mm256_andnot_ps(low, _mm256_blendv_ps(t, x, high));
}

}  // namespace
}  // namespace tern::kernels::avx2

// GELU of 16 lanes through ggml's fp16 table, shared by activations.cpp and the fused
// LayerNorm + GELU + add of layer_norm.cpp; private to each translation unit (anonymous namespace).
#pragma once

#include "kernels/x86/intrinsics.h"

namespace tern::kernels::avx512 {
namespace {

// vcvtps2ph rounds to nearest even like ggml's _cvtss_sh(x, 0); every index is a half, so the
// gather stays inside the 65536 entries whatever x is. Lanes outside (-10, 10) are then replaced.
inline __m512 gelu16(__m512 x, const float* table) {
  const __m512i h = _mm512_cvtepu16_epi32(_mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT));
  const __m512 t = _mm512_i32gather_ps(h, table, 4);
  const __mmask16 low = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-10.0f), _CMP_LE_OQ);
  const __mmask16 high = _mm512_cmp_ps_mask(x, _mm512_set1_ps(10.0f), _CMP_GE_OQ);
  return _mm512_maskz_mov_ps(static_cast<__mmask16>(~low), _mm512_mask_mov_ps(t, high, x));
}

}  // namespace
}  // namespace tern::kernels::avx512

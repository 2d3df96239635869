// One element of ggml's table GELU, inlined by scalar::gelu and scalar::layer_norm_gelu_add.
// Generic code only (no ISA flags): the per-ISA directories must not include this.
#pragma once

#include "quant/fp16.h"

namespace tern::kernels::scalar {

// ggml_vec_gelu_f32 with GGML_GELU_FP16 (defined unconditionally in ggml-cpu.c): the table
// (gelu_fp16_table()) only strictly between -10 and 10; beyond, GELU is within 1e-21 of 0 and of
// x.
inline float gelu_fp16(float x, const float* table) {
  if (x <= -10.0f) return 0.0f;
  if (x >= 10.0f) return x;
  return table[fp32_to_fp16(x)];
}

}  // namespace tern::kernels::scalar

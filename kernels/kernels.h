// The kernel dispatch table: every hot operation the engine runs, as function pointers chosen
// once at start-up. Kernels are pure: pointers, sizes and a row range in; no allocation, threads,
// logging or exceptions. Only the scalar reference exists so far; per-ISA tables override it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "quant/types.h"

namespace tern::kernels {

// y[m * ldy + r] = dot(W row r, x row m) for r in [r0, r1) and m in [0, n_x).
// W has n_rows rows of `w_stride` bytes of `w_type`; x rows are `x_stride` bytes of
// w_type.vec_dot_type (already converted with that type's from_float); k is the row length in
// elements. Each dot rounds like the kernel llama.cpp's x86 CPU backend picks for the whole
// product (select_matmul_dot in quant/types.h): that choice depends on the matrix's total row
// count and on the batch size n_x, not only on the rows this call computes.
using MatmulFn = void (*)(const TypeTraits& w_type, const std::byte* w, size_t w_stride,
                          int64_t n_rows, const std::byte* x, size_t x_stride, int64_t n_x,
                          int64_t k, float* y, int64_t ldy, int64_t r0, int64_t r1);

// y = (x * 1/sqrt(mean(x^2) + eps)) * w, as llama.cpp's rms_norm followed by mul.
using RmsNormFn = void (*)(const float* x, const float* w, float* y, int64_t n, float eps);

// Rotates adjacent pairs (x[2i], x[2i+1]) of the first 2*n_pairs elements of each of n_heads heads
// (head_dim apart) by the angles whose cos/sin are given per pair.
using RopeFn = void (*)(float* x, int64_t n_heads, int64_t head_dim, const float* cos_sin,
                        int64_t n_pairs);

// out = silu(gate) * up, element-wise, over one row of n elements (llama.cpp computes SiLU in
// 16-element vectors from the start of the row, with its own exp, and the tail with expf).
using SiluMulFn = void (*)(const float* gate, const float* up, float* out, int64_t n);

// One query head over n_pos cached positions of fp16 keys/values (pos stride in elements):
// scores = (q16 . k16) * scale, softmax, then out = sum p16 * v16; q and the probabilities are
// rounded to fp16 as llama.cpp does with an F16 KV cache. `scratch` holds n_pos floats.
// To round like llama.cpp the kernel also needs the shape of llama.cpp's attention graph:
// n_kv >= n_pos is the number of cache cells it spans (positions n_pos.. are masked out and their
// values are zero; they are not read), and n_batch the number of tokens in the forward pass (a
// batch of two or more is multiplied by llamafile's sgemm, which associates differently from
// ggml_vec_dot_f16).
using AttentionFn = void (*)(const float* q, const uint16_t* k, size_t k_pos_stride,
                             const uint16_t* v, size_t v_pos_stride, int64_t n_pos, int64_t n_kv,
                             int64_t n_batch, int64_t head_dim, float scale, float* out,
                             float* scratch);

struct KernelTable {
  std::string_view isa;
  MatmulFn matmul;
  RmsNormFn rms_norm;
  RopeFn rope;
  SiluMulFn silu_mul;
  AttentionFn attention;
};

// The scalar reference table: always built, the specification for every other ISA.
const KernelTable& scalar_table();
// The table in use (chosen once; the scalar one until per-ISA tables exist).
const KernelTable& active_table();

}  // namespace tern::kernels

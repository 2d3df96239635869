// Declarations of the scalar reference kernels (kernels/scalar/*.cpp), the entries of
// scalar_table().
#pragma once

#include "kernels/kernels.h"

namespace tern::kernels::scalar {

void matmul(const TypeTraits& w_type, const std::byte* w, size_t w_stride, int64_t n_rows,
            const std::byte* x, size_t x_stride, int64_t n_x, int64_t k, float* y, int64_t ldy,
            int64_t r0, int64_t r1);
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps);
void rope(float* x, int64_t n_heads, int64_t head_dim, const float* cos_sin, int64_t n_pairs);
void silu_mul(const float* gate, const float* up, float* out, int64_t n);
void softmax(float* x, int64_t n, int64_t n_span);
void attention(const float* q, const uint16_t* k, size_t k_pos_stride, const uint16_t* v,
               size_t v_pos_stride, int64_t n_pos, int64_t n_kv, int64_t n_batch, int64_t head_dim,
               float scale, float* out, float* scratch);
void layer_norm(const float* x, const float* w, const float* b, float* y, int64_t n, float eps);
void add_layer_norm(const float* x, const float* r, float* sum, const float* w, const float* b,
                    float* y, int64_t n, float eps);
void gelu(const float* x, float* y, int64_t n);
void relu_sqr(const float* x, float* y, int64_t n);
void layer_norm_gelu_add(const float* x, const float* w, const float* b, const float* residual,
                         float* out, int64_t n, float eps);
// f32 -> fp16 rows (convert.cpp), the KernelTable entry of the same name.
void fp32_to_fp16_row(const float* x, uint16_t* y, int64_t n);

}  // namespace tern::kernels::scalar

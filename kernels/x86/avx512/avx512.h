// Entry points of the AVX-512 kernels (kernels/x86/avx512/*.cpp, built with -mavx512f/bw/vl/dq,
// -mavx512vnni, -mfma, -mf16c). Declarations and constants only: the generic table code includes
// this to take their addresses, and must not get any inline code compiled for AVX-512.
#pragma once

#include "kernels/kernels.h"

namespace tern::kernels::avx512 {

// Tiles of the ternary kernels, which read rows interleaved in fours (interleave_tq2_0_quad):
// kTq2RowTile weight rows x kTq2ColTile activation rows per step, the same rows for one
// activation row (decode). Batches of kTq2PackMinCols activation rows or more unpack each tile of
// rows once for the whole batch instead of as they go (measured: equal at 128 rows, from 1.0x to
// 0.93x below 64).
inline constexpr int kTq2RowTile = 8;
inline constexpr int kTq2ColTile = 3;
inline constexpr int kTq2GemvRows = kTq2RowTile;
inline constexpr int kTq2PackMinCols = 64;
inline constexpr int kTq2InterleaveRows = 4;

// "matmul_tq2_0_q8_K__avx512" (and TQ1_0 repacked to TQ2_0 at load), on rows interleaved by:
void matmul_tq2_0_q8_K(const TypeTraits& w_type, const std::byte* w, size_t w_stride,
                       int64_t n_rows, const std::byte* x, size_t x_stride, int64_t n_x, int64_t k,
                       float* y, int64_t ldy, int64_t r0, int64_t r1);
// The same kernel built with GFNI (matmul_tq2_0_gfni.cpp): "matmul_tq2_0_q8_K__avx512_gfni".
void matmul_tq2_0_q8_K_gfni(const TypeTraits& w_type, const std::byte* w, size_t w_stride,
                            int64_t n_rows, const std::byte* x, size_t x_stride, int64_t n_x,
                            int64_t k, float* y, int64_t ldy, int64_t r0, int64_t r1);
// InterleaveRowsFn: kTq2InterleaveRows TQ2_0 rows to the layout matmul_tq2_0_q8_K reads.
void interleave_tq2_0_quad(const std::byte* rows, size_t stride, std::byte* dst, int64_t n);

// QuantizeRowFn (quantize_q8_k.cpp, quantize_q8_0.cpp).
void quantize_row_q8_K(const float* src, void* dst, int64_t n);
void quantize_row_q8_0(const float* src, void* dst, int64_t n);
void quantize_row_q8_1(const float* src, void* dst, int64_t n);

// "matmul_tq2_0_q8_K__avx512_lut": the same product by table lookup (an alternative entry; the
// tables of each activation row live in a per-thread heap buffer, about 130 KiB, allocated at
// the first call).
void matmul_tq2_0_q8_K_lut(const TypeTraits& w_type, const std::byte* w, size_t w_stride,
                           int64_t n_rows, const std::byte* x, size_t x_stride, int64_t n_x,
                           int64_t k, float* y, int64_t ldy, int64_t r0, int64_t r1);
// Its tile: weight rows per step (one per byte of a 128-bit table lookup), activation rows.
inline constexpr int kTq2LutRows = 16;
inline constexpr int kTq2LutCols = 2;

// Q8_0 kernels: register tile for batches, weight rows per step for one activation row.
inline constexpr int kQ8RowTile = 2;
inline constexpr int kQ8ColTile = 4;
inline constexpr int kQ8GemvRows = 4;

// "matmul_q8_0_q8_0__avx512".
void matmul_q8_0_q8_0(const TypeTraits& w_type, const std::byte* w, size_t w_stride, int64_t n_rows,
                      const std::byte* x, size_t x_stride, int64_t n_x, int64_t k, float* y,
                      int64_t ldy, int64_t r0, int64_t r1);

// Element-wise kernels (layer_norm.cpp, activations.cpp): LayerNormFn, AddLayerNormFn,
// ActivationFn and LayerNormGeluAddFn of kernels/kernels.h.
void layer_norm(const float* x, const float* w, const float* b, float* y, int64_t n, float eps);
void add_layer_norm(const float* x, const float* r, float* sum, const float* w, const float* b,
                    float* y, int64_t n, float eps);
void gelu(const float* x, float* y, int64_t n);
void relu_sqr(const float* x, float* y, int64_t n);
// Element-wise kernels and attention, the KernelTable entries of the same names
// (elementwise.cpp, attention.cpp).
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps);
void rope(float* x, int64_t n_heads, int64_t head_dim, const float* cos_sin, int64_t n_pairs);
void silu_mul(const float* gate, const float* up, float* out, int64_t n);
void softmax(float* x, int64_t n, int64_t n_span);
void attention(const float* q, const uint16_t* k, size_t k_pos_stride, const uint16_t* v,
               size_t v_pos_stride, int64_t n_pos, int64_t n_kv, int64_t n_batch, int64_t head_dim,
               float scale, float* out, float* scratch);
void layer_norm_gelu_add(const float* x, const float* w, const float* b, const float* residual,
                         float* out, int64_t n, float eps);
// Q4_0 kernels, tiles of the repacked order (matrices of a multiple of 8 rows; the others run
// the 8-lane order with tiles of their own): rows x activation rows, rows for one activation row.
inline constexpr int kQ4RowTile = 16;
inline constexpr int kQ4ColTile = 8;
inline constexpr int kQ4GemvRows = 16;
// Q4_0 matrices of a multiple of 8 rows are interleaved at load in groups of 16 rows
// (interleave_q4_0_rows16) and multiplied in llama.cpp's repacked order; the others are read as
// the file has them (the 8-lane vec_dot order).
inline constexpr int kQ4InterleaveRows = 16;
inline constexpr int kQ4InterleaveRowMultiple = 8;
void interleave_q4_0_rows16(const std::byte* rows, size_t stride, std::byte* dst, int64_t n);

// "matmul_q4_0_q8_0__avx512".
void matmul_q4_0_q8_0(const TypeTraits& w_type, const std::byte* w, size_t w_stride, int64_t n_rows,
                      const std::byte* x, size_t x_stride, int64_t n_x, int64_t k, float* y,
                      int64_t ldy, int64_t r0, int64_t r1);
// f32 -> fp16 rows (convert.cpp), the KernelTable entry of the same name.
void fp32_to_fp16_row(const float* x, uint16_t* y, int64_t n);

// F32, F16 and BF16 kernels (matmul_float.cpp): register tile of the tinyBLAS order (batches), rows
// per step of the vec_dot order (one activation row, and batches tinyBLAS declines).
inline constexpr int kFloatRowTile = 4;
inline constexpr int kFloatColTile = 4;
inline constexpr int kFloatGemvRows = 4;

// "matmul_f32_f32__avx512", "matmul_f16_f16__avx512" and "matmul_bf16_bf16__avx512".
extern const MatmulFn matmul_f32_f32;
extern const MatmulFn matmul_f16_f16;
extern const MatmulFn matmul_bf16_bf16;

// Q4_K, Q5_K and Q6_K kernels (matmul_kquants.cpp): register tile for batches, weight rows per
// step for one activation row (measured alike for the three types).
inline constexpr int kKQuantRowTile = 4;
inline constexpr int kKQuantColTile = 4;
inline constexpr int kKQuantGemvRows = 2;

// "matmul_q4_K_q8_K__avx512", "matmul_q5_K_q8_K__avx512" and "matmul_q6_K_q8_K__avx512".
void matmul_q4_K_q8_K(const TypeTraits& w_type, const std::byte* w, size_t w_stride, int64_t n_rows,
                      const std::byte* x, size_t x_stride, int64_t n_x, int64_t k, float* y,
                      int64_t ldy, int64_t r0, int64_t r1);
void matmul_q5_K_q8_K(const TypeTraits& w_type, const std::byte* w, size_t w_stride, int64_t n_rows,
                      const std::byte* x, size_t x_stride, int64_t n_x, int64_t k, float* y,
                      int64_t ldy, int64_t r0, int64_t r1);
void matmul_q6_K_q8_K(const TypeTraits& w_type, const std::byte* w, size_t w_stride, int64_t n_rows,
                      const std::byte* x, size_t x_stride, int64_t n_x, int64_t k, float* y,
                      int64_t ldy, int64_t r0, int64_t r1);
// The Q6_K kernel on dense codes (matmul_q6_k_dense.cpp, built with -mavx512vbmi): rows repacked
// at load by quant::repack_q6_K_dense_codes. "matmul_q6_K_q8_K__avx512_vbmi".
void matmul_q6_K_q8_K_dense(const TypeTraits& w_type, const std::byte* w, size_t w_stride,
                            int64_t n_rows, const std::byte* x, size_t x_stride, int64_t n_x,
                            int64_t k, float* y, int64_t ldy, int64_t r0, int64_t r1);

// "matmul_<w>_<vec_dot_type>__avx512" for the 32-weight block types of matmul_block32.cpp (with
// the Q8_0 kernels' tiles): the kernel for weights of that type, nullptr for other types.
MatmulFn block32_matmul(TensorType type);

}  // namespace tern::kernels::avx512

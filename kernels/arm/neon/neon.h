// Entry points of the NEON kernels (kernels/arm/neon/*.cpp, AArch64 base ISA). Each matmul comes
// twice: built for any AArch64 CPU, and again with the dotprod extension (sdot) by dotprod.cpp as
// <name>_dotprod; the NEON table takes the _dotprod ones where HWCAP_ASIMDDP says the CPU has it.
// Declarations and constants only: the generic table code includes this to take their addresses.
#pragma once

#include "kernels/kernels.h"

namespace tern::kernels::neon {

// Register tiles: weight rows x activation rows per step (batches of 2 or more); a single
// activation row runs k...GemvRows weight rows per step.
inline constexpr int kTq2RowTile = 2;
inline constexpr int kTq2ColTile = 2;
inline constexpr int kTq2GemvRows = 4;

inline constexpr int kQ8RowTile = 2;
inline constexpr int kQ8ColTile = 2;
inline constexpr int kQ8GemvRows = 4;

// Q4_0 rounds in one of two orders depending on the matrix's row count (select_matmul_dot: a
// multiple of 8 is llama.cpp's repacked path); 8 rows per decode step puts both in the tests'
// sweep.
inline constexpr int kQ4RowTile = 2;
inline constexpr int kQ4ColTile = 2;
inline constexpr int kQ4GemvRows = 8;

// "matmul_tq2_0_q8_K__neon" (and TQ1_0 repacked to TQ2_0 at load).
void matmul_tq2_0_q8_K(const TypeTraits& w_type, const std::byte* w, size_t w_stride,
                       int64_t n_rows, const std::byte* x, size_t x_stride, int64_t n_x, int64_t k,
                       float* y, int64_t ldy, int64_t r0, int64_t r1);
void matmul_tq2_0_q8_K_dotprod(const TypeTraits& w_type, const std::byte* w, size_t w_stride,
                               int64_t n_rows, const std::byte* x, size_t x_stride, int64_t n_x,
                               int64_t k, float* y, int64_t ldy, int64_t r0, int64_t r1);

// "matmul_q8_0_q8_0__neon".
void matmul_q8_0_q8_0(const TypeTraits& w_type, const std::byte* w, size_t w_stride, int64_t n_rows,
                      const std::byte* x, size_t x_stride, int64_t n_x, int64_t k, float* y,
                      int64_t ldy, int64_t r0, int64_t r1);
void matmul_q8_0_q8_0_dotprod(const TypeTraits& w_type, const std::byte* w, size_t w_stride,
                              int64_t n_rows, const std::byte* x, size_t x_stride, int64_t n_x,
                              int64_t k, float* y, int64_t ldy, int64_t r0, int64_t r1);

// "matmul_q4_0_q8_0__neon".
void matmul_q4_0_q8_0(const TypeTraits& w_type, const std::byte* w, size_t w_stride, int64_t n_rows,
                      const std::byte* x, size_t x_stride, int64_t n_x, int64_t k, float* y,
                      int64_t ldy, int64_t r0, int64_t r1);
void matmul_q4_0_q8_0_dotprod(const TypeTraits& w_type, const std::byte* w, size_t w_stride,
                              int64_t n_rows, const std::byte* x, size_t x_stride, int64_t n_x,
                              int64_t k, float* y, int64_t ldy, int64_t r0, int64_t r1);

// Q4_K, Q5_K and Q6_K x Q8_K (matmul_kquants.cpp): "matmul_q4_K_q8_K__neon" and so on.
inline constexpr int kKQuantRowTile = 2;
inline constexpr int kKQuantColTile = 2;
inline constexpr int kKQuantGemvRows = 4;

void matmul_q4_K_q8_K(const TypeTraits& w_type, const std::byte* w, size_t w_stride, int64_t n_rows,
                      const std::byte* x, size_t x_stride, int64_t n_x, int64_t k, float* y,
                      int64_t ldy, int64_t r0, int64_t r1);
void matmul_q4_K_q8_K_dotprod(const TypeTraits& w_type, const std::byte* w, size_t w_stride,
                              int64_t n_rows, const std::byte* x, size_t x_stride, int64_t n_x,
                              int64_t k, float* y, int64_t ldy, int64_t r0, int64_t r1);
void matmul_q5_K_q8_K(const TypeTraits& w_type, const std::byte* w, size_t w_stride, int64_t n_rows,
                      const std::byte* x, size_t x_stride, int64_t n_x, int64_t k, float* y,
                      int64_t ldy, int64_t r0, int64_t r1);
void matmul_q5_K_q8_K_dotprod(const TypeTraits& w_type, const std::byte* w, size_t w_stride,
                              int64_t n_rows, const std::byte* x, size_t x_stride, int64_t n_x,
                              int64_t k, float* y, int64_t ldy, int64_t r0, int64_t r1);
void matmul_q6_K_q8_K(const TypeTraits& w_type, const std::byte* w, size_t w_stride, int64_t n_rows,
                      const std::byte* x, size_t x_stride, int64_t n_x, int64_t k, float* y,
                      int64_t ldy, int64_t r0, int64_t r1);
void matmul_q6_K_q8_K_dotprod(const TypeTraits& w_type, const std::byte* w, size_t w_stride,
                              int64_t n_rows, const std::byte* x, size_t x_stride, int64_t n_x,
                              int64_t k, float* y, int64_t ldy, int64_t r0, int64_t r1);

// F32, F16 and BF16 in llama.cpp's vec_dot and tinyBLAS orders (matmul_float.cpp):
// "matmul_f32_f32__neon" and so on. A vec_dot row keeps 16 float32x4 accumulators (F32, F16),
// so it runs one row per step.
inline constexpr int kFloatRowTile = 2;
inline constexpr int kFloatColTile = 2;
inline constexpr int kFloatGemvRows = 1;

void matmul_f32_f32(const TypeTraits& w_type, const std::byte* w, size_t w_stride, int64_t n_rows,
                    const std::byte* x, size_t x_stride, int64_t n_x, int64_t k, float* y,
                    int64_t ldy, int64_t r0, int64_t r1);
void matmul_f32_f32_dotprod(const TypeTraits& w_type, const std::byte* w, size_t w_stride,
                            int64_t n_rows, const std::byte* x, size_t x_stride, int64_t n_x,
                            int64_t k, float* y, int64_t ldy, int64_t r0, int64_t r1);
void matmul_f16_f16(const TypeTraits& w_type, const std::byte* w, size_t w_stride, int64_t n_rows,
                    const std::byte* x, size_t x_stride, int64_t n_x, int64_t k, float* y,
                    int64_t ldy, int64_t r0, int64_t r1);
void matmul_f16_f16_dotprod(const TypeTraits& w_type, const std::byte* w, size_t w_stride,
                            int64_t n_rows, const std::byte* x, size_t x_stride, int64_t n_x,
                            int64_t k, float* y, int64_t ldy, int64_t r0, int64_t r1);
void matmul_bf16_bf16(const TypeTraits& w_type, const std::byte* w, size_t w_stride, int64_t n_rows,
                      const std::byte* x, size_t x_stride, int64_t n_x, int64_t k, float* y,
                      int64_t ldy, int64_t r0, int64_t r1);
void matmul_bf16_bf16_dotprod(const TypeTraits& w_type, const std::byte* w, size_t w_stride,
                              int64_t n_rows, const std::byte* x, size_t x_stride, int64_t n_x,
                              int64_t k, float* y, int64_t ldy, int64_t r0, int64_t r1);

// Q5_0 x Q8_0, Q5_1 x Q8_1 (matmul_q5.cpp) and MXFP4 x Q8_0 (matmul_mxfp4.cpp): block32.h's tile.
inline constexpr int kQ5RowTile = 2;
inline constexpr int kQ5ColTile = 2;
inline constexpr int kQ5GemvRows = 4;
inline constexpr int kMxfp4RowTile = 2;
inline constexpr int kMxfp4ColTile = 2;
inline constexpr int kMxfp4GemvRows = 4;

void matmul_q5_0_q8_0(const TypeTraits& w_type, const std::byte* w, size_t w_stride, int64_t n_rows,
                      const std::byte* x, size_t x_stride, int64_t n_x, int64_t k, float* y,
                      int64_t ldy, int64_t r0, int64_t r1);
void matmul_q5_0_q8_0_dotprod(const TypeTraits& w_type, const std::byte* w, size_t w_stride,
                              int64_t n_rows, const std::byte* x, size_t x_stride, int64_t n_x,
                              int64_t k, float* y, int64_t ldy, int64_t r0, int64_t r1);
void matmul_q5_1_q8_1(const TypeTraits& w_type, const std::byte* w, size_t w_stride, int64_t n_rows,
                      const std::byte* x, size_t x_stride, int64_t n_x, int64_t k, float* y,
                      int64_t ldy, int64_t r0, int64_t r1);
void matmul_q5_1_q8_1_dotprod(const TypeTraits& w_type, const std::byte* w, size_t w_stride,
                              int64_t n_rows, const std::byte* x, size_t x_stride, int64_t n_x,
                              int64_t k, float* y, int64_t ldy, int64_t r0, int64_t r1);
void matmul_mxfp4_q8_0(const TypeTraits& w_type, const std::byte* w, size_t w_stride,
                       int64_t n_rows, const std::byte* x, size_t x_stride, int64_t n_x, int64_t k,
                       float* y, int64_t ldy, int64_t r0, int64_t r1);
void matmul_mxfp4_q8_0_dotprod(const TypeTraits& w_type, const std::byte* w, size_t w_stride,
                               int64_t n_rows, const std::byte* x, size_t x_stride, int64_t n_x,
                               int64_t k, float* y, int64_t ldy, int64_t r0, int64_t r1);

// BFP8 x BFP8 (matmul_bfp8.cpp).
inline constexpr int kBfp8RowTile = 2;
inline constexpr int kBfp8ColTile = 2;
inline constexpr int kBfp8GemvRows = 4;

void matmul_bfp8_bfp8(const TypeTraits& w_type, const std::byte* w, size_t w_stride, int64_t n_rows,
                      const std::byte* x, size_t x_stride, int64_t n_x, int64_t k, float* y,
                      int64_t ldy, int64_t r0, int64_t r1);
void matmul_bfp8_bfp8_dotprod(const TypeTraits& w_type, const std::byte* w, size_t w_stride,
                              int64_t n_rows, const std::byte* x, size_t x_stride, int64_t n_x,
                              int64_t k, float* y, int64_t ldy, int64_t r0, int64_t r1);

// RMSNorm, RoPE, SiLU-gated multiply and softmax (elementwise.cpp): RmsNormFn, RopeFn, SiluMulFn
// and SoftmaxFn of kernels/kernels.h.
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps);
void rope(float* x, int64_t n_heads, int64_t head_dim, const float* cos_sin, int64_t n_pairs);
void silu_mul(const float* gate, const float* up, float* out, int64_t n);
void softmax(float* x, int64_t n, int64_t n_span);

// Element-wise kernels (layer_norm.cpp, activations.cpp): LayerNormFn, AddLayerNormFn,
// ActivationFn and LayerNormGeluAddFn of kernels/kernels.h.
void layer_norm(const float* x, const float* w, const float* b, float* y, int64_t n, float eps);
void add_layer_norm(const float* x, const float* r, float* sum, const float* w, const float* b,
                    float* y, int64_t n, float eps);
void gelu(const float* x, float* y, int64_t n);
void relu_sqr(const float* x, float* y, int64_t n);
void layer_norm_gelu_add(const float* x, const float* w, const float* b, const float* residual,
                         float* out, int64_t n, float eps);

// Attention over the fp16 KV cache (attention.cpp): AttentionFn; calls this table's softmax.
void attention(const float* q, const uint16_t* k, size_t k_pos_stride, const uint16_t* v,
               size_t v_pos_stride, int64_t n_pos, int64_t n_kv, int64_t n_batch, int64_t head_dim,
               float scale, float* out, float* scratch);

// The KV cache store (convert.cpp): Fp32ToFp16RowFn.
void fp32_to_fp16_row(const float* x, uint16_t* y, int64_t n);

// Activation rows to Q8_K (quantize_q8_k.cpp): the from_float of TQ2_0, TQ1_0 and the K-quants.
void quantize_row_q8_K(const float* src, void* dst, int64_t n);
// QuantizeRowFn: activation rows to Q8_0 and Q8_1 (quantize_q8_0.cpp).
void quantize_row_q8_0(const float* src, void* dst, int64_t n);
void quantize_row_q8_1(const float* src, void* dst, int64_t n);

}  // namespace tern::kernels::neon

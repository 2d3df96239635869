// The traits table: one row per tensor type tern knows, and the lookups over it.
// Only data and lookups here; each format's functions live in its own file.
#include <array>
#include <cstdlib>

#include "quant/blocks.h"
#include "quant/formats.h"
#include "quant/kquants.h"
#include "quant/q5.h"
#include "quant/types.h"

namespace tern {

namespace {

using TT = TensorType;

// Ordered by GGUF type id. vec_dot_type and from_float mirror llama.cpp's CPU type_traits.
// vec_dot_sgemm and vec_dot_repacked are left out (nullptr) where llama.cpp has no such kernel.
constexpr std::array<TypeTraits, 16> kTypeTraits = {{
    {TT::F32, "f32", 1, sizeof(float), false, TT::F32, quant::dequantize_row_f32,
     quant::quantize_row_f32, quant::quantize_row_f32, quant::vec_dot_f32,
     quant::vec_dot_f32_sgemm},
    {TT::F16, "f16", 1, sizeof(uint16_t), false, TT::F16, quant::dequantize_row_f16,
     quant::quantize_row_f16, quant::quantize_row_f16, quant::vec_dot_f16,
     quant::vec_dot_f16_sgemm},
    {TT::Q4_0, "q4_0", kQk4_0, sizeof(BlockQ4_0), true, TT::Q8_0, quant::dequantize_row_q4_0,
     quant::quantize_row_q4_0, quant::quantize_row_q4_0, quant::vec_dot_q4_0_q8_0, nullptr,
     quant::vec_dot_q4_0_q8_0_repacked},
    // llamafile's tinyBLAS also takes Q5_0 batches; it rounds like vec_dot (no vec_dot_sgemm).
    {TT::Q5_0, "q5_0", kQk5_0, sizeof(BlockQ5_0), true, TT::Q8_0, quant::dequantize_row_q5_0,
     quant::quantize_row_q5_0, quant::quantize_row_q5_0, quant::vec_dot_q5_0_q8_0},
    {TT::Q5_1, "q5_1", kQk5_1, sizeof(BlockQ5_1), true, TT::Q8_1, quant::dequantize_row_q5_1,
     quant::quantize_row_q5_1, quant::quantize_row_q5_1, quant::vec_dot_q5_1_q8_1},
    {TT::Q8_0, "q8_0", kQk8_0, sizeof(BlockQ8_0), true, TT::Q8_0, quant::dequantize_row_q8_0,
     quant::quantize_row_q8_0, quant::quantize_row_q8_0_activation, quant::vec_dot_q8_0_q8_0},
    // Activation-only (Q5_1's): no file weights, no dot of its own.
    {TT::Q8_1, "q8_1", kQk8_1, sizeof(BlockQ8_1), true, TT::Q8_1, quant::dequantize_row_q8_1,
     nullptr, quant::quantize_row_q8_1, nullptr},
    {TT::Q4_K, "q4_K", kQkK, sizeof(BlockQ4_K), true, TT::Q8_K, quant::dequantize_row_q4_K,
     quant::quantize_row_q4_K, quant::quantize_row_q4_K, quant::vec_dot_q4_K_q8_K},
    {TT::Q5_K, "q5_K", kQkK, sizeof(BlockQ5_K), true, TT::Q8_K, quant::dequantize_row_q5_K,
     quant::quantize_row_q5_K, quant::quantize_row_q5_K, quant::vec_dot_q5_K_q8_K},
    {TT::Q6_K, "q6_K", kQkK, sizeof(BlockQ6_K), true, TT::Q8_K, quant::dequantize_row_q6_K,
     quant::quantize_row_q6_K, quant::quantize_row_q6_K, quant::vec_dot_q6_K_q8_K},
    // Activation-only: no file weights, no dot of its own.
    {TT::Q8_K, "q8_K", kQkK, sizeof(BlockQ8_K), true, TT::Q8_K, quant::dequantize_row_q8_K, nullptr,
     quant::quantize_row_q8_K, nullptr},
    {TT::BF16, "bf16", 1, sizeof(uint16_t), false, TT::BF16, quant::dequantize_row_bf16,
     quant::quantize_row_bf16, quant::quantize_row_bf16, quant::vec_dot_bf16,
     quant::vec_dot_bf16_sgemm},
    {TT::TQ1_0, "tq1_0", kQkK, sizeof(BlockTQ1_0), true, TT::Q8_K, quant::dequantize_row_tq1_0,
     quant::quantize_row_tq1_0, quant::quantize_row_tq1_0, quant::vec_dot_tq1_0_q8_K},
    {TT::TQ2_0, "tq2_0", kQkK, sizeof(BlockTQ2_0), true, TT::Q8_K, quant::dequantize_row_tq2_0,
     quant::quantize_row_tq2_0, quant::quantize_row_tq2_0, quant::vec_dot_tq2_0_q8_K},
    {TT::MXFP4, "mxfp4", kQkMxfp4, sizeof(BlockMxfp4), true, TT::Q8_0, quant::dequantize_row_mxfp4,
     quant::quantize_row_mxfp4, quant::quantize_row_mxfp4, quant::vec_dot_mxfp4_q8_0},
    {TT::BFP8, "bfp8", kQkBfp8, sizeof(BlockBfp8), true, TT::BFP8, quant::dequantize_row_bfp8,
     quant::quantize_row_bfp8, quant::quantize_row_bfp8, quant::vec_dot_bfp8_bfp8},
}};

constexpr char ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

constexpr bool equals_ignore_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

}  // namespace

const TypeTraits* find_type_traits(uint32_t gguf_type_id) {
  for (const TypeTraits& t : kTypeTraits) {
    if (static_cast<uint32_t>(t.type) == gguf_type_id) return &t;
  }
  return nullptr;
}

const TypeTraits& type_traits(TensorType type) {
  const TypeTraits* t = find_type_traits(static_cast<uint32_t>(type));
  // A TensorType not in the table can only come from casting an unchecked id: a programming
  // error, since file ids go through find_type_traits.
  if (t == nullptr) std::abort();
  return *t;
}

VecDotFn select_matmul_dot(const TypeTraits& w, int64_t n_rows, int64_t k, int64_t n_x) {
  // ggml_aarch64_get_optimal_repack_type: Q4_0 with a row count divisible by 8 is repacked on
  // AVX2 machines, and then always multiplied by the interleaved gemv/gemm kernels.
  if (w.vec_dot_repacked != nullptr && n_rows % 8 == 0) return w.vec_dot_repacked;
  // ggml_compute_forward_mul_mat tries llamafile_sgemm first; it only takes batches of two or more
  // rows, and tinyBLAS<16, __m512> declines k % 16 != 0 and row counts not divisible by 4.
  // (The BF16 kernel, tinyBLAS<32, __m512, __m512bh>, steps 32 elements at a time.)
  const int64_t k_step = w.type == TensorType::BF16 ? 32 : 16;
  if (w.vec_dot_sgemm != nullptr && n_x >= 2 && k % k_step == 0 && n_rows % 4 == 0) {
    return w.vec_dot_sgemm;
  }
  return w.vec_dot;
}

std::span<const TypeTraits> all_type_traits() {
  return kTypeTraits;
}

std::optional<TensorType> parse_type_name(std::string_view name) {
  for (const TypeTraits& t : kTypeTraits) {
    if (equals_ignore_case(t.name, name)) return t.type;
  }
  return std::nullopt;
}

}  // namespace tern

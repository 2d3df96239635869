// Tensor element types: GGUF type ids and the traits table that generic code loops over.
// Must not grow kernels: the fast per-ISA paths live in kernels/, this is the specification.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace tern {

// Values are llama.cpp's GGUF type ids (ggml_type); they are stored in files.
enum class TensorType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
  BFP8 = 200,  // tern-internal block floating point (activations, KV cache); not a llama.cpp type
};

// Reference row functions. n is the number of elements and a multiple of block_elems.
using DequantizeRowFn = void (*)(const void* src, float* dst, int64_t n);
using QuantizeRowFn = void (*)(const float* src, void* dst, int64_t n);
// Dot product of one weight row (this type) with one activation row (vec_dot_type), n elements.
using VecDotFn = float (*)(int64_t n, const void* weights, const void* activations);

struct TypeTraits {
  TensorType type;
  std::string_view name;  // as llama.cpp prints it: "f32", "q4_0", "tq2_0", ...
  int64_t block_elems;    // elements per block (1 for float types)
  size_t block_bytes;     // bytes per block
  bool is_quantized;
  // The type the activation row is converted to before vec_dot, as llama.cpp's CPU path does.
  TensorType vec_dot_type;
  DequantizeRowFn dequantize_row;  // to f32; exact
  // Weight quantizer, bit-identical to llama.cpp's reference quantizer (what llama-quantize
  // writes). nullptr where the type is not a file weight type (Q8_K).
  QuantizeRowFn quantize_row;
  // Activation converter used when this type is some weight's vec_dot_type: bit-identical to
  // llama.cpp's x86 CPU from_float (which rounds differently from the reference quantizer for
  // Q8_0).
  QuantizeRowFn from_float;
  VecDotFn vec_dot;  // nullptr where the type is only an activation format (Q8_K)
  // llama.cpp's x86 CPU backend does not multiply every matrix with vec_dot (select_matmul_dot
  // says when). These dots have the same exact products, summed in the association of the kernel
  // it uses instead; nullptr where that kernel never runs for the type (its results equal
  // vec_dot's, as tinyBLAS's Q8_0/Q4_0 kernels do).
  VecDotFn vec_dot_sgemm = nullptr;     // llamafile tinyBLAS, batches of >= 2 rows (F32, F16:
                                        // n % 16 == 0; BF16: n % 32 == 0)
  VecDotFn vec_dot_repacked = nullptr;  // matrices repacked into 8-row interleaved blocks (Q4_0)
};

// Traits for a GGUF type id, or nullptr when tern does not know the id.
const TypeTraits* find_type_traits(uint32_t gguf_type_id);
const TypeTraits& type_traits(TensorType type);
std::span<const TypeTraits> all_type_traits();
// Parses "q4_0", "Q4_0", "tq2_0", ... (case-insensitive).
std::optional<TensorType> parse_type_name(std::string_view name);

// The dot llama.cpp's x86 CPU backend (AVX-512 build) computes every output of a matrix product
// with: a weight matrix of n_rows rows of k elements of type w, times a batch of n_x activation
// rows. Different kernels round differently, and greedy output is only token-identical with the
// same one.
VecDotFn select_matmul_dot(const TypeTraits& w, int64_t n_rows, int64_t k, int64_t n_x);

// Bytes of one row of n elements; n must be a multiple of the block size (checked by callers).
inline size_t row_bytes(const TypeTraits& t, int64_t n) {
  return static_cast<size_t>(n / t.block_elems) * t.block_bytes;
}

}  // namespace tern

// The kernel dispatch tables: every hot operation the engine runs, as function pointers, one table
// per ISA (scalar reference, AVX2, AVX-512, NEON), chosen once at start-up. Kernels are pure:
// pointers, sizes and a row range in; no allocation, threads, logging or exceptions. Must not grow
// kernel code: that lives in scalar/ and the per-ISA directories (x86/avx2, x86/avx512, arm/neon).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "quant/types.h"

namespace tern::kernels {

// y[m * ldy + r] = dot(W row r, x row m) for r in [r0, r1) and m in [0, n_x).
// W has n_rows rows of `w_stride` bytes of `w_type` (in the layout MatmulKernel::pack and
// ::interleave make, when the kernel has them: see pack_matrix); x rows are `x_stride` bytes of
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

// y = (x - mean(x)) / sqrt(var(x) + eps) * w + b over one row of n elements; w and b may each be
// null (no multiply, no add). llama.cpp's norm op (ggml_compute_forward_norm_f32) followed by its
// mul and add ops, each step rounded separately: mean = float(double sum of x in element order /
// n), var = float(double sum of float((x - mean)^2) in element order / n), scale =
// 1 / sqrtf(var + eps), y = (((x - mean) * scale) * w) + b. y may be x.
using LayerNormFn = void (*)(const float* x, const float* w, const float* b, float* y, int64_t n,
                             float eps);

// The residual add in front of a GPT-2 style LayerNorm, fused: sum = x + r, then
// y = layer_norm(sum, w, b, eps) exactly as LayerNormFn (llama.cpp's add op followed by norm, mul
// and add: the same bits as running them one after the other). GPT-2 has this pair twice per
// layer (attention output + residual -> ffn_norm; FFN output + residual -> the next attn_norm or
// output_norm); GELU cannot join it, since it sits between the up and down projections. sum may
// be x or r; y must not overlap sum.
using AddLayerNormFn = void (*)(const float* x, const float* r, float* sum, const float* w,
                                const float* b, float* y, int64_t n, float eps);

// Fused LayerNorm + GELU + residual add: out = residual + gelu(layer_norm(x, w, b, eps)), exactly
// that composition of LayerNormFn, gelu (below) and llama.cpp's add, each step rounded on its own:
// the same bits as running the three ops one after the other, without the intermediate rows. (No
// step of the GPT-2 graph as llama.cpp builds it: there GELU sits between the FFN's projections;
// AddLayerNormFn is the fusion that graph has.) out may be x or residual.
using LayerNormGeluAddFn = void (*)(const float* x, const float* w, const float* b,
                                    const float* residual, float* out, int64_t n, float eps);

// y = f(x) element-wise over n elements; y may be x. gelu: llama.cpp's GGML_GELU_FP16 path of
// ggml_vec_gelu_f32 (x <= -10: 0; x >= 10: x; otherwise gelu_fp16_table()[fp16 bits of x]; a NaN
// gives a NaN, whose bits may differ between ISAs). relu_sqr: ggml_relu then ggml_sqr,
// y = (x > 0 ? x : 0)^2 (BitNet b1.58's FFN activation).
using ActivationFn = void (*)(const float* x, float* y, int64_t n);

// ggml's GELU table, built once by generic code when the scalar table (which every other table
// starts from) is constructed, so no kernel call pays for it: entry h is the tanh-approximation
// GELU of the half h, rounded to half, widened to float. The ISA kernels gather from it.
const float* gelu_fp16_table();
// Softmax in place over x[0, n), as llama.cpp's soft_max with a causal mask: the row spans
// n_span >= n cells, and cells n.. are masked out (-inf: probability 0; they are neither read nor
// written). ggml sums exp in groups of 16 over the whole span, so the span changes the rounding.
using SoftmaxFn = void (*)(float* x, int64_t n, int64_t n_span);

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

// y[i] = x[i] rounded to IEEE half (round to nearest even, quant/fp16.h's fp32_to_fp16: every NaN
// becomes the canonical quiet NaN 0x7e00 with its sign) for i in [0, n): the KV cache store.
using Fp32ToFp16RowFn = void (*)(const float* x, uint16_t* y, int64_t n);

// Load-time repack of weight rows into the layout a matmul kernel reads (the file is never
// changed): n elements of one row in the file's layout to one row of packed_row_bytes(n) bytes.
using PackRowFn = void (*)(const void* src, void* dst, int64_t n);
// Load-time interleave of `interleave_rows` consecutive rows (each `stride` bytes, the layout
// after PackRowFn if any) into the kernel's layout: interleave_rows * stride bytes at dst.
using InterleaveRowsFn = void (*)(const std::byte* rows, size_t stride, std::byte* dst, int64_t n);
// Activation rows to a vec_dot type: the bytes of that type's TypeTraits::from_float.
using QuantizeRowFn = void (*)(const float* src, void* dst, int64_t n);
using PackedRowBytesFn = size_t (*)(int64_t n);

// The matrix product for one weight type. Kernel names say what, then how:
// <op>_<weights>_<activations>__<isa>, e.g. "matmul_tq2_0_q8_K__avx512"; tests and benchmarks
// reuse them, so `--benchmark_filter=__avx2` selects one ISA.
struct MatmulKernel {
  std::string_view name;
  MatmulFn fn = nullptr;  // nullptr: the type cannot be a weight matrix
  // Optional repack at load. When set, `fn` reads rows of packed_row_bytes(k) bytes produced by
  // `pack`, not the file's rows; the result is the same bits as the reference on the file's rows.
  PackRowFn pack = nullptr;
  PackedRowBytesFn packed_row_bytes = nullptr;
  // `pack` may write a row over itself (its rows have the file's size): rows the process owns
  // are then packed where they are, so that memory holds the matrix once.
  bool pack_in_place = false;
  // Optional interleave at load, after `pack`: groups of interleave_rows rows become one stream
  // (the matrix is padded with zero rows to a multiple); `fn` still takes the row stride and
  // reads row r inside group r / interleave_rows. Use pack_matrix rather than calling these.
  InterleaveRowsFn interleave = nullptr;
  int interleave_rows = 1;
  // Only matrices whose row count is a multiple of this are interleaved; `fn` reads the others
  // in the file's layout (it sees the same n_rows, so it knows which).
  int interleave_row_multiple = 1;
  // Weight rows x activation rows the kernel handles per step (its register tile), and weight
  // rows per step for a single activation row (decode); the test harness sweeps shapes around them.
  int row_tile = 1;
  int col_tile = 1;
  int gemv_row_tile = 1;
  // Batches of at least this many activation rows take a second path (0: there is one); the test
  // harness sweeps around it too.
  int large_batch_cols = 0;
};

// The weight matrix layout a kernel reads: the row stride `fn` takes and the bytes pack_matrix
// writes for n_rows rows of k elements (file rows of file_stride bytes).
size_t packed_stride(const MatmulKernel& mk, int64_t k, size_t file_stride);
size_t packed_matrix_bytes(const MatmulKernel& mk, int64_t n_rows, int64_t k, size_t file_stride);
// Whether the kernel interleaves a matrix of n_rows rows, and whether it reads another layout
// than the file's.
bool interleaves(const MatmulKernel& mk, int64_t n_rows);
bool repacks(const MatmulKernel& mk, int64_t n_rows);
// Writes n_rows file rows (src_stride apart) in the kernel's layout to dst (packed_matrix_bytes).
// Runs at load time; allocates a staging buffer when rows are both packed and interleaved.
void pack_matrix(const MatmulKernel& mk, const std::byte* src, size_t src_stride, int64_t n_rows,
                 int64_t k, std::byte* dst);
// Whether pack_matrix's result fits where the file rows are (an interleave of whole groups, or a
// pack_in_place pack without an interleave), and that repack done in place: rows, n_rows of them,
// file_stride apart, become the kernel's layout (packed_stride == file_stride). For rows this
// process owns and nothing else reads.
bool packs_in_place(const MatmulKernel& mk, int64_t n_rows);
void pack_matrix_in_place(const MatmulKernel& mk, std::byte* rows, size_t file_stride,
                          int64_t n_rows, int64_t k);

// A second kernel for a weight type, next to the table's `matmul` entry (a lookup-table kernel
// beside a multiply-add one): the candidate that measured slower stays built, tested against the
// reference and benchmarked, so that the choice can be measured again. The engine never uses it.
struct MatmulAlternative {
  TensorType type;
  MatmulKernel kernel;
};
inline constexpr size_t kMaxMatmulAlternatives = 8;

// The instruction sets tern can have kernels for. Order matters: later is better on one machine.
enum class Isa : uint8_t { kScalar, kNeon, kAvx2, kAvx512 };

std::string_view isa_name(Isa isa);
// "scalar", "avx2", "avx512", "neon"; nullopt for anything else.
std::optional<Isa> parse_isa(std::string_view name);

// Room for every row of the traits table (quant/types.h); checked when the tables are built.
inline constexpr size_t kMaxTensorTypes = 32;

struct KernelTable {
  Isa isa;
  std::string_view name;  // isa_name(isa)
  // Indexed by the type's position in all_type_traits(); use matmul_for.
  std::array<MatmulKernel, kMaxTensorTypes> matmul;
  RmsNormFn rms_norm;
  RopeFn rope;
  SiluMulFn silu_mul;
  SoftmaxFn softmax;
  AttentionFn attention;
  LayerNormFn layer_norm;
  AddLayerNormFn add_layer_norm;
  ActivationFn gelu;
  ActivationFn relu_sqr;
  // This ISA's own alternatives (not inherited from the lower table); see alternatives().
  std::array<MatmulAlternative, kMaxMatmulAlternatives> matmul_alternatives{};
  size_t n_matmul_alternatives = 0;
  LayerNormGeluAddFn layer_norm_gelu_add;
  // Indexed like `matmul`; use from_float_for. Every slot starts as the type's reference
  // from_float (nullptr where it has none); an ISA overrides the ones it speeds up.
  std::array<QuantizeRowFn, kMaxTensorTypes> from_float{};
  Fp32ToFp16RowFn fp32_to_fp16_row;

  const MatmulKernel& matmul_for(const TypeTraits& w_type) const;
  // Converts activation rows to `act_type` (a weight type's vec_dot_type).
  QuantizeRowFn from_float_for(const TypeTraits& act_type) const;
  std::span<const MatmulAlternative> alternatives() const;
};

// The scalar reference table: always built, the specification for every other ISA.
const KernelTable& scalar_table();

// ISAs compiled into this binary, best last (scalar always first).
std::span<const Isa> built_isas();
// The built ISAs this CPU and OS can run (CPUID plus XGETBV for the wider register state).
std::span<const Isa> supported_isas();
// The table of a supported ISA; nullptr when the ISA is not built or not supported here. Tables
// of unsupported ISAs are never constructed, so no code built for them runs.
const KernelTable* table_for(Isa isa);

// The outcome of choosing a table: the table, or a one-line reason why there is none. The kernel
// layer does not throw; the engine and the CLI turn `error` into their own errors.
struct TableChoice {
  const KernelTable* table = nullptr;
  std::string error;
};

// The table for `request` ("scalar", "avx2", ...; empty: the best supported ISA). `origin` names
// where the request came from in the error ("TERN_ISA", "--isa").
TableChoice choose_table(std::string_view request, std::string_view origin);
// The process-wide choice, made once: TERN_ISA if set, otherwise the best supported ISA.
const TableChoice& active_choice();
// The chosen table, or the scalar one if TERN_ISA was invalid (callers that must report that
// check active_choice() first, as Model::load does).
const KernelTable& active_table();

}  // namespace tern::kernels

// The kernel tables: the scalar reference, then each ISA's table as a copy of the next-lower one
// with the entries it implements overridden (a best-first chain: avx512 <- avx2 <- scalar). This
// file is compiled without ISA flags; it only takes the addresses of the per-ISA kernels.
#include <array>
#include <cstdlib>
#include <string>

#include "kernels/scalar/scalar.h"
#include "kernels/tables.h"
#include "quant/blocks.h"
#include "quant/formats.h"
#include "quant/kquants.h"

#include "kernels/cpu_features.h"
#ifdef TERN_HAVE_NEON
#include "kernels/arm/neon/neon.h"
#endif
#ifdef TERN_HAVE_AVX2
#include "kernels/x86/avx2/avx2.h"
#endif
#ifdef TERN_HAVE_AVX512
#include "kernels/x86/avx512/avx512.h"
#endif

namespace tern::kernels {
namespace detail {
namespace {

#ifdef TERN_HAVE_NEON
constexpr bool kHaveNeon = true;
#else
constexpr bool kHaveNeon = false;
#endif
#ifdef TERN_HAVE_AVX2
constexpr bool kHaveAvx2 = true;
#else
constexpr bool kHaveAvx2 = false;
#endif
#ifdef TERN_HAVE_AVX512
constexpr bool kHaveAvx512 = true;
#else
constexpr bool kHaveAvx512 = false;
#endif

// packed_row_bytes of a load-time repack into 256-weight blocks of type Block: TQ1_0 rows as
// TQ2_0 blocks (quant::repack_tq1_0_as_tq2_0: the same codes and scales with 2-bit unpacking
// instead of base-3 digits, for 22% more bytes; the fast kernels are then ALU-light enough to
// stream at memory speed, base-3 decoding costs about four times the unpacking work per weight,
// docs/ARCHITECTURE.md, kernels), and Q6_K rows as BlockQ6KDense (the file's size).
template <class Block>
[[maybe_unused]] size_t repacked_row_bytes(int64_t n) {
  return static_cast<size_t>(n / kQkK) * sizeof(Block);
}

void set_matmul(KernelTable& t, TensorType type, const MatmulKernel& k) {
  t.matmul[type_slot(type_traits(type))] = k;
}

// The 32-weight block types of x86/*/matmul_block32.cpp on one x86 ISA: fn(type) for each type
// it has a kernel for (nullptr for the others), "matmul_<w>_<vec_dot_type>__<isa>", with the given
// tiles.
[[maybe_unused]] void set_block32_matmuls(KernelTable& t, MatmulFn (*fn)(TensorType), int row_tile,
                                          int col_tile, int gemv_row_tile) {
  constexpr TensorType kTypes[] = {TensorType::Q5_0, TensorType::Q5_1, TensorType::MXFP4,
                                   TensorType::BFP8};
  // Names live as long as the tables; each ISA's table is built once and writes only its row.
  static std::array<std::array<std::string, std::size(kTypes)>, 4> names;
  for (size_t i = 0; i < std::size(kTypes); ++i) {
    if (fn(kTypes[i]) == nullptr) continue;
    const TypeTraits& w = type_traits(kTypes[i]);
    std::string& name = names[static_cast<size_t>(t.isa)][i];
    name = "matmul_";
    name.append(w.name).append("_").append(type_traits(w.vec_dot_type).name);
    name.append("__").append(t.name);
    set_matmul(t, kTypes[i],
               {.name = name,
                .fn = fn(kTypes[i]),
                .row_tile = row_tile,
                .col_tile = col_tile,
                .gemv_row_tile = gemv_row_tile});
  }
}

// A kernel that lost the measurement for the main entry, kept built, tested and benchmarked
// (KernelTable::alternatives). TQ2_0 (and TQ1_0 repacked to it) by table lookup, T-MAC style
// (x86/*/matmul_tq2_0_lut.cpp), against multiply-add (matmul_tq2_0.cpp), bench_matmul in one
// run, 1 thread, cold weights, 2026-11-22 (machine shared, load average 8-10), CPU-time ratio
// LUT / MAD over the 700M and 2B4T shapes: AVX-512 1.8-2.5x at M = 1, 2.0-3.2x at M = 8..128;
// AVX2 1.9-2.3x at M = 1, 1.3-1.8x at M = 8..128. No shape where the LUT wins, so
// multiply-add stays the main entry on both ISAs (docs/BENCHMARKS.md has the tables and why).
[[maybe_unused]] void add_alternative(KernelTable& t, TensorType type, const MatmulKernel& k) {
  if (t.n_matmul_alternatives == kMaxMatmulAlternatives) std::abort();  // raise the maximum
  t.matmul_alternatives[t.n_matmul_alternatives++] = {type, k};
}

KernelTable make_scalar() {
  // Names live as long as the table: "matmul_<w>_<vec_dot_type>__scalar".
  static std::array<std::string, kMaxTensorTypes> names;
  KernelTable t{};
  t.isa = Isa::kScalar;
  t.name = isa_name(Isa::kScalar);
  const auto traits = all_type_traits();
  if (traits.size() > kMaxTensorTypes) std::abort();  // raise kMaxTensorTypes
  for (size_t i = 0; i < traits.size(); ++i) {
    t.from_float[i] = traits[i].from_float;
    if (traits[i].vec_dot == nullptr) continue;
    names[i] = "matmul_" + std::string(traits[i].name) + "_" +
               std::string(type_traits(traits[i].vec_dot_type).name) + "__scalar";
    t.matmul[i] = {.name = names[i], .fn = scalar::matmul};
  }
  t.rms_norm = scalar::rms_norm;
  t.rope = scalar::rope;
  t.silu_mul = scalar::silu_mul;
  t.softmax = scalar::softmax;
  t.attention = scalar::attention;
  t.layer_norm = scalar::layer_norm;
  t.add_layer_norm = scalar::add_layer_norm;
  t.gelu = scalar::gelu;
  t.relu_sqr = scalar::relu_sqr;
  t.layer_norm_gelu_add = scalar::layer_norm_gelu_add;
  t.fp32_to_fp16_row = scalar::fp32_to_fp16_row;
  // Every table starts from this one, so the GELU table is built here, before any table is
  // handed out, and never inside the first gelu call of a forward pass.
  gelu_fp16_table();
  return t;
}

#ifdef TERN_HAVE_NEON
// Each NEON matmul exists with and without sdot (kernels/arm/neon/dotprod.cpp); the entry names
// say which one this CPU runs ("__neon_dotprod" or "__neon").
KernelTable make_neon(const KernelTable& lower) {
  const bool dot = cpu_features().dotprod;
  KernelTable t = lower;
  t.isa = Isa::kNeon;
  t.name = isa_name(Isa::kNeon);
  const auto tq2 = dot ? neon::matmul_tq2_0_q8_K_dotprod : neon::matmul_tq2_0_q8_K;
  set_matmul(t, TensorType::TQ2_0,
             {.name = dot ? "matmul_tq2_0_q8_K__neon_dotprod" : "matmul_tq2_0_q8_K__neon",
              .fn = tq2,
              .row_tile = neon::kTq2RowTile,
              .col_tile = neon::kTq2ColTile,
              .gemv_row_tile = neon::kTq2GemvRows});
  set_matmul(t, TensorType::TQ1_0,
             {.name = dot ? "matmul_tq1_0_q8_K__neon_dotprod" : "matmul_tq1_0_q8_K__neon",
              .fn = tq2,
              .pack = quant::repack_tq1_0_as_tq2_0,
              .packed_row_bytes = repacked_row_bytes<BlockTQ2_0>,
              .row_tile = neon::kTq2RowTile,
              .col_tile = neon::kTq2ColTile,
              .gemv_row_tile = neon::kTq2GemvRows});
  set_matmul(t, TensorType::Q8_0,
             {.name = dot ? "matmul_q8_0_q8_0__neon_dotprod" : "matmul_q8_0_q8_0__neon",
              .fn = dot ? neon::matmul_q8_0_q8_0_dotprod : neon::matmul_q8_0_q8_0,
              .row_tile = neon::kQ8RowTile,
              .col_tile = neon::kQ8ColTile,
              .gemv_row_tile = neon::kQ8GemvRows});
  set_matmul(t, TensorType::Q4_0,
             {.name = dot ? "matmul_q4_0_q8_0__neon_dotprod" : "matmul_q4_0_q8_0__neon",
              .fn = dot ? neon::matmul_q4_0_q8_0_dotprod : neon::matmul_q4_0_q8_0,
              .row_tile = neon::kQ4RowTile,
              .col_tile = neon::kQ4ColTile,
              .gemv_row_tile = neon::kQ4GemvRows});
  set_matmul(t, TensorType::Q4_K,
             {.name = dot ? "matmul_q4_K_q8_K__neon_dotprod" : "matmul_q4_K_q8_K__neon",
              .fn = dot ? neon::matmul_q4_K_q8_K_dotprod : neon::matmul_q4_K_q8_K,
              .row_tile = neon::kKQuantRowTile,
              .col_tile = neon::kKQuantColTile,
              .gemv_row_tile = neon::kKQuantGemvRows});
  set_matmul(t, TensorType::Q5_K,
             {.name = dot ? "matmul_q5_K_q8_K__neon_dotprod" : "matmul_q5_K_q8_K__neon",
              .fn = dot ? neon::matmul_q5_K_q8_K_dotprod : neon::matmul_q5_K_q8_K,
              .row_tile = neon::kKQuantRowTile,
              .col_tile = neon::kKQuantColTile,
              .gemv_row_tile = neon::kKQuantGemvRows});
  set_matmul(t, TensorType::Q6_K,
             {.name = dot ? "matmul_q6_K_q8_K__neon_dotprod" : "matmul_q6_K_q8_K__neon",
              .fn = dot ? neon::matmul_q6_K_q8_K_dotprod : neon::matmul_q6_K_q8_K,
              .row_tile = neon::kKQuantRowTile,
              .col_tile = neon::kKQuantColTile,
              .gemv_row_tile = neon::kKQuantGemvRows});
  set_matmul(t, TensorType::F32,
             {.name = dot ? "matmul_f32_f32__neon_dotprod" : "matmul_f32_f32__neon",
              .fn = dot ? neon::matmul_f32_f32_dotprod : neon::matmul_f32_f32,
              .row_tile = neon::kFloatRowTile,
              .col_tile = neon::kFloatColTile,
              .gemv_row_tile = neon::kFloatGemvRows});
  set_matmul(t, TensorType::F16,
             {.name = dot ? "matmul_f16_f16__neon_dotprod" : "matmul_f16_f16__neon",
              .fn = dot ? neon::matmul_f16_f16_dotprod : neon::matmul_f16_f16,
              .row_tile = neon::kFloatRowTile,
              .col_tile = neon::kFloatColTile,
              .gemv_row_tile = neon::kFloatGemvRows});
  set_matmul(t, TensorType::BF16,
             {.name = dot ? "matmul_bf16_bf16__neon_dotprod" : "matmul_bf16_bf16__neon",
              .fn = dot ? neon::matmul_bf16_bf16_dotprod : neon::matmul_bf16_bf16,
              .row_tile = neon::kFloatRowTile,
              .col_tile = neon::kFloatColTile,
              .gemv_row_tile = neon::kFloatGemvRows});
  set_matmul(t, TensorType::Q5_0,
             {.name = dot ? "matmul_q5_0_q8_0__neon_dotprod" : "matmul_q5_0_q8_0__neon",
              .fn = dot ? neon::matmul_q5_0_q8_0_dotprod : neon::matmul_q5_0_q8_0,
              .row_tile = neon::kQ5RowTile,
              .col_tile = neon::kQ5ColTile,
              .gemv_row_tile = neon::kQ5GemvRows});
  set_matmul(t, TensorType::Q5_1,
             {.name = dot ? "matmul_q5_1_q8_1__neon_dotprod" : "matmul_q5_1_q8_1__neon",
              .fn = dot ? neon::matmul_q5_1_q8_1_dotprod : neon::matmul_q5_1_q8_1,
              .row_tile = neon::kQ5RowTile,
              .col_tile = neon::kQ5ColTile,
              .gemv_row_tile = neon::kQ5GemvRows});
  set_matmul(t, TensorType::MXFP4,
             {.name = dot ? "matmul_mxfp4_q8_0__neon_dotprod" : "matmul_mxfp4_q8_0__neon",
              .fn = dot ? neon::matmul_mxfp4_q8_0_dotprod : neon::matmul_mxfp4_q8_0,
              .row_tile = neon::kMxfp4RowTile,
              .col_tile = neon::kMxfp4ColTile,
              .gemv_row_tile = neon::kMxfp4GemvRows});
  set_matmul(t, TensorType::BFP8,
             {.name = dot ? "matmul_bfp8_bfp8__neon_dotprod" : "matmul_bfp8_bfp8__neon",
              .fn = dot ? neon::matmul_bfp8_bfp8_dotprod : neon::matmul_bfp8_bfp8,
              .row_tile = neon::kBfp8RowTile,
              .col_tile = neon::kBfp8ColTile,
              .gemv_row_tile = neon::kBfp8GemvRows});
  t.silu_mul = neon::silu_mul;
  t.layer_norm = neon::layer_norm;
  t.add_layer_norm = neon::add_layer_norm;
  t.gelu = neon::gelu;
  t.relu_sqr = neon::relu_sqr;
  t.layer_norm_gelu_add = neon::layer_norm_gelu_add;
  t.rms_norm = neon::rms_norm;
  t.rope = neon::rope;
  t.softmax = neon::softmax;
  t.attention = neon::attention;
  t.fp32_to_fp16_row = neon::fp32_to_fp16_row;
  t.from_float[type_slot(type_traits(TensorType::Q8_K))] = neon::quantize_row_q8_K;
  t.from_float[type_slot(type_traits(TensorType::Q8_0))] = neon::quantize_row_q8_0;
  t.from_float[type_slot(type_traits(TensorType::Q8_1))] = neon::quantize_row_q8_1;
  return t;
}
#endif

#ifdef TERN_HAVE_AVX2
KernelTable make_avx2(const KernelTable& lower) {
  KernelTable t = lower;
  t.isa = Isa::kAvx2;
  t.name = isa_name(Isa::kAvx2);
  t.n_matmul_alternatives = 0;  // the lower ISA's alternatives are tested with its table
  set_matmul(t, TensorType::TQ2_0,
             {.name = "matmul_tq2_0_q8_K__avx2",
              .fn = avx2::matmul_tq2_0_q8_K,
              .interleave = avx2::interleave_tq2_0_pair,
              .interleave_rows = avx2::kTq2InterleaveRows,
              .row_tile = avx2::kTq2RowTile,
              .col_tile = avx2::kTq2ColTile,
              .gemv_row_tile = avx2::kTq2GemvRows});
  set_matmul(t, TensorType::TQ1_0,
             {.name = "matmul_tq1_0_q8_K__avx2",
              .fn = avx2::matmul_tq2_0_q8_K,
              .pack = quant::repack_tq1_0_as_tq2_0,
              .packed_row_bytes = repacked_row_bytes<BlockTQ2_0>,
              .interleave = avx2::interleave_tq2_0_pair,
              .interleave_rows = avx2::kTq2InterleaveRows,
              .row_tile = avx2::kTq2RowTile,
              .col_tile = avx2::kTq2ColTile,
              .gemv_row_tile = avx2::kTq2GemvRows});
  set_matmul(t, TensorType::Q8_0,
             {.name = "matmul_q8_0_q8_0__avx2",
              .fn = avx2::matmul_q8_0_q8_0,
              .row_tile = avx2::kQ8RowTile,
              .col_tile = avx2::kQ8ColTile,
              .gemv_row_tile = avx2::kQ8GemvRows});
  t.layer_norm = avx2::layer_norm;
  t.add_layer_norm = avx2::add_layer_norm;
  t.gelu = avx2::gelu;
  t.relu_sqr = avx2::relu_sqr;
  // TQ2_0 (and TQ1_0 repacked to it) by table lookup.
  add_alternative(t, TensorType::TQ2_0,
                  {.name = "matmul_tq2_0_q8_K__avx2_lut",
                   .fn = avx2::matmul_tq2_0_q8_K_lut,
                   .row_tile = avx2::kTq2LutRows,
                   .col_tile = avx2::kTq2LutCols,
                   .gemv_row_tile = avx2::kTq2LutRows});
  add_alternative(t, TensorType::TQ1_0,
                  {.name = "matmul_tq1_0_q8_K__avx2_lut",
                   .fn = avx2::matmul_tq2_0_q8_K_lut,
                   .pack = quant::repack_tq1_0_as_tq2_0,
                   .packed_row_bytes = repacked_row_bytes<BlockTQ2_0>,
                   .row_tile = avx2::kTq2LutRows,
                   .col_tile = avx2::kTq2LutCols,
                   .gemv_row_tile = avx2::kTq2LutRows});
  t.rms_norm = avx2::rms_norm;
  t.rope = avx2::rope;
  t.silu_mul = avx2::silu_mul;
  t.softmax = avx2::softmax;
  t.attention = avx2::attention;
  t.layer_norm_gelu_add = avx2::layer_norm_gelu_add;
  set_matmul(t, TensorType::Q4_0,
             {.name = "matmul_q4_0_q8_0__avx2",
              .fn = avx2::matmul_q4_0_q8_0,
              .interleave = avx2::interleave_q4_0_rows8,
              .interleave_rows = avx2::kQ4InterleaveRows,
              .interleave_row_multiple = avx2::kQ4InterleaveRowMultiple,
              .row_tile = avx2::kQ4RowTile,
              .col_tile = avx2::kQ4ColTile,
              .gemv_row_tile = avx2::kQ4GemvRows});
  set_matmul(t, TensorType::Q6_K,
             {.name = "matmul_q6_K_q8_K__avx2",
              .fn = avx2::matmul_q6_K_q8_K,
              .row_tile = avx2::kKQuantRowTile,
              .col_tile = avx2::kKQuantColTile,
              .gemv_row_tile = avx2::kKQuantGemvRows});
  t.fp32_to_fp16_row = avx2::fp32_to_fp16_row;
  set_matmul(t, TensorType::F32,
             {.name = "matmul_f32_f32__avx2",
              .fn = avx2::matmul_f32_f32,
              .row_tile = avx2::kFloatRowTile,
              .col_tile = avx2::kFloatColTile,
              .gemv_row_tile = avx2::kFloatGemvRows});
  set_matmul(t, TensorType::F16,
             {.name = "matmul_f16_f16__avx2",
              .fn = avx2::matmul_f16_f16,
              .row_tile = avx2::kFloatRowTile,
              .col_tile = avx2::kFloatColTile,
              .gemv_row_tile = avx2::kFloatGemvRows});
  set_matmul(t, TensorType::BF16,
             {.name = "matmul_bf16_bf16__avx2",
              .fn = avx2::matmul_bf16_bf16,
              .row_tile = avx2::kFloatRowTile,
              .col_tile = avx2::kFloatColTile,
              .gemv_row_tile = avx2::kFloatGemvRows});
  set_matmul(t, TensorType::Q4_K,
             {.name = "matmul_q4_K_q8_K__avx2",
              .fn = avx2::matmul_q4_K_q8_K,
              .row_tile = avx2::kKQuantRowTile,
              .col_tile = avx2::kKQuantColTile,
              .gemv_row_tile = avx2::kKQuantGemvRows});
  set_matmul(t, TensorType::Q5_K,
             {.name = "matmul_q5_K_q8_K__avx2",
              .fn = avx2::matmul_q5_K_q8_K,
              .row_tile = avx2::kKQuantRowTile,
              .col_tile = avx2::kKQuantColTile,
              .gemv_row_tile = avx2::kKQuantGemvRows});
  set_block32_matmuls(t, avx2::block32_matmul, avx2::kQ8RowTile, avx2::kQ8ColTile,
                      avx2::kQ8GemvRows);
  t.from_float[type_slot(type_traits(TensorType::Q8_K))] = avx2::quantize_row_q8_K;
  t.from_float[type_slot(type_traits(TensorType::Q8_0))] = avx2::quantize_row_q8_0;
  t.from_float[type_slot(type_traits(TensorType::Q8_1))] = avx2::quantize_row_q8_1;
  return t;
}
#endif

#ifdef TERN_HAVE_AVX512
KernelTable make_avx512(const KernelTable& lower) {
  KernelTable t = lower;
  t.isa = Isa::kAvx512;
  t.name = isa_name(Isa::kAvx512);
  t.n_matmul_alternatives = 0;  // the lower ISA's alternatives are tested with its table
  // TQ2_0 and TQ1_0 (repacked to it), on rows interleaved in quads: where the CPU has GFNI, the
  // GFNI build, with the other one as an alternative (so that both stay tested and benchmarked);
  // elsewhere only the other one (the GFNI build would not run).
  const bool gfni = cpu_features().gfni;
  for (const bool with_gfni : {true, false}) {
    if (with_gfni && !gfni) continue;
    MatmulKernel tq2{
        .name = with_gfni ? "matmul_tq2_0_q8_K__avx512_gfni" : "matmul_tq2_0_q8_K__avx512",
        .fn = with_gfni ? avx512::matmul_tq2_0_q8_K_gfni : avx512::matmul_tq2_0_q8_K,
        .interleave = avx512::interleave_tq2_0_quad,
        .interleave_rows = avx512::kTq2InterleaveRows,
        .row_tile = avx512::kTq2RowTile,
        .col_tile = avx512::kTq2ColTile,
        .gemv_row_tile = avx512::kTq2GemvRows,
        .large_batch_cols = avx512::kTq2PackMinCols};
    MatmulKernel tq1 = tq2;
    tq1.name = with_gfni ? "matmul_tq1_0_q8_K__avx512_gfni" : "matmul_tq1_0_q8_K__avx512";
    tq1.pack = quant::repack_tq1_0_as_tq2_0;
    tq1.packed_row_bytes = repacked_row_bytes<BlockTQ2_0>;
    if (with_gfni == gfni) {  // the best this CPU runs
      set_matmul(t, TensorType::TQ2_0, tq2);
      set_matmul(t, TensorType::TQ1_0, tq1);
    } else {
      add_alternative(t, TensorType::TQ2_0, tq2);
      add_alternative(t, TensorType::TQ1_0, tq1);
    }
  }
  set_matmul(t, TensorType::Q8_0,
             {.name = "matmul_q8_0_q8_0__avx512",
              .fn = avx512::matmul_q8_0_q8_0,
              .row_tile = avx512::kQ8RowTile,
              .col_tile = avx512::kQ8ColTile,
              .gemv_row_tile = avx512::kQ8GemvRows});
  t.layer_norm = avx512::layer_norm;
  t.add_layer_norm = avx512::add_layer_norm;
  t.gelu = avx512::gelu;
  t.relu_sqr = avx512::relu_sqr;
  // TQ2_0 (and TQ1_0 repacked to it) by table lookup.
  add_alternative(t, TensorType::TQ2_0,
                  {.name = "matmul_tq2_0_q8_K__avx512_lut",
                   .fn = avx512::matmul_tq2_0_q8_K_lut,
                   .row_tile = avx512::kTq2LutRows,
                   .col_tile = avx512::kTq2LutCols,
                   .gemv_row_tile = avx512::kTq2LutRows});
  add_alternative(t, TensorType::TQ1_0,
                  {.name = "matmul_tq1_0_q8_K__avx512_lut",
                   .fn = avx512::matmul_tq2_0_q8_K_lut,
                   .pack = quant::repack_tq1_0_as_tq2_0,
                   .packed_row_bytes = repacked_row_bytes<BlockTQ2_0>,
                   .row_tile = avx512::kTq2LutRows,
                   .col_tile = avx512::kTq2LutCols,
                   .gemv_row_tile = avx512::kTq2LutRows});
  t.rms_norm = avx512::rms_norm;
  t.rope = avx512::rope;
  t.silu_mul = avx512::silu_mul;
  t.softmax = avx512::softmax;
  t.attention = avx512::attention;
  t.layer_norm_gelu_add = avx512::layer_norm_gelu_add;
  t.from_float[type_slot(type_traits(TensorType::Q8_K))] = avx512::quantize_row_q8_K;
  t.from_float[type_slot(type_traits(TensorType::Q8_0))] = avx512::quantize_row_q8_0;
  t.from_float[type_slot(type_traits(TensorType::Q8_1))] = avx512::quantize_row_q8_1;
  set_matmul(t, TensorType::Q4_0,
             {.name = "matmul_q4_0_q8_0__avx512",
              .fn = avx512::matmul_q4_0_q8_0,
              .interleave = avx512::interleave_q4_0_rows16,
              .interleave_rows = avx512::kQ4InterleaveRows,
              .interleave_row_multiple = avx512::kQ4InterleaveRowMultiple,
              .row_tile = avx512::kQ4RowTile,
              .col_tile = avx512::kQ4ColTile,
              .gemv_row_tile = avx512::kQ4GemvRows});
  t.fp32_to_fp16_row = avx512::fp32_to_fp16_row;
  set_matmul(t, TensorType::F32,
             {.name = "matmul_f32_f32__avx512",
              .fn = avx512::matmul_f32_f32,
              .row_tile = avx512::kFloatRowTile,
              .col_tile = avx512::kFloatColTile,
              .gemv_row_tile = avx512::kFloatGemvRows});
  set_matmul(t, TensorType::F16,
             {.name = "matmul_f16_f16__avx512",
              .fn = avx512::matmul_f16_f16,
              .row_tile = avx512::kFloatRowTile,
              .col_tile = avx512::kFloatColTile,
              .gemv_row_tile = avx512::kFloatGemvRows});
  set_matmul(t, TensorType::BF16,
             {.name = "matmul_bf16_bf16__avx512",
              .fn = avx512::matmul_bf16_bf16,
              .row_tile = avx512::kFloatRowTile,
              .col_tile = avx512::kFloatColTile,
              .gemv_row_tile = avx512::kFloatGemvRows});
  set_matmul(t, TensorType::Q4_K,
             {.name = "matmul_q4_K_q8_K__avx512",
              .fn = avx512::matmul_q4_K_q8_K,
              .row_tile = avx512::kKQuantRowTile,
              .col_tile = avx512::kKQuantColTile,
              .gemv_row_tile = avx512::kKQuantGemvRows});
  set_matmul(t, TensorType::Q5_K,
             {.name = "matmul_q5_K_q8_K__avx512",
              .fn = avx512::matmul_q5_K_q8_K,
              .row_tile = avx512::kKQuantRowTile,
              .col_tile = avx512::kKQuantColTile,
              .gemv_row_tile = avx512::kKQuantGemvRows});
  // Q6_K: where the CPU has VBMI, the kernel on dense codes, with the one on the file's layout as
  // an alternative (both stay tested and benchmarked); elsewhere only the latter.
  const MatmulKernel q6_file{.name = "matmul_q6_K_q8_K__avx512",
                             .fn = avx512::matmul_q6_K_q8_K,
                             .row_tile = avx512::kKQuantRowTile,
                             .col_tile = avx512::kKQuantColTile,
                             .gemv_row_tile = avx512::kKQuantGemvRows};
  if (cpu_features().avx512vbmi) {
    set_matmul(t, TensorType::Q6_K,
               {.name = "matmul_q6_K_q8_K__avx512_vbmi",
                .fn = avx512::matmul_q6_K_q8_K_dense,
                .pack = quant::repack_q6_K_dense_codes,
                .packed_row_bytes = repacked_row_bytes<BlockQ6KDense>,
                .pack_in_place = true,
                .row_tile = avx512::kKQuantRowTile,
                .col_tile = avx512::kKQuantColTile,
                .gemv_row_tile = avx512::kKQuantGemvRows});
    add_alternative(t, TensorType::Q6_K, q6_file);
  } else {
    set_matmul(t, TensorType::Q6_K, q6_file);
  }
  set_block32_matmuls(t, avx512::block32_matmul, avx512::kQ8RowTile, avx512::kQ8ColTile,
                      avx512::kQ8GemvRows);
  return t;
}
#endif

// The best built table below `isa`, which `isa`'s table starts from.
const KernelTable& lower_table(Isa isa) {
  const auto built = built_isas();
  for (size_t i = built.size(); i-- > 0;) {
    if (static_cast<int>(built[i]) < static_cast<int>(isa)) return build_table(built[i]);
  }
  return scalar_table();
}

}  // namespace

bool isa_built(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return true;
    case Isa::kNeon:
      return kHaveNeon;
    case Isa::kAvx2:
      return kHaveAvx2;
    case Isa::kAvx512:
      return kHaveAvx512;
  }
  return false;
}

const KernelTable& build_table(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      break;
    case Isa::kNeon: {
#ifdef TERN_HAVE_NEON
      static const KernelTable t = make_neon(lower_table(Isa::kNeon));
      return t;
#else
      break;
#endif
    }
    case Isa::kAvx2: {
#ifdef TERN_HAVE_AVX2
      static const KernelTable t = make_avx2(lower_table(Isa::kAvx2));
      return t;
#else
      break;
#endif
    }
    case Isa::kAvx512: {
#ifdef TERN_HAVE_AVX512
      static const KernelTable t = make_avx512(lower_table(Isa::kAvx512));
      return t;
#else
      break;
#endif
    }
  }
  return scalar_table();
}

size_t type_slot(const TypeTraits& t) {
  const auto traits = all_type_traits();
  // Traits normally come from the table itself; a copy is found by its type id.
  if (&t >= traits.data() && &t < traits.data() + traits.size()) {
    return static_cast<size_t>(&t - traits.data());
  }
  for (size_t i = 0; i < traits.size(); ++i) {
    if (traits[i].type == t.type) return i;
  }
  std::abort();  // a TensorType outside the traits table cannot reach a kernel
}

}  // namespace detail

std::span<const MatmulAlternative> KernelTable::alternatives() const {
  return {matmul_alternatives.data(), n_matmul_alternatives};
}

const KernelTable& scalar_table() {
  static const KernelTable table = detail::make_scalar();
  return table;
}

}  // namespace tern::kernels

// The kernel tables: the scalar reference, then each ISA's table as a copy of the next-lower one
// with the entries it implements overridden (a best-first chain: avx512 <- avx2 <- scalar). This
// file is compiled without ISA flags; it only takes the addresses of the per-ISA kernels.
#include <cstdlib>
#include <string>

#include "kernels/scalar/scalar.h"
#include "kernels/tables.h"
#include "quant/blocks.h"
#include "quant/formats.h"

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

// Rows of TQ1_0 repacked as TQ2_0 blocks (quant::repack_tq1_0_as_tq2_0): the same codes and
// scales with 2-bit unpacking instead of base-3 digits, for 22% more bytes. The fast kernels are
// then ALU-light enough to stream at memory speed; base-3 decoding costs about four times the
// unpacking work per weight (docs/ARCHITECTURE.md, kernels).
[[maybe_unused]] size_t tq2_0_row_bytes(int64_t n) {
  return static_cast<size_t>(n / kQkK) * sizeof(BlockTQ2_0);
}

void set_matmul(KernelTable& t, TensorType type, const MatmulKernel& k) {
  t.matmul[type_slot(type_traits(type))] = k;
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
    if (traits[i].vec_dot == nullptr) continue;
    names[i] = "matmul_" + std::string(traits[i].name) + "_" +
               std::string(type_traits(traits[i].vec_dot_type).name) + "__scalar";
    t.matmul[i] = {.name = names[i], .fn = scalar::matmul};
  }
  t.rms_norm = scalar::rms_norm;
  t.rope = scalar::rope;
  t.silu_mul = scalar::silu_mul;
  t.attention = scalar::attention;
  return t;
}

#ifdef TERN_HAVE_AVX2
KernelTable make_avx2(const KernelTable& lower) {
  KernelTable t = lower;
  t.isa = Isa::kAvx2;
  t.name = isa_name(Isa::kAvx2);
  set_matmul(t, TensorType::TQ2_0,
             {.name = "matmul_tq2_0_q8_K__avx2",
              .fn = avx2::matmul_tq2_0_q8_K,
              .row_tile = avx2::kTq2RowTile,
              .col_tile = avx2::kTq2ColTile,
              .gemv_row_tile = avx2::kTq2GemvRows});
  set_matmul(t, TensorType::TQ1_0,
             {.name = "matmul_tq1_0_q8_K__avx2",
              .fn = avx2::matmul_tq2_0_q8_K,
              .pack = quant::repack_tq1_0_as_tq2_0,
              .packed_row_bytes = tq2_0_row_bytes,
              .row_tile = avx2::kTq2RowTile,
              .col_tile = avx2::kTq2ColTile,
              .gemv_row_tile = avx2::kTq2GemvRows});
  set_matmul(t, TensorType::Q8_0,
             {.name = "matmul_q8_0_q8_0__avx2",
              .fn = avx2::matmul_q8_0_q8_0,
              .row_tile = avx2::kQ8RowTile,
              .col_tile = avx2::kQ8ColTile,
              .gemv_row_tile = avx2::kQ8GemvRows});
  set_matmul(t, TensorType::Q4_0,
             {.name = "matmul_q4_0_q8_0__avx2",
              .fn = avx2::matmul_q4_0_q8_0,
              .row_tile = avx2::kQ4RowTile,
              .col_tile = avx2::kQ4ColTile,
              .gemv_row_tile = avx2::kQ4GemvRows});
  set_matmul(t, TensorType::Q6_K,
             {.name = "matmul_q6_K_q8_K__avx2",
              .fn = avx2::matmul_q6_K_q8_K,
              .row_tile = avx2::kQ6RowTile,
              .col_tile = avx2::kQ6ColTile,
              .gemv_row_tile = avx2::kQ6GemvRows});
  return t;
}
#endif

#ifdef TERN_HAVE_AVX512
KernelTable make_avx512(const KernelTable& lower) {
  KernelTable t = lower;
  t.isa = Isa::kAvx512;
  t.name = isa_name(Isa::kAvx512);
  set_matmul(t, TensorType::TQ2_0,
             {.name = "matmul_tq2_0_q8_K__avx512",
              .fn = avx512::matmul_tq2_0_q8_K,
              .row_tile = avx512::kTq2RowTile,
              .col_tile = avx512::kTq2ColTile,
              .gemv_row_tile = avx512::kTq2GemvRows});
  set_matmul(t, TensorType::TQ1_0,
             {.name = "matmul_tq1_0_q8_K__avx512",
              .fn = avx512::matmul_tq2_0_q8_K,
              .pack = quant::repack_tq1_0_as_tq2_0,
              .packed_row_bytes = tq2_0_row_bytes,
              .row_tile = avx512::kTq2RowTile,
              .col_tile = avx512::kTq2ColTile,
              .gemv_row_tile = avx512::kTq2GemvRows});
  set_matmul(t, TensorType::Q8_0,
             {.name = "matmul_q8_0_q8_0__avx512",
              .fn = avx512::matmul_q8_0_q8_0,
              .row_tile = avx512::kQ8RowTile,
              .col_tile = avx512::kQ8ColTile,
              .gemv_row_tile = avx512::kQ8GemvRows});
  set_matmul(t, TensorType::Q4_0,
             {.name = "matmul_q4_0_q8_0__avx512",
              .fn = avx512::matmul_q4_0_q8_0,
              .row_tile = avx512::kQ4RowTile,
              .col_tile = avx512::kQ4ColTile,
              .gemv_row_tile = avx512::kQ4GemvRows});
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
    case Isa::kNeon:  // no NEON kernels yet: kernels/arm/neon adds make_neon here
      break;
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

const KernelTable& scalar_table() {
  static const KernelTable table = detail::make_scalar();
  return table;
}

}  // namespace tern::kernels

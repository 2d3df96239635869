// F32 x F32 and F16 x F16 matrix products with AVX2, bit-identical to quant::vec_dot_f32/f16 and
// their tinyBLAS orders (vec_dot_*_sgemm), whichever select_matmul_dot picks.
//
// Theory of operation: kernels/x86/float_tiles.h gives the orders; each of the reference's 16-lane
// accumulators is two ymm here (lanes 0..7 and 8..15), and _mm512_reduce_add_ps's tree is the sum
// of the two halves followed by hsum_float_8's.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/x86/avx2/avx2.h"
#include "kernels/x86/float_tiles.h"
#include "kernels/x86/intrinsics.h"
#include "kernels/x86/tile_driver.h"

namespace tern::kernels::avx2 {
namespace {

struct Lanes16 {
  struct Reg {
    __m256 lo, hi;
  };
  static constexpr int kSgemmRows = kFloatRowTile;
  static constexpr int kSgemmCols = kFloatColTile;
  static constexpr int kDotRows = kFloatGemvRows;
  static Reg zero() { return {_mm256_setzero_ps(), _mm256_setzero_ps()}; }
  static Reg load(const float* p) { return {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)}; }
  static Reg load(const uint16_t* p) {
    return {_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))),
            _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 8)))};
  }
  static Reg fma(Reg a, Reg b, Reg acc) {
    return {_mm256_fmadd_ps(a.lo, b.lo, acc.lo), _mm256_fmadd_ps(a.hi, b.hi, acc.hi)};
  }
  static Reg add(Reg a, Reg b) { return {_mm256_add_ps(a.lo, b.lo), _mm256_add_ps(a.hi, b.hi)}; }
  static float reduce(Reg v) { return x86::hsum8(_mm256_add_ps(v.hi, v.lo)); }
};

}  // namespace

// The entries are the shared template's instances (internal linkage) behind exported pointers.
constinit const MatmulFn matmul_f32_f32 = x86::float_matmul<Lanes16, x86::F32Elems>;
constinit const MatmulFn matmul_f16_f16 = x86::float_matmul<Lanes16, x86::F16Elems>;

}  // namespace tern::kernels::avx2

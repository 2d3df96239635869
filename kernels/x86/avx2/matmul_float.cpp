// F32 x F32, F16 x F16 and BF16 x BF16 matrix products with AVX2, bit-identical to
// quant::vec_dot_f32/f16/bf16 and their tinyBLAS orders (vec_dot_*_sgemm), whichever
// select_matmul_dot picks.
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
  static void bf16_pairs(const uint16_t* p, Reg& even, Reg& odd) {
    const __m256i hi16 = _mm256_set1_epi32(static_cast<int>(0xffff0000u));
    const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 16));
    even = {_mm256_castsi256_ps(_mm256_slli_epi32(lo, 16)),
            _mm256_castsi256_ps(_mm256_slli_epi32(hi, 16))};
    odd = {_mm256_castsi256_ps(_mm256_and_si256(lo, hi16)),
           _mm256_castsi256_ps(_mm256_and_si256(hi, hi16))};
  }
  static __m256 daz8(__m256 v) {
    const __m256i u = _mm256_castps_si256(v);
    const __m256i subnormal = _mm256_cmpeq_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7f800000)),
                                                 _mm256_setzero_si256());
    return _mm256_castsi256_ps(
        _mm256_andnot_si256(_mm256_and_si256(subnormal, _mm256_set1_epi32(0x7fffffff)), u));
  }
  static Reg daz(Reg v) { return {daz8(v.lo), daz8(v.hi)}; }
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
constinit const MatmulFn matmul_bf16_bf16 = x86::float_matmul<Lanes16, x86::Bf16Elems>;

}  // namespace tern::kernels::avx2

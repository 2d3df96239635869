// F32 x F32, F16 x F16 and BF16 x BF16 matrix products with AVX-512, bit-identical to
// quant::vec_dot_f32/f16/bf16 and their tinyBLAS orders (vec_dot_*_sgemm), whichever
// select_matmul_dot picks.
//
// Theory of operation: kernels/x86/float_tiles.h gives the orders; the reference's 16-lane
// accumulators are one zmm each here, and the lane sum is _mm512_reduce_add_ps's tree (upper half
// plus lower half, then hsum_float_8's).
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/x86/avx512/avx512.h"
#include "kernels/x86/float_tiles.h"
#include "kernels/x86/intrinsics.h"
#include "kernels/x86/tile_driver.h"

namespace tern::kernels::avx512 {
namespace {

struct Lanes16 {
  using Reg = __m512;
  static constexpr int kSgemmRows = kFloatRowTile;
  static constexpr int kSgemmCols = kFloatColTile;
  static constexpr int kDotRows = kFloatGemvRows;
  static Reg zero() { return _mm512_setzero_ps(); }
  static Reg load(const float* p) { return _mm512_loadu_ps(p); }
  static Reg load(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static void bf16_pairs(const uint16_t* p, Reg& even, Reg& odd) {
    const __m512i v = _mm512_loadu_si512(p);
    even = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
    odd =
        _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32(static_cast<int>(0xffff0000u))));
  }
  static Reg daz(Reg v) {
    const __m512i u = _mm512_castps_si512(v);
    const __mmask16 normal = _mm512_test_epi32_mask(u, _mm512_set1_epi32(0x7f800000));
    const __m512i sign = _mm512_and_si512(u, _mm512_set1_epi32(static_cast<int>(0x80000000u)));
    return _mm512_castsi512_ps(_mm512_mask_mov_epi32(sign, normal, u));
  }
  static Reg fma(Reg a, Reg b, Reg acc) { return _mm512_fmadd_ps(a, b, acc); }
  static Reg add(Reg a, Reg b) { return _mm512_add_ps(a, b); }
  static float reduce(Reg v) {
    return x86::hsum8(_mm256_add_ps(_mm512_extractf32x8_ps(v, 1), _mm512_castps512_ps256(v)));
  }
};

}  // namespace

// The entries are the shared template's instances (internal linkage) behind exported pointers.
constinit const MatmulFn matmul_f32_f32 = x86::float_matmul<Lanes16, x86::F32Elems>;
constinit const MatmulFn matmul_f16_f16 = x86::float_matmul<Lanes16, x86::F16Elems>;
constinit const MatmulFn matmul_bf16_bf16 = x86::float_matmul<Lanes16, x86::Bf16Elems>;

}  // namespace tern::kernels::avx512

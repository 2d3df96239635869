// The AVX-512 Q6_K x Q8_K kernel on dense codes (BlockQ6KDense in quant/kquants.h, repacked at
// load), built with -mavx512vbmi (kernels/CMakeLists.txt, this file only); the AVX-512 table takes
// it where CPUID has AVX512_VBMI. Bit-identical to quant::vec_dot_q6_K_q8_K.
//
// Why: on the file's layout the six-bit codes of a 64-element step come from four places (two
// nibble planes and two bit pairs of qh) and cost about seven vector operations per weight row,
// more than the three that multiply, subtract the bias and add under the scales: the 700M and
// 2B4T output heads ran compute-bound, below the memory's speed. Dense codes are one vpermb (48
// bytes spread to six per quadword), one vpmultishiftqb (eight six-bit fields per quadword, each
// to its byte) and one mask. Everything else is kquant_tiles.h's Q6_K path, so the integers and
// float steps are the reference's.
#ifndef __AVX512VBMI__
#error "matmul_q6_k_dense.cpp must be compiled with -mavx512vbmi"
#endif

#include <cstddef>
#include <cstdint>

#include "kernels/x86/avx512/avx512.h"
#include "kernels/x86/avx512/kquant_lanes.h"
#include "kernels/x86/intrinsics.h"
#include "kernels/x86/kquant_tiles.h"
#include "kernels/x86/tile_driver.h"
#include "quant/kquants.h"

namespace tern::kernels::avx512 {
namespace {

// Q6_K's scales, d and bias (x86::Q6Format), codes from BlockQ6KDense. Its codes start where
// Q6_K's ql does (offset 0), so Q6Format::Row::load's ql is the dense stream.
struct Q6DenseFormat : x86::Q6Format {
  static_assert(offsetof(BlockQ6_K, ql) == offsetof(BlockQ6KDense, codes));

  template <class V>
  struct Row : x86::Q6Format::Row<V> {
    // Groups g0 and g0 + 1 (elements 32 g0 .. 32 g0 + 63): 48 bytes from byte 24 g0. The 64-byte
    // load ends at most at byte 208 of the 210-byte block.
    __m512i codes(int g0) const {
      // Quadword k of the result takes bytes 6k .. 6k + 5 (codes 8k .. 8k + 7); its top two
      // bytes are never selected below.
      const __m512i spread = _mm512_set_epi8(
          47, 47, 47, 46, 45, 44, 43, 42, 41, 41, 41, 40, 39, 38, 37, 36, 35, 35, 35, 34, 33, 32,
          31, 30, 29, 29, 29, 28, 27, 26, 25, 24, 23, 23, 23, 22, 21, 20, 19, 18, 17, 17, 17, 16,
          15, 14, 13, 12, 11, 11, 11, 10, 9, 8, 7, 6, 5, 5, 5, 4, 3, 2, 1, 0);
      // Byte i of each quadword: the eight bits from bit 6 i.
      const __m512i fields = _mm512_set1_epi64(0x2a241e18120c0600);
      const __m512i bytes = _mm512_permutexvar_epi8(
          spread, _mm512_loadu_si512(this->ql + static_cast<ptrdiff_t>(24 * g0)));
      return _mm512_and_si512(_mm512_multishift_epi64_epi8(fields, bytes), _mm512_set1_epi8(0x3f));
    }
  };
};

using Tiles =
    x86::KQuantTiles<KQuantLanes, Q6DenseFormat, kKQuantRowTile, kKQuantColTile, kKQuantGemvRows>;

}  // namespace

void matmul_q6_K_q8_K_dense(const TypeTraits& /*w_type*/, const std::byte* w, size_t w_stride,
                            int64_t /*n_rows*/, const std::byte* x, size_t x_stride, int64_t n_x,
                            int64_t k, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  x86::TileDriver<Tiles>::run(w, w_stride, x, x_stride, n_x, k, y, ldy, r0, r1);
}

}  // namespace tern::kernels::avx512

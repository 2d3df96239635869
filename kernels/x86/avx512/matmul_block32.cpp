// Q5_0 x Q8_0, Q5_1 x Q8_1, MXFP4 x Q8_0 and BFP8 x BFP8 matrix products with AVX-512 VNNI (EVEX
// vpdpbusd on 256-bit registers), bit-identical to the scalar reference
// (quant::vec_dot_q5_0_q8_0, vec_dot_q5_1_q8_1, vec_dot_mxfp4_q8_0 and vec_dot_bfp8_bfp8).
//
// Theory of operation: kernels/x86/block32_formats.h gives the orders; this file the byte dots.
// vpdpbusd sums exactly lane l's four products of unsigned codes by signed activations; codes
// offset by k start each lane at -k times the sum of its activations (the same instruction, once
// per activation block). Signed mantissas go in as w + 128 (w XOR 0x80) with k = 128, exact for
// any int8. Bit e of qh is a mask bit: vmovdqu8 with that mask writes 16 into byte e.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/x86/avx512/avx512.h"
#include "kernels/x86/block32_formats.h"
#include "kernels/x86/block_lanes.h"
#include "kernels/x86/intrinsics.h"
#include "kernels/x86/tile_driver.h"

namespace tern::kernels::avx512 {
namespace {

struct ByteDots : x86::Tiles<kQ8RowTile, kQ8ColTile, kQ8GemvRows> {
  static __m256i bias(__m256i a, char k) {
    return _mm256_sub_epi32(_mm256_setzero_si256(),
                            _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(k), a));
  }
  static __m256i unsigned_lanes(__m256i u, __m256i a, __m256i bias) {
    return _mm256_dpbusd_epi32(bias, u, a);
  }
  static __m256i signed_prepare(__m256i a) { return bias(a, static_cast<char>(0x80)); }
  static __m256i signed_lanes(__m256i w, __m256i a, __m256i prepared) {
    return _mm256_dpbusd_epi32(prepared,
                               _mm256_xor_si256(w, _mm256_set1_epi8(static_cast<char>(0x80))), a);
  }
  static __m256i high_bits(uint32_t qh) { return _mm256_maskz_mov_epi8(qh, _mm256_set1_epi8(16)); }
};

}  // namespace

MatmulFn block32_matmul(TensorType type) {
  return x86::block32_matmul<ByteDots>(type);
}

}  // namespace tern::kernels::avx512

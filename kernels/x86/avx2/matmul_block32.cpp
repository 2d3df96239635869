// Q5_0 x Q8_0, Q5_1 x Q8_1, MXFP4 x Q8_0 and BFP8 x BFP8 matrix products with AVX2 (vpmaddubsw),
// bit-identical to the scalar reference (quant::vec_dot_q5_0_q8_0, vec_dot_q5_1_q8_1,
// vec_dot_mxfp4_q8_0 and vec_dot_bfp8_bfp8).
//
// Theory of operation: kernels/x86/block32_formats.h gives the orders; this file the byte dots.
// vpmaddubsw multiplies the unsigned codes (at most 31) by the signed activations into int16
// pairs (at most 2 x 31 x 128), and the pairs of k x a, computed the same way once per activation
// block, are subtracted from them; vpmaddwd by 1 widens lane l's two pairs exactly. Signed
// mantissas take llama.cpp's sign trick, |w| times a * sign(w), exact while a != -128 (which
// neither Q8_0's nor BFP8's quantizer writes).
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/x86/avx2/avx2.h"
#include "kernels/x86/block32_formats.h"
#include "kernels/x86/block_lanes.h"
#include "kernels/x86/intrinsics.h"
#include "kernels/x86/tile_driver.h"

namespace tern::kernels::avx2 {
namespace {

struct ByteDots : x86::Tiles<kQ8RowTile, kQ8ColTile, kQ8GemvRows> {
  static __m256i bias(__m256i a, char k) { return _mm256_maddubs_epi16(_mm256_set1_epi8(k), a); }
  static __m256i unsigned_lanes(__m256i u, __m256i a, __m256i bias) {
    return _mm256_madd_epi16(_mm256_sub_epi16(_mm256_maddubs_epi16(u, a), bias),
                             _mm256_set1_epi16(1));
  }
  static __m256i signed_prepare(__m256i a) { return a; }
  static __m256i signed_lanes(__m256i w, __m256i a, __m256i /*prepared*/) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w)),
                             _mm256_set1_epi16(1));
  }
  // Byte e gets byte e / 8 of qh, then its bit e % 8 decides.
  static __m256i high_bits(uint32_t qh) {
    const __m256i spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32(static_cast<int>(qh)),
        _mm256_setr_epi64x(0, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303));
    const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201));
    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit),
                            _mm256_set1_epi8(16));
  }
};

}  // namespace

MatmulFn block32_matmul(TensorType type) {
  return x86::block32_matmul<ByteDots>(type);
}

}  // namespace tern::kernels::avx2

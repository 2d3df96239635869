// Q8_0 x Q8_0 matrix product with AVX2 (vpmaddubsw), bit-identical to quant::vec_dot_q8_0_q8_0
// (the output head of most quantized files) for activations from its from_float.
//
// Theory of operation: kernels/x86/block_lanes.h gives the order. As llama.cpp's AVX2 kernel,
// vpmaddubsw multiplies |w| (unsigned; -128 becomes 128) by a * sign(w) into int16 pairs. A pair is
// at most 2 x 128 x 127, so nothing saturates as long as a != -128, which Q8_0's from_float never
// produces (it rounds to -127..127); sign(w) * -128 would wrap.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/x86/avx2/avx2.h"
#include "kernels/x86/block_lanes.h"
#include "kernels/x86/intrinsics.h"
#include "kernels/x86/tile_driver.h"
#include "quant/blocks.h"

namespace tern::kernels::avx2 {
namespace {

struct Q8Weights {
  static constexpr size_t kBlock = sizeof(BlockQ8_0);
  static constexpr int kRowTile = kQ8RowTile;
  static constexpr int kColTile = kQ8ColTile;
  static constexpr int kGemvRows = kQ8GemvRows;
  static __m256i prepare(__m256i a) { return a; }
  static __m256i lanes(const uint8_t* block, __m256i a, __m256i /*prepared*/) {
    const __m256i q =
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + offsetof(BlockQ8_0, qs)));
    const __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(a, q));
    return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
  }
};

}  // namespace

void matmul_q8_0_q8_0(const TypeTraits& /*w_type*/, const std::byte* w, size_t w_stride,
                      int64_t /*n_rows*/, const std::byte* x, size_t x_stride, int64_t n_x,
                      int64_t k, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  x86::TileDriver<x86::BlockLanes<Q8Weights>>::run(w, w_stride, x, x_stride, n_x, k, y, ldy, r0,
                                                   r1);
}

}  // namespace tern::kernels::avx2

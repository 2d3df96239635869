// Q8_0 x Q8_0 matrix product with AVX-512 VNNI (EVEX vpdpbusd on 256-bit registers),
// bit-identical to quant::vec_dot_q8_0_q8_0 (the output head of most quantized files).
//
// Theory of operation: kernels/x86/block_lanes.h gives the order. One block is one ymm: vpdpbusd
// sums exactly lane l's four products. It multiplies unsigned by signed bytes, so the weights go
// in as w + 128 (w XOR 0x80, any int8 including -128) and each lane starts at -128 * (a[4l] + ...
// + a[4l+3]), computed once per activation block with the same instruction; the integer is exact.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/x86/avx512/avx512.h"
#include "kernels/x86/block_lanes.h"
#include "kernels/x86/intrinsics.h"
#include "kernels/x86/tile_driver.h"
#include "quant/blocks.h"

namespace tern::kernels::avx512 {
namespace {

struct Q8Weights {
  static constexpr size_t kBlock = sizeof(BlockQ8_0);
  static constexpr int kRowTile = kQ8RowTile;
  static constexpr int kColTile = kQ8ColTile;
  static constexpr int kGemvRows = kQ8GemvRows;
  static __m256i prepare(__m256i a) {
    const __m256i bias = _mm256_set1_epi8(static_cast<char>(0x80));
    return _mm256_sub_epi32(_mm256_setzero_si256(),
                            _mm256_dpbusd_epi32(_mm256_setzero_si256(), bias, a));
  }
  static __m256i lanes(const uint8_t* block, __m256i a, __m256i start) {
    const __m256i q =
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + offsetof(BlockQ8_0, qs)));
    return _mm256_dpbusd_epi32(start,
                               _mm256_xor_si256(q, _mm256_set1_epi8(static_cast<char>(0x80))), a);
  }
};

}  // namespace

void matmul_q8_0_q8_0(const TypeTraits& /*w_type*/, const std::byte* w, size_t w_stride,
                      int64_t /*n_rows*/, const std::byte* x, size_t x_stride, int64_t n_x,
                      int64_t k, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  x86::TileDriver<x86::BlockLanes<Q8Weights>>::run(w, w_stride, x, x_stride, n_x, k, y, ldy, r0,
                                                   r1);
}

}  // namespace tern::kernels::avx512

// Activation rows to Q8_0/Q8_1 with AVX2 (what the engine runs before every Q4_0, Q5_x, Q8_0 and
// MXFP4 product; scalar, it was 5.5% of a 2-thread pp128 profile on Q4_0 and ran on one thread):
// kernels/quantize_q8_0_lanes.h over four 8-lane registers per block.
#include <cstdint>

#include "kernels/quantize_q8_0_lanes.h"
#include "kernels/x86/avx2/avx2.h"
#include "kernels/x86/avx2/simd.h"
#include "kernels/x86/intrinsics.h"
#include "kernels/x86/tile_driver.h"

namespace tern::kernels::avx2 {
namespace {

struct Q8Lanes : Lanes {
  static uint16_t to_fp16(float f) { return x86::fp16_bits(f); }
  static V abs(V v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

  static int32_t round_pack(const V (&v)[4], int8_t* qs) {
    __m256i q[4];
    for (int r = 0; r < 4; ++r) q[r] = _mm256_cvtps_epi32(v[r]);
    const int32_t sum = x86::hsum_epi32(
        _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
    // packs work within 128-bit halves: the permute puts the 32 bytes back in element order.
    const __m256i w =
        _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(qs),
                        _mm256_permutevar8x32_epi32(w, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
    return sum;
  }
};

}  // namespace

void quantize_row_q8_0(const float* src, void* dst, int64_t n) {
  q8_0_lanes::quantize_row_q8_0<Q8Lanes>(src, dst, n);
}
void quantize_row_q8_1(const float* src, void* dst, int64_t n) {
  q8_0_lanes::quantize_row_q8_1<Q8Lanes>(src, dst, n);
}

}  // namespace tern::kernels::avx2

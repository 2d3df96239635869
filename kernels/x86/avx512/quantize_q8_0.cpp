// Activation rows to Q8_0/Q8_1 with AVX-512 (what the engine runs before every Q4_0, Q5_x, Q8_0
// and MXFP4 product): kernels/quantize_q8_0_lanes.h over two 16-lane registers per block;
// vpmovsdb saturates to int8 directly.
#include <cstdint>

#include "kernels/quantize_q8_0_lanes.h"
#include "kernels/x86/avx512/avx512.h"
#include "kernels/x86/avx512/simd.h"
#include "kernels/x86/intrinsics.h"
#include "kernels/x86/tile_driver.h"

namespace tern::kernels::avx512 {
namespace {

struct Q8Lanes : Lanes {
  static uint16_t to_fp16(float f) { return x86::fp16_bits(f); }
  static V abs(V v) { return _mm512_abs_ps(v); }

  static int32_t round_pack(const V (&v)[2], int8_t* qs) {
    const __m512i q0 = _mm512_cvtps_epi32(v[0]), q1 = _mm512_cvtps_epi32(v[1]);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(qs), _mm512_cvtsepi32_epi8(q0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(qs + 16), _mm512_cvtsepi32_epi8(q1));
    return _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
  }
};

}  // namespace

void quantize_row_q8_0(const float* src, void* dst, int64_t n) {
  q8_0_lanes::quantize_row_q8_0<Q8Lanes>(src, dst, n);
}
void quantize_row_q8_1(const float* src, void* dst, int64_t n) {
  q8_0_lanes::quantize_row_q8_1<Q8Lanes>(src, dst, n);
}

}  // namespace tern::kernels::avx512

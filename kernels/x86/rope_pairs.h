// RoPE's pair rotations with SSE/AVX, shared by the AVX2 and AVX-512 policies of
// kernels/elementwise_lanes.h's rope (both ISAs have these 128/256-bit forms). Included only by
// x86 kernel files; everything here has internal linkage.
#pragma once

#include "kernels/x86/intrinsics.h"

namespace tern::kernels::x86 {
namespace {

struct RopePairs {
  // Four interleaved pairs (x0, x1) with (c, s): even lanes x0*c - x1*s, odd lanes x0*s + x1*c,
  // one fmaddsub (x1's products rounded first).
  static void rope4(float* v, const float* cs) {
    const __m256 xv = _mm256_loadu_ps(v);
    const __m256 c = _mm256_loadu_ps(cs);
    const __m256 x1s = _mm256_mul_ps(_mm256_movehdup_ps(xv), _mm256_permute_ps(c, 0xb1));
    _mm256_storeu_ps(v, _mm256_fmaddsub_ps(_mm256_moveldup_ps(xv), c, x1s));
  }

  // One pair with explicit addsub: GCC 12's SLP vectorizer turns the plain scalar form into
  // fmaddsub despite -ffp-contract=off.
  static void rope1(float* v, const float* cs) {
    const auto pair = [](const float* p) {
      return _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(p)));
    };
    const __m128 xv = pair(v), c = pair(cs);
    const __m128 x0cs = _mm_mul_ps(_mm_moveldup_ps(xv), c);
    const __m128 x1sc = _mm_mul_ps(_mm_movehdup_ps(xv), _mm_shuffle_ps(c, c, 0xb1));
    _mm_store_sd(reinterpret_cast<double*>(v), _mm_castps_pd(_mm_addsub_ps(x0cs, x1sc)));
  }
};

}  // namespace
}  // namespace tern::kernels::x86

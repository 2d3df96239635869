// LayerNorm, residual add + LayerNorm and LayerNorm + GELU + residual add with AVX-512,
// bit-identical to scalar::layer_norm, scalar::add_layer_norm and scalar::layer_norm_gelu_add
// (llama.cpp's norm, mul and add ops, and its gelu): kernels/layer_norm_lanes.h (theory of
// operation there) over 16-float lanes; the tails are masked loads and stores.
#include <cstdint>

#include "kernels/layer_norm_lanes.h"
#include "kernels/x86/avx512/avx512.h"
#include "kernels/x86/avx512/gelu16.h"
#include "kernels/x86/intrinsics.h"

namespace tern::kernels::avx512 {
namespace {

struct Lanes {
  using V = __m512;
  static constexpr int64_t kWidth = 16;

  static __mmask16 mask(int64_t k) {
    return k >= 16 ? __mmask16{0xffff} : static_cast<__mmask16>((1u << k) - 1);
  }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V load_n(const float* p, int64_t k) { return _mm512_maskz_loadu_ps(mask(k), p); }
  static void store_n(float* p, V v, int64_t k) { _mm512_mask_storeu_ps(p, mask(k), v); }
  static V splat(float f) { return _mm512_set1_ps(f); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static float sqrt(float f) { return _mm_cvtss_f32(_mm_sqrt_ss(_mm_set_ss(f))); }
  static V gelu(V v, const float* table) { return gelu16(v, table); }

  template <bool kNonNegative>
  static layer_norm_lanes::ChunkSums chunk_sums(const V (&d)[layer_norm_lanes::kChunk / kWidth]) {
    const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff);
    const __m512i exp_mask = _mm512_set1_epi32(0x7f800000);
    const __m512i min_exp = _mm512_set1_epi32(0x00800000);  // subnormals: the step of exponent 1
    __m512i e = exp_mask;
    __m512d sum = _mm512_setzero_pd();
    __m512 abs_sum = _mm512_setzero_ps();
    for (const V& v : d) {
      const __m512i a = _mm512_and_si512(_mm512_castps_si512(v), abs_mask);
      e = _mm512_mask_min_epu32(e, _mm512_test_epi32_mask(a, a), e,
                                _mm512_max_epu32(_mm512_and_si512(a, exp_mask), min_exp));
      sum = _mm512_add_pd(sum, _mm512_add_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(v)),
                                             _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1))));
      if (!kNonNegative) abs_sum = _mm512_add_ps(abs_sum, _mm512_castsi512_ps(a));
    }
    const __m256d h = _mm256_add_pd(_mm512_castpd512_pd256(sum), _mm512_extractf64x4_pd(sum, 1));
    const __m128d q = _mm_add_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1));
    return {.sum = _mm_cvtsd_f64(_mm_add_sd(q, _mm_unpackhi_pd(q, q))),
            .min_field = static_cast<int>(_mm512_reduce_min_epu32(e) >> 23),
            .abs_sum = kNonNegative ? 0.0f : _mm512_reduce_add_ps(abs_sum)};
  }
};

}  // namespace

void layer_norm(const float* x, const float* w, const float* b, float* y, int64_t n, float eps) {
  layer_norm_lanes::layer_norm<Lanes>(x, w, b, y, n, eps);
}

void add_layer_norm(const float* x, const float* r, float* sum, const float* w, const float* b,
                    float* y, int64_t n, float eps) {
  layer_norm_lanes::add_layer_norm<Lanes>(x, r, sum, w, b, y, n, eps);
}

void layer_norm_gelu_add(const float* x, const float* w, const float* b, const float* residual,
                         float* out, int64_t n, float eps) {
  layer_norm_lanes::layer_norm_gelu_add<Lanes>(x, w, b, residual, out, n, eps, gelu_fp16_table());
}

}  // namespace tern::kernels::avx512

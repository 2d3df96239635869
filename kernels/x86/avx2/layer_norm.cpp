// LayerNorm, residual add + LayerNorm and LayerNorm + GELU + residual add with AVX2,
// bit-identical to scalar::layer_norm, scalar::add_layer_norm and scalar::layer_norm_gelu_add
// (llama.cpp's norm, mul and add ops, and its gelu): kernels/layer_norm_lanes.h (theory of
// operation there) over 8-float lanes; the tails are maskload and maskstore.
#include <cstdint>

#include "kernels/layer_norm_lanes.h"
#include "kernels/x86/avx2/avx2.h"
#include "kernels/x86/avx2/gelu8.h"
#include "kernels/x86/intrinsics.h"

namespace tern::kernels::avx2 {
namespace {

struct Lanes {
  using V = __m256;
  static constexpr int64_t kWidth = 8;

  // Lanes [0, k): maskload and maskstore read and write nothing else.
  static __m256i mask(int64_t k) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(k)),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V load_n(const float* p, int64_t k) {
    return k == kWidth ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, mask(k));
  }
  static void store_n(float* p, V v, int64_t k) {
    if (k == kWidth) {
      _mm256_storeu_ps(p, v);
    } else {
      _mm256_maskstore_ps(p, mask(k), v);
    }
  }
  static V splat(float f) { return _mm256_set1_ps(f); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static float sqrt(float f) { return _mm_cvtss_f32(_mm_sqrt_ss(_mm_set_ss(f))); }
  static V gelu(V v, const float* table) { return gelu8(v, table); }

  template <bool kNonNegative>
  static layer_norm_lanes::ChunkSums chunk_sums(const V (&d)[layer_norm_lanes::kChunk / kWidth]) {
    const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff);
    const __m256i exp_mask = _mm256_set1_epi32(0x7f800000);
    const __m256i min_exp = _mm256_set1_epi32(0x00800000);  // subnormals: the step of exponent 1
    __m256i e = exp_mask;
    __m256d sum = _mm256_setzero_pd();
    __m256 abs_sum = _mm256_setzero_ps();
    for (const V& v : d) {
      const __m256i a = _mm256_and_si256(_mm256_castps_si256(v), abs_mask);
      // The exponent field (at least 1) of a nonzero element; 255 for a zero.
      const __m256i zero = _mm256_cmpeq_epi32(a, _mm256_setzero_si256());
      const __m256i field = _mm256_max_epu32(_mm256_and_si256(a, exp_mask), min_exp);
      e = _mm256_min_epu32(e, _mm256_or_si256(field, _mm256_and_si256(zero, exp_mask)));
      sum = _mm256_add_pd(sum, _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)),
                                             _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1))));
      if (!kNonNegative) abs_sum = _mm256_add_ps(abs_sum, _mm256_castsi256_ps(a));
    }
    __m128i e4 = _mm_min_epu32(_mm256_castsi256_si128(e), _mm256_extracti128_si256(e, 1));
    e4 = _mm_min_epu32(e4, _mm_shuffle_epi32(e4, 0x4e));
    e4 = _mm_min_epu32(e4, _mm_shuffle_epi32(e4, 0xb1));
    const __m128d q = _mm_add_pd(_mm256_castpd256_pd128(sum), _mm256_extractf128_pd(sum, 1));
    __m128 r = _mm_add_ps(_mm256_castps256_ps128(abs_sum), _mm256_extractf128_ps(abs_sum, 1));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    return {.sum = _mm_cvtsd_f64(_mm_add_sd(q, _mm_unpackhi_pd(q, q))),
            .min_field = static_cast<int>(static_cast<uint32_t>(_mm_cvtsi128_si32(e4)) >> 23),
            .abs_sum = _mm_cvtss_f32(_mm_add_ss(r, _mm_movehdup_ps(r)))};
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

}  // namespace tern::kernels::avx2

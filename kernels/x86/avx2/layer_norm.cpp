// LayerNorm, residual add + LayerNorm and LayerNorm + GELU + residual add with AVX2,
// bit-identical to scalar::layer_norm, scalar::add_layer_norm and scalar::layer_norm_gelu_add
// (llama.cpp's norm, mul and add ops, and its gelu).
//
// Theory of operation: as in kernels/x86/avx512/layer_norm.cpp. The reference's double sums are
// taken 64 floats at a time in lanes wherever no add of the reference's one-at-a-time chain can
// round (s and the chunk's elements multiples of one power of two q, |s| + sum |d| < 2^53 q; q
// from the lowest set bit of s and the exponent fields of the elements);
// other chunks, and the elements that do not fill a chunk, are added one at a time. The fused
// kernel applies GELU (gelu8.h, as the gelu kernel) and the residual add before each store.
#include <cstdint>

#include "kernels/exact_chunk.h"
#include "kernels/x86/avx2/avx2.h"
#include "kernels/x86/avx2/gelu8.h"
#include "kernels/x86/intrinsics.h"

namespace tern::kernels::avx2 {
namespace {

constexpr int kVecs = 8;
constexpr int64_t kChunk = 8 * kVecs;

double lane_sum(__m256d v) {
  const __m128d q = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  return _mm_cvtsd_f64(_mm_add_sd(q, _mm_unpackhi_pd(q, q)));
}

// The sum of the lanes of v (any order).
float lane_sum(__m256 v) {
  __m128 r = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  r = _mm_add_ps(r, _mm_movehl_ps(r, r));
  return _mm_cvtss_f32(_mm_add_ss(r, _mm_movehdup_ps(r)));
}

// s + d[0][0] + ... + d[kVecs - 1][7] rounded as the reference's one-at-a-time double adds.
// kNonNegative: the elements are squares, so sum |d| is their sum.
template <bool kNonNegative>
double add_chunk(double s, const __m256 (&d)[kVecs]) {
  const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff);
  const __m256i exp_mask = _mm256_set1_epi32(0x7f800000);
  const __m256i min_exp = _mm256_set1_epi32(0x00800000);  // subnormals: the step of exponent 1
  __m256i e = exp_mask;
  __m256d sum = _mm256_setzero_pd();
  __m256 abs_sum = _mm256_setzero_ps();
  for (const __m256& v : d) {
    const __m256i a = _mm256_and_si256(_mm256_castps_si256(v), abs_mask);
    // The exponent field (at least 1) of a nonzero element; 255 for a zero, which imposes nothing.
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
  const auto e_min = static_cast<int>(static_cast<uint32_t>(_mm_cvtsi128_si32(e4)) >> 23);

  const double chunk = lane_sum(sum);
  // An upper bound of sum |d|, enlarged by far more than its rounding error: the squares' double
  // lane sum, or a float sum of the magnitudes.
  const double bound = kNonNegative ? chunk * (1.0 + 0x1p-40)
                                    : static_cast<double>(lane_sum(abs_sum)) * (1.0 + 0x1p-16);
  if (chunk_sum_is_exact(s, e_min, bound)) return s + chunk;

  alignas(32) float f[kChunk];
  for (int j = 0; j < kVecs; ++j) _mm256_store_ps(f + 8 * j, d[j]);
  for (const float v : f) s += static_cast<double>(v);
  return s;
}

// Lanes [0, left) of a row tail: maskload/maskstore read and write nothing else.
__m256i tail_mask(int64_t left) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(left)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// The reference's normalise: the sum of squares of x - mean, then the element-wise steps; y gets
// finish(v, i, m) of the 8 results v of elements i.. (lanes m valid). y may be x.
template <class Finish>
void normalise(const float* x, double sum, const float* w, const float* b, float* y, int64_t n,
               float eps, Finish finish) {
  const auto nd = static_cast<double>(n);
  const auto mean = static_cast<float>(sum / nd);
  const __m256 vmean = _mm256_set1_ps(mean);
  double sum2 = 0.0;
  int64_t i = 0;
  for (; i + kChunk <= n; i += kChunk) {
    __m256 sq[kVecs];
    for (int j = 0; j < kVecs; ++j) {
      const __m256 v = _mm256_sub_ps(_mm256_loadu_ps(x + i + 8 * j), vmean);
      sq[j] = _mm256_mul_ps(v, v);
    }
    sum2 = add_chunk<true>(sum2, sq);
  }
  for (; i < n; ++i) {
    const float v = x[i] - mean;
    sum2 += static_cast<double>(v * v);
  }
  const auto var = static_cast<float>(sum2 / nd);
  const __m256 vscale = _mm256_set1_ps(1.0f / _mm_cvtss_f32(_mm_sqrt_ss(_mm_set_ss(var + eps))));
  const auto step = [&](__m256 xv, int64_t at, __m256i m) {
    __m256 v = _mm256_mul_ps(_mm256_sub_ps(xv, vmean), vscale);
    if (w != nullptr) v = _mm256_mul_ps(v, _mm256_maskload_ps(w + at, m));
    if (b != nullptr) v = _mm256_add_ps(v, _mm256_maskload_ps(b + at, m));
    return finish(v, at, m);
  };
  const __m256i all = _mm256_set1_epi32(-1);
  for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, step(_mm256_loadu_ps(x + i), i, all));
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    _mm256_maskstore_ps(y + i, m, step(_mm256_maskload_ps(x + i, m), i, m));
  }
}

void normalise(const float* x, double sum, const float* w, const float* b, float* y, int64_t n,
               float eps) {
  normalise(x, sum, w, b, y, n, eps, [](__m256 v, int64_t, __m256i) { return v; });
}

double row_sum(const float* x, int64_t n) {
  double sum = 0.0;
  int64_t i = 0;
  for (; i + kChunk <= n; i += kChunk) {
    __m256 d[kVecs];
    for (int j = 0; j < kVecs; ++j) d[j] = _mm256_loadu_ps(x + i + 8 * j);
    sum = add_chunk<false>(sum, d);
  }
  for (; i < n; ++i) sum += static_cast<double>(x[i]);
  return sum;
}

}  // namespace

void layer_norm(const float* x, const float* w, const float* b, float* y, int64_t n, float eps) {
  normalise(x, row_sum(x, n), w, b, y, n, eps);
}

void add_layer_norm(const float* x, const float* r, float* sum, const float* w, const float* b,
                    float* y, int64_t n, float eps) {
  double total = 0.0;
  int64_t i = 0;
  for (; i + kChunk <= n; i += kChunk) {
    __m256 d[kVecs];
    for (int j = 0; j < kVecs; ++j) {
      d[j] = _mm256_add_ps(_mm256_loadu_ps(x + i + 8 * j), _mm256_loadu_ps(r + i + 8 * j));
      _mm256_storeu_ps(sum + i + 8 * j, d[j]);
    }
    total = add_chunk<false>(total, d);
  }
  for (; i < n; ++i) {
    const float s = x[i] + r[i];
    sum[i] = s;
    total += static_cast<double>(s);
  }
  normalise(sum, total, w, b, y, n, eps);
}

void layer_norm_gelu_add(const float* x, const float* w, const float* b, const float* residual,
                         float* out, int64_t n, float eps) {
  const float* table = gelu_fp16_table();
  normalise(x, row_sum(x, n), w, b, out, n, eps, [=](__m256 v, int64_t i, __m256i m) {
    return _mm256_add_ps(_mm256_maskload_ps(residual + i, m), gelu8(v, table));
  });
}

}  // namespace tern::kernels::avx2

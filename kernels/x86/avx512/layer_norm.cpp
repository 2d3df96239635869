// LayerNorm, residual add + LayerNorm and LayerNorm + GELU + residual add with AVX-512,
// bit-identical to scalar::layer_norm, scalar::add_layer_norm and scalar::layer_norm_gelu_add
// (llama.cpp's norm, mul and add ops, and its gelu).
//
// Theory of operation. The reference adds floats to a double one element at a time (the row sum,
// then the sum of squares): a chain of dependent adds whose rounding depends on the order, so it
// cannot simply be split across lanes. But few of those adds round, since a double has 29 more
// significand bits than a float. Take a chunk of 64 floats d_j and the running sum s. If s and
// every d_j are multiples of one power of two q, and |s| + sum |d_j| < 2^53 q, then every partial
// sum, in the reference's order or in any other, is a multiple of q below 2^53 q in magnitude and
// therefore exact: the chunk may be summed in lanes and added to s, giving the reference's double.
// q is the smaller of the weight of the lowest set bit of s (a sum that has not rounded is a
// multiple of the smallest step of the floats in it, far above its last significand bit) and
// the step of the smallest nonzero d_j (from the exponent fields; zeros impose nothing); sum |d_j|
// is bounded by a lane sum enlarged by far more than that sum's rounding error (the test is
// chunk_sum_is_exact in kernels/exact_chunk.h, shared with the AVX2 and NEON LayerNorms).
// A chunk that fails the test (where the reference's sum may round: an element below about
// 2^-29 of s, a sum that outgrows 53 bits, an infinity or a NaN) is added one element at a time,
// as the reference does, as are the elements of the row that do not fill a chunk. The normalisation
// after the sums is element-wise and takes the reference's steps; the fused kernel applies GELU
// (gelu16.h, as the gelu kernel) and the residual add to each vector before storing it.
#include <cstdint>

#include "kernels/exact_chunk.h"
#include "kernels/x86/avx512/avx512.h"
#include "kernels/x86/avx512/gelu16.h"
#include "kernels/x86/intrinsics.h"

namespace tern::kernels::avx512 {
namespace {

constexpr int kVecs = 4;
constexpr int64_t kChunk = 16 * kVecs;

double lane_sum(__m512d v) {
  const __m256d h = _mm256_add_pd(_mm512_castpd512_pd256(v), _mm512_extractf64x4_pd(v, 1));
  const __m128d q = _mm_add_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1));
  return _mm_cvtsd_f64(_mm_add_sd(q, _mm_unpackhi_pd(q, q)));
}

// s + d[0] + ... + d[kChunk - 1] rounded as the reference's one-at-a-time double adds (see the
// top). kNonNegative: the elements are squares, so sum |d| is their sum.
template <bool kNonNegative>
double add_chunk(double s, const __m512 (&d)[kVecs]) {
  const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff);
  const __m512i exp_mask = _mm512_set1_epi32(0x7f800000);
  const __m512i min_exp = _mm512_set1_epi32(0x00800000);  // subnormals: the step of exponent 1
  // Smallest exponent field of a nonzero element; 255 when all are zero (then the test passes).
  __m512i e = exp_mask;
  __m512d sum = _mm512_setzero_pd();
  __m512 abs_sum = _mm512_setzero_ps();
  for (const __m512& v : d) {
    const __m512i a = _mm512_and_si512(_mm512_castps_si512(v), abs_mask);
    e = _mm512_mask_min_epu32(e, _mm512_test_epi32_mask(a, a), e,
                              _mm512_max_epu32(_mm512_and_si512(a, exp_mask), min_exp));
    sum = _mm512_add_pd(sum, _mm512_add_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(v)),
                                           _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1))));
    if (!kNonNegative) abs_sum = _mm512_add_ps(abs_sum, _mm512_castsi512_ps(a));
  }
  const auto e_min = static_cast<int>(_mm512_reduce_min_epu32(e) >> 23);

  const double chunk = lane_sum(sum);
  // An upper bound of sum |d|, enlarged by far more than its rounding error: the squares' double
  // lane sum (within 2^-47 of itself), or a float sum of the magnitudes (within 2^-18).
  const double bound = kNonNegative
                           ? chunk * (1.0 + 0x1p-40)
                           : static_cast<double>(_mm512_reduce_add_ps(abs_sum)) * (1.0 + 0x1p-16);
  if (chunk_sum_is_exact(s, e_min, bound)) return s + chunk;

  alignas(64) float f[kChunk];
  for (int j = 0; j < kVecs; ++j) _mm512_store_ps(f + 16 * j, d[j]);
  for (const float v : f) s += static_cast<double>(v);
  return s;
}

// The reference's normalise: the sum of squares of x - mean, then the element-wise steps; y gets
// finish(v, i, m) of the 16 results v of elements i.. (lanes m valid). y may be x.
template <class Finish>
void normalise(const float* x, double sum, const float* w, const float* b, float* y, int64_t n,
               float eps, Finish finish) {
  const auto nd = static_cast<double>(n);
  const auto mean = static_cast<float>(sum / nd);
  const __m512 vmean = _mm512_set1_ps(mean);
  double sum2 = 0.0;
  int64_t i = 0;
  for (; i + kChunk <= n; i += kChunk) {
    __m512 sq[kVecs];
    for (int j = 0; j < kVecs; ++j) {
      const __m512 v = _mm512_sub_ps(_mm512_loadu_ps(x + i + 16 * j), vmean);
      sq[j] = _mm512_mul_ps(v, v);
    }
    sum2 = add_chunk<true>(sum2, sq);
  }
  for (; i < n; ++i) {
    const float v = x[i] - mean;
    sum2 += static_cast<double>(v * v);
  }
  const auto var = static_cast<float>(sum2 / nd);
  const __m512 vscale = _mm512_set1_ps(1.0f / _mm_cvtss_f32(_mm_sqrt_ss(_mm_set_ss(var + eps))));
  for (i = 0; i < n; i += 16) {
    const __mmask16 m =
        n - i >= 16 ? __mmask16{0xffff} : static_cast<__mmask16>((1u << (n - i)) - 1);
    __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vmean), vscale);
    if (w != nullptr) v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, w + i));
    if (b != nullptr) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, b + i));
    _mm512_mask_storeu_ps(y + i, m, finish(v, i, m));
  }
}

void normalise(const float* x, double sum, const float* w, const float* b, float* y, int64_t n,
               float eps) {
  normalise(x, sum, w, b, y, n, eps, [](__m512 v, int64_t, __mmask16) { return v; });
}

double row_sum(const float* x, int64_t n) {
  double sum = 0.0;
  int64_t i = 0;
  for (; i + kChunk <= n; i += kChunk) {
    __m512 d[kVecs];
    for (int j = 0; j < kVecs; ++j) d[j] = _mm512_loadu_ps(x + i + 16 * j);
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
    __m512 d[kVecs];
    for (int j = 0; j < kVecs; ++j) {
      d[j] = _mm512_add_ps(_mm512_loadu_ps(x + i + 16 * j), _mm512_loadu_ps(r + i + 16 * j));
      _mm512_storeu_ps(sum + i + 16 * j, d[j]);
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
  normalise(x, row_sum(x, n), w, b, out, n, eps, [=](__m512 v, int64_t i, __mmask16 m) {
    return _mm512_add_ps(_mm512_maskz_loadu_ps(m, residual + i), gelu16(v, table));
  });
}

}  // namespace tern::kernels::avx512

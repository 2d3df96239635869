// LayerNorm and residual add + LayerNorm with AVX-512, bit-identical to scalar::layer_norm and
// scalar::add_layer_norm (llama.cpp's norm, mul and add ops).
//
// Theory of operation. The reference adds floats to a double one element at a time (the row sum,
// then the sum of squares): a chain of dependent adds whose rounding depends on the order, so it
// cannot simply be split across lanes. But few of those adds round, since a double has 29 more
// significand bits than a float. Take a chunk of 32 floats d_j and the running sum s. If s and
// every d_j are multiples of one power of two q, and |s| + sum |d_j| < 2^53 q, then every partial
// sum, in the reference's order or in any other, is a multiple of q below 2^53 q in magnitude and
// therefore exact: the chunk may be summed in lanes and added to s, giving the reference's double.
// q is the smaller of the weights of the last significand bit of s and of the smallest nonzero
// d_j (read from the exponent fields; zeros impose nothing), and sum |d_j| is bounded by a lane
// sum enlarged by 2^-40, far more than that sum's rounding error. A chunk that fails the test
// (the sum crossing a power of two with its last bit set, an element below about 2^-29 of s, an
// infinity or a NaN) is added one element at a time, as the reference does. The elements of the
// row that do not fill a chunk are added one at a time too. The normalisation after the sums is
// element-wise and takes the reference's steps.
#include <cstdint>
#include <cstring>

#include "kernels/x86/avx512/avx512.h"
#include "kernels/x86/intrinsics.h"

namespace tern::kernels::avx512 {
namespace {

constexpr int64_t kChunk = 32;

// 2^e for -1022 <= e <= 1023.
double pow2(int e) {
  const uint64_t bits = static_cast<uint64_t>(e + 1023) << 52;
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

// Exponent of the weight of the last significand bit of a nonzero double.
int quantum_exp(double s) {
  uint64_t bits;
  std::memcpy(&bits, &s, sizeof bits);
  const int e = static_cast<int>((bits >> 52) & 0x7ff);
  return (e > 0 ? e : 1) - 1075;
}

// The sum of the lanes of v (any order; callers only use it where it is exact or a bound).
double lane_sum(__m512d v) {
  const __m256d h = _mm256_add_pd(_mm512_castpd512_pd256(v), _mm512_extractf64x4_pd(v, 1));
  const __m128d q = _mm_add_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1));
  return _mm_cvtsd_f64(_mm_add_sd(q, _mm_unpackhi_pd(q, q)));
}

// The 32 floats of a and b widened to double and summed four to a lane.
__m512d widened_sum(__m512 a, __m512 b) {
  const __m512d a_lo = _mm512_cvtps_pd(_mm512_castps512_ps256(a));
  const __m512d a_hi = _mm512_cvtps_pd(_mm512_extractf32x8_ps(a, 1));
  const __m512d b_lo = _mm512_cvtps_pd(_mm512_castps512_ps256(b));
  const __m512d b_hi = _mm512_cvtps_pd(_mm512_extractf32x8_ps(b, 1));
  return _mm512_add_pd(_mm512_add_pd(a_lo, a_hi), _mm512_add_pd(b_lo, b_hi));
}

// s + d[0] + ... + d[31] rounded as the reference's one-at-a-time double adds (see the top).
double add_chunk(double s, __m512 d0, __m512 d1) {
  const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff);
  const __m512i exp_mask = _mm512_set1_epi32(0x7f800000);
  const __m512i min_exp = _mm512_set1_epi32(0x00800000);  // subnormals: the step of exponent 1
  const __m512i a0 = _mm512_and_si512(_mm512_castps_si512(d0), abs_mask);
  const __m512i a1 = _mm512_and_si512(_mm512_castps_si512(d1), abs_mask);
  // Smallest exponent field of a nonzero element; 255 when all are zero (then the test passes).
  __m512i e = exp_mask;
  e = _mm512_mask_min_epu32(e, _mm512_test_epi32_mask(a0, a0), e,
                            _mm512_max_epu32(_mm512_and_si512(a0, exp_mask), min_exp));
  e = _mm512_mask_min_epu32(e, _mm512_test_epi32_mask(a1, a1), e,
                            _mm512_max_epu32(_mm512_and_si512(a1, exp_mask), min_exp));
  const auto e_min = static_cast<int>(_mm512_reduce_min_epu32(e) >> 23);

  const __m512d sum = widened_sum(d0, d1);
  const __m512d abs_sum = widened_sum(_mm512_castsi512_ps(a0), _mm512_castsi512_ps(a1));

  int q = e_min - 150;
  if (s != 0.0) {
    const int qs = quantum_exp(s);
    if (qs < q) q = qs;
  }
  const double bound = lane_sum(abs_sum);
  const double abs_s = s < 0.0 ? -s : s;
  // NaN and infinity make the comparison false.
  if (abs_s + (bound + bound * 0x1p-40) < pow2(53 + q)) return s + lane_sum(sum);

  alignas(64) float d[kChunk];
  _mm512_store_ps(d, d0);
  _mm512_store_ps(d + 16, d1);
  for (float v : d) s += static_cast<double>(v);
  return s;
}

// The reference's normalise: the sum of squares of x - mean, then the element-wise steps.
void normalise(const float* x, double sum, const float* w, const float* b, float* y, int64_t n,
               float eps) {
  const auto nd = static_cast<double>(n);
  const auto mean = static_cast<float>(sum / nd);
  const __m512 vmean = _mm512_set1_ps(mean);
  double sum2 = 0.0;
  int64_t i = 0;
  for (; i + kChunk <= n; i += kChunk) {
    const __m512 v0 = _mm512_sub_ps(_mm512_loadu_ps(x + i), vmean);
    const __m512 v1 = _mm512_sub_ps(_mm512_loadu_ps(x + i + 16), vmean);
    sum2 = add_chunk(sum2, _mm512_mul_ps(v0, v0), _mm512_mul_ps(v1, v1));
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
    _mm512_mask_storeu_ps(y + i, m, v);
  }
}

}  // namespace

void layer_norm(const float* x, const float* w, const float* b, float* y, int64_t n, float eps) {
  double sum = 0.0;
  int64_t i = 0;
  for (; i + kChunk <= n; i += kChunk) {
    sum = add_chunk(sum, _mm512_loadu_ps(x + i), _mm512_loadu_ps(x + i + 16));
  }
  for (; i < n; ++i) sum += static_cast<double>(x[i]);
  normalise(x, sum, w, b, y, n, eps);
}

void add_layer_norm(const float* x, const float* r, float* sum, const float* w, const float* b,
                    float* y, int64_t n, float eps) {
  double total = 0.0;
  int64_t i = 0;
  for (; i + kChunk <= n; i += kChunk) {
    const __m512 s0 = _mm512_add_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(r + i));
    const __m512 s1 = _mm512_add_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(r + i + 16));
    _mm512_storeu_ps(sum + i, s0);
    _mm512_storeu_ps(sum + i + 16, s1);
    total = add_chunk(total, s0, s1);
  }
  for (; i < n; ++i) {
    const float s = x[i] + r[i];
    sum[i] = s;
    total += static_cast<double>(s);
  }
  normalise(sum, total, w, b, y, n, eps);
}

}  // namespace tern::kernels::avx512

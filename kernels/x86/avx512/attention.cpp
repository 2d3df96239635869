// AVX-512 attention (the KernelTable entry): kernels/attention_lanes.h (theory of operation
// there) over simd.h's 16-lane policy. Here: the tree over 16 positions at once and the gather of
// the scores' double tail.
#include <cstddef>
#include <cstdint>

#include "kernels/attention_lanes.h"
#include "kernels/x86/avx512/avx512.h"
#include "kernels/x86/avx512/simd.h"
#include "kernels/x86/intrinsics.h"

namespace tern::kernels::avx512 {
namespace {

struct AttentionLanes : Lanes {
  static constexpr int kChains = 16;

  static float half(uint16_t h) { return _cvtsh_ss(h); }

  // reduce_add_16 of 16 vectors at once; lane p of the result is v[p]'s sum. Each add pairs the
  // lanes the reference pairs: (i + 8, i), then (i + 4, i), then (0, 2) and (1, 3), then the two.
  static __m512 reduce_positions(const __m512 (&v)[16]) {
    __m512 w[8];
    for (int k = 0; k < 8; ++k) {
      const __m512 a = v[2 * k], b = v[2 * k + 1];
      w[k] = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 2, 3, 2)),
                           _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(1, 0, 1, 0)));
    }
    __m512 u[4];
    for (int k = 0; k < 4; ++k) {
      const __m512 a = w[2 * k], c = w[2 * k + 1];
      u[k] = _mm512_add_ps(_mm512_shuffle_f32x4(a, c, _MM_SHUFFLE(3, 1, 3, 1)),
                           _mm512_shuffle_f32x4(a, c, _MM_SHUFFLE(2, 0, 2, 0)));
    }
    __m512 s[2];
    for (int k = 0; k < 2; ++k) {
      const __m512 p = u[2 * k], q = u[2 * k + 1];
      s[k] = _mm512_add_ps(_mm512_shuffle_ps(p, q, _MM_SHUFFLE(1, 0, 1, 0)),
                           _mm512_shuffle_ps(p, q, _MM_SHUFFLE(3, 2, 3, 2)));
    }
    const __m512 f = _mm512_add_ps(_mm512_shuffle_ps(s[0], s[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                   _mm512_shuffle_ps(s[0], s[1], _MM_SHUFFLE(3, 1, 3, 1)));
    // f[4 * L + e] is position L + 4 * e.
    const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    return _mm512_permutexvar_ps(idx, f);
  }

  // The columns [0, n4) (n4 a multiple of 4) of ggml_vec_dot_f16's double tail for 16 positions
  // side by side: acc lane l += double(k16[l][i] * q16[i]) in element order. One 64-bit gather per
  // 8 positions reads 4 halves of each row, so the columns come transposed without a pass through
  // memory.
  static void score_columns(DV (&acc)[2], const float* q16, const uint16_t* k, size_t k_stride,
                            int64_t cnt, int64_t n4) {
    const auto row_bytes = static_cast<int>(k_stride * sizeof(uint16_t));
    const __m256i rows = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i idx[2];
    __mmask8 mk[2];
    for (int h = 0; h < 2; ++h) {
      idx[h] = _mm256_mullo_epi32(_mm256_add_epi32(rows, _mm256_set1_epi32(8 * h)),
                                  _mm256_set1_epi32(row_bytes));
      const int64_t n = cnt - 8 * h;
      mk[h] = n >= 8 ? __mmask8{0xff} : static_cast<__mmask8>(n <= 0 ? 0u : (1u << n) - 1u);
    }
    const char* base = reinterpret_cast<const char*>(k);
    for (int64_t i = 0; i < n4; i += 4) {
      __m512i g[2];
      for (int h = 0; h < 2; ++h) {
        g[h] = _mm512_mask_i32gather_epi64(_mm512_setzero_si512(), mk[h], idx[h], base + 2 * i, 1);
      }
#pragma GCC unroll 4
      for (int c = 0; c < 4; ++c) {
        const __m256 qc = _mm256_set1_ps(q16[i + c]);
        for (int h = 0; h < 2; ++h) {
          const __m128i hw = _mm512_cvtepi64_epi16(_mm512_srli_epi64(g[h], 16 * c));
          const __m256 pr = _mm256_mul_ps(_mm256_cvtph_ps(hw), qc);
          acc[h] = _mm512_add_pd(acc[h], _mm512_cvtps_pd(pr));
        }
      }
    }
  }

  static void dstore(double* p, const DV (&d)[2]) {
    _mm512_store_pd(p, d[0]);
    _mm512_store_pd(p + 8, d[1]);
  }
  static void dload(const double* p, DV (&d)[2]) {
    d[0] = _mm512_load_pd(p);
    d[1] = _mm512_load_pd(p + 8);
  }
};

}  // namespace

void attention(const float* q, const uint16_t* k, size_t k_pos_stride, const uint16_t* v,
               size_t v_pos_stride, int64_t n_pos, int64_t n_kv, int64_t n_batch, int64_t head_dim,
               float scale, float* out, float* scratch) {
  attention_lanes::attention<AttentionLanes>(q, k, k_pos_stride, v, v_pos_stride, n_pos, n_kv,
                                             n_batch, head_dim, scale, out, scratch, softmax);
}

}  // namespace tern::kernels::avx512

// AVX2 attention (the KernelTable entry): kernels/attention_lanes.h (theory of operation
// there) over simd.h's 8-lane policy, with the 16-lane accumulators held as two 8-lane registers
// (lanes 0..7 and 8..15) and the lane chains of the weighted sum accumulated 8 at a time. Here: the
// tree over 8 positions at once and the gather of the scores' double tail.
#include <cstddef>
#include <cstdint>

#include "kernels/attention_lanes.h"
#include "kernels/x86/avx2/avx2.h"
#include "kernels/x86/avx2/simd.h"
#include "kernels/x86/intrinsics.h"

namespace tern::kernels::avx2 {
namespace {

struct AttentionLanes : Lanes {
  static constexpr int kChains = 8;

  static float half(uint16_t h) { return _cvtsh_ss(h); }

  // The rest of reduce_add_16 for 8 positions at once (t8[p] from lanes_*); lane p of the result is
  // position p's sum. Each add pairs the lanes the reference pairs: (i + 4, i), then (0, 2) and
  // (1, 3), then the two.
  static __m256 reduce_positions(const __m256 (&t8)[8]) {
    __m256 u[4];
    for (int k = 0; k < 4; ++k) {
      const __m256 a = t8[2 * k], c = t8[2 * k + 1];
      u[k] = _mm256_add_ps(_mm256_permute2f128_ps(a, c, 0x31), _mm256_permute2f128_ps(a, c, 0x20));
    }
    __m256 s[2];
    for (int k = 0; k < 2; ++k) {
      const __m256 p = u[2 * k], q = u[2 * k + 1];
      s[k] = _mm256_add_ps(_mm256_shuffle_ps(p, q, _MM_SHUFFLE(1, 0, 1, 0)),
                           _mm256_shuffle_ps(p, q, _MM_SHUFFLE(3, 2, 3, 2)));
    }
    const __m256 f = _mm256_add_ps(_mm256_shuffle_ps(s[0], s[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                   _mm256_shuffle_ps(s[0], s[1], _MM_SHUFFLE(3, 1, 3, 1)));
    // f[4 * L + e] is position L + 2 * e.
    return _mm256_permutevar8x32_ps(f, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  }

  // The columns [0, n4) (n4 a multiple of 4) of ggml_vec_dot_f16's double tail for 8 positions
  // side by side: acc lane l += double(k16[l][i] * q16[i]) in element order. One 64-bit gather per
  // 4 positions reads 4 halves of each row; two byte shuffles and a permute turn them into columns.
  static void score_columns(DV (&acc)[2], const float* q16, const uint16_t* k, size_t k_stride,
                            int64_t cnt, int64_t n4) {
    const auto row_bytes = static_cast<int>(k_stride * sizeof(uint16_t));
    __m128i idx[2];
    __m256i mk[2];
    for (int h = 0; h < 2; ++h) {
      idx[h] = _mm_mullo_epi32(_mm_setr_epi32(4 * h, 4 * h + 1, 4 * h + 2, 4 * h + 3),
                               _mm_set1_epi32(row_bytes));
      // 64-bit lane j of mk[h] is all ones when position 4h + j exists.
      const __m256i pos = _mm256_setr_epi64x(4 * h, 4 * h + 1, 4 * h + 2, 4 * h + 3);
      mk[h] = _mm256_cmpgt_epi64(_mm256_set1_epi64x(cnt), pos);
    }
    // In each 128-bit lane (two rows a, b of 4 halves): [a0 b0 a1 b1 a2 b2 a3 b3].
    const __m256i interleave =
        _mm256_setr_epi8(0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15, 0, 1, 8, 9, 2, 3, 10,
                         11, 4, 5, 12, 13, 6, 7, 14, 15);
    // Then dword c of both lanes side by side: [col0 of 4 rows, col1, col2, col3].
    const __m256i gather_cols = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    const char* base = reinterpret_cast<const char*>(k);
    for (int64_t i = 0; i < n4; i += 4) {
      __m256i cols[2];
      for (int h = 0; h < 2; ++h) {
        const __m256i g = _mm256_mask_i32gather_epi64(
            _mm256_setzero_si256(), reinterpret_cast<const long long*>(base + 2 * i), idx[h], mk[h],
            1);
        cols[h] = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(g, interleave), gather_cols);
      }
      const __m128i c01[2] = {_mm256_castsi256_si128(cols[0]), _mm256_castsi256_si128(cols[1])};
      const __m128i c23[2] = {_mm256_extracti128_si256(cols[0], 1),
                              _mm256_extracti128_si256(cols[1], 1)};
      const __m128i col[4] = {
          _mm_unpacklo_epi64(c01[0], c01[1]), _mm_unpackhi_epi64(c01[0], c01[1]),
          _mm_unpacklo_epi64(c23[0], c23[1]), _mm_unpackhi_epi64(c23[0], c23[1])};
      for (int c = 0; c < 4; ++c) {
        const __m256 pr = _mm256_mul_ps(_mm256_cvtph_ps(col[c]), _mm256_set1_ps(q16[i + c]));
        acc[0] = _mm256_add_pd(acc[0], _mm256_cvtps_pd(_mm256_castps256_ps128(pr)));
        acc[1] = _mm256_add_pd(acc[1], _mm256_cvtps_pd(_mm256_extractf128_ps(pr, 1)));
      }
    }
  }

  static void dstore(double* p, const DV (&d)[2]) {
    _mm256_store_pd(p, d[0]);
    _mm256_store_pd(p + 4, d[1]);
  }
  static void dload(const double* p, DV (&d)[2]) {
    d[0] = _mm256_load_pd(p);
    d[1] = _mm256_load_pd(p + 4);
  }
};

}  // namespace

void attention(const float* q, const uint16_t* k, size_t k_pos_stride, const uint16_t* v,
               size_t v_pos_stride, int64_t n_pos, int64_t n_kv, int64_t n_batch, int64_t head_dim,
               float scale, float* out, float* scratch) {
  attention_lanes::attention<AttentionLanes>(q, k, k_pos_stride, v, v_pos_stride, n_pos, n_kv,
                                             n_batch, head_dim, scale, out, scratch, softmax);
}

}  // namespace tern::kernels::avx2

// AVX2 attention for one query head over the fp16 KV cache, bit-identical to the scalar reference
// (kernels/scalar/attention.cpp): scores, softmax (avx2::softmax), weighted sum of V.
//
// Theory of operation. As the AVX-512 kernel (kernels/x86/avx512/attention.cpp), with each of the
// reference's 16-lane accumulators held as two 8-lane registers (lanes 0..7 and 8..15):
//  - Scores: the lanes run along head_dim; a position's 16 lanes are first folded to 8 (the
//    reference's first step, hi + lo), then 8 positions finish the tree at once with shuffles.
//  - Weighted sum: lane l's chain (positions l, l + 16, ...) is one register over 8 head
//    dimensions; the lanes are accumulated 8 at a time (16 live registers would spill) and the
//    tree over them is vertical adds.
// Cells at or past n_pos are zero in the reference and are skipped (they would add +0 to
// accumulators that are never -0). fp16 conversions use F16C (round to nearest even).
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/x86/avx2/avx2.h"
#include "kernels/x86/avx2/simd.h"
#include "kernels/x86/intrinsics.h"

namespace tern::kernels::avx2 {
namespace {

__m256 load_h(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
// The first n < 8 halves of p, zeros after.
__m256 load_h(const uint16_t* p, int64_t n) {
  uint16_t tmp[8] = {};
  std::memcpy(tmp, p, static_cast<size_t>(n) * sizeof(uint16_t));
  return load_h(tmp);
}

// f32 -> fp16 -> f32 of the first n elements of x, in place or to y.
void round_fp16(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(load_first(x + i, n - i), _MM_FROUND_TO_NEAREST_INT);
    store_first(y + i, n - i, _mm256_cvtph_ps(h));
  }
}

// ---- Scores ----------------------------------------------------------------------------------

// The first step of reduce_add_16 (lanes 8..15 plus lanes 0..7) on the 16 lanes of
// ggml_vec_dot_f16's vector part over k[0, np), np a multiple of 64, after its four accumulators
// are combined as (acc0 + acc2) + (acc1 + acc3).
__m256 lanes_ggml(const uint16_t* k, const float* q16, int64_t np) {
  __m256 a[4][2];
  for (auto& aj : a) aj[0] = aj[1] = _mm256_setzero_ps();
  for (int64_t i = 0; i < np; i += 64) {
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) {
      a[j / 2][j % 2] =
          _mm256_fmadd_ps(load_h(k + i + 8 * j), _mm256_loadu_ps(q16 + i + 8 * j), a[j / 2][j % 2]);
    }
  }
  __m256 h[2];
  for (int s = 0; s < 2; ++s) {
    h[s] = _mm256_add_ps(_mm256_add_ps(a[0][s], a[2][s]), _mm256_add_ps(a[1][s], a[3][s]));
  }
  return _mm256_add_ps(h[1], h[0]);
}

// The same for tinyBLAS's single 16-lane accumulator over k[0, n), n a multiple of 16.
__m256 lanes_sgemm(const uint16_t* k, const float* q16, int64_t n) {
  __m256 lo = _mm256_setzero_ps(), hi = lo;
  for (int64_t i = 0; i < n; i += 16) {
    lo = _mm256_fmadd_ps(load_h(k + i), _mm256_loadu_ps(q16 + i), lo);
    hi = _mm256_fmadd_ps(load_h(k + i + 8), _mm256_loadu_ps(q16 + i + 8), hi);
  }
  return _mm256_add_ps(hi, lo);
}

// The rest of reduce_add_16 for 8 positions at once (t8[p] from lanes_*); lane p of the result is
// position p's sum. Each add pairs the lanes the reference pairs: (i + 4, i), then (0, 2) and
// (1, 3), then the two.
__m256 reduce_8x8(const __m256 (&t8)[8]) {
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

// ggml_vec_dot_f16's double tail for 8 positions side by side: sum[l] = double(r[l]), then
// sum[l] += double(k16[l][i] * q16[i]) for i in [0, n_tail), in element order (each product is
// exact in f32). One 64-bit gather per 4 positions reads 4 halves of each row; two byte shuffles
// and a permute turn them into columns. The last n_tail % 4 go one position at a time (a 64-bit
// read there could pass the end of the cache).
__m256 double_tail(__m256 r, const float* q16, const uint16_t* k, size_t k_stride, int64_t cnt,
                   int64_t n_tail) {
  __m256d acc[2] = {_mm256_cvtps_pd(_mm256_castps256_ps128(r)),
                    _mm256_cvtps_pd(_mm256_extractf128_ps(r, 1))};
  // Byte offsets of the rows as int32 (the gather's index): fine below 2^27 elements per row.
  const int64_t n4 = k_stride < (size_t{1} << 27) ? n_tail / 4 * 4 : 0;
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
  const __m256i interleave = _mm256_setr_epi8(0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15,
                                              0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15);
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
    const __m128i col[4] = {_mm_unpacklo_epi64(c01[0], c01[1]), _mm_unpackhi_epi64(c01[0], c01[1]),
                            _mm_unpacklo_epi64(c23[0], c23[1]), _mm_unpackhi_epi64(c23[0], c23[1])};
    for (int c = 0; c < 4; ++c) {
      const __m256 pr = _mm256_mul_ps(_mm256_cvtph_ps(col[c]), _mm256_set1_ps(q16[i + c]));
      acc[0] = _mm256_add_pd(acc[0], _mm256_cvtps_pd(_mm256_castps256_ps128(pr)));
      acc[1] = _mm256_add_pd(acc[1], _mm256_cvtps_pd(_mm256_extractf128_ps(pr, 1)));
    }
  }
  if (n4 < n_tail) {
    alignas(32) double sum[8];
    _mm256_store_pd(sum, acc[0]);
    _mm256_store_pd(sum + 4, acc[1]);
    for (int64_t l = 0; l < cnt; ++l) {
      const uint16_t* kp = k + static_cast<size_t>(l) * k_stride;
      for (int64_t i = n4; i < n_tail; ++i) {
        sum[l] += static_cast<double>(_cvtsh_ss(kp[i]) * q16[i]);
      }
    }
    acc[0] = _mm256_load_pd(sum);
    acc[1] = _mm256_load_pd(sum + 4);
  }
  return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm256_cvtpd_ps(acc[0])),
                              _mm256_cvtpd_ps(acc[1]), 1);
}

// s[p] = dot(k16[p], q16) * scale for p in [0, n_pos), 8 positions per step.
void scores(const float* q16, const uint16_t* k, size_t k_stride, int64_t n_pos, int64_t hd,
            bool sgemm, float scale, float* s) {
  const int64_t np = sgemm ? hd : hd / 64 * 64;
  const int64_t n_tail = hd - np;  // ggml_vec_dot_f16's double tail, < 64
  const __m256 vscale = _mm256_set1_ps(scale);
  for (int64_t p0 = 0; p0 < n_pos; p0 += 8) {
    const int64_t cnt = n_pos - p0 < 8 ? n_pos - p0 : 8;
    __m256 t8[8];
    for (int l = 0; l < 8; ++l) {
      if (l >= cnt) {
        t8[l] = _mm256_setzero_ps();
        continue;
      }
      const uint16_t* kp = k + static_cast<size_t>(p0 + l) * k_stride;
      t8[l] = sgemm ? lanes_sgemm(kp, q16, hd) : lanes_ggml(kp, q16, np);
    }
    __m256 r = reduce_8x8(t8);
    if (n_tail > 0)
      r = double_tail(r, q16 + np, k + static_cast<size_t>(p0) * k_stride + np, k_stride, cnt,
                      n_tail);
    store_first(s + p0, cnt, _mm256_mul_ps(r, vscale));
  }
}

// ---- Weighted sum of V ------------------------------------------------------------------------

// Loads 8 head dimensions of one cached position (the first `width` of them when Partial).
template <bool Partial>
__m256 v_row(const uint16_t* v, size_t v_stride, int64_t p, int64_t width) {
  const uint16_t* vp = v + static_cast<size_t>(p) * v_stride;
  return Partial ? load_h(vp, width) : load_h(vp);
}

// a[l] = fma(v16[p], p16[p], a[l]) for p = first + l + stride * t below `end`, l < 8.
template <bool Partial>
void accumulate(__m256 (&a)[8], const uint16_t* v, size_t v_stride, const float* p16, int64_t first,
                int64_t stride, int64_t end, int64_t width) {
  int64_t p0 = first;
  for (; p0 + 8 <= end; p0 += stride) {
#pragma GCC unroll 8
    for (int l = 0; l < 8; ++l) {
      a[l] = _mm256_fmadd_ps(v_row<Partial>(v, v_stride, p0 + l, width),
                             _mm256_set1_ps(p16[p0 + l]), a[l]);
    }
  }
  for (int l = 0; p0 + l < end; ++l) {
    a[l] = _mm256_fmadd_ps(v_row<Partial>(v, v_stride, p0 + l, width), _mm256_set1_ps(p16[p0 + l]),
                           a[l]);
  }
}

// Lane l's chains (positions first + l + stride * t, l < 16), 8 lanes per pass.
template <bool Partial>
void lane_chains(__m256 (&a)[16], const uint16_t* v, size_t v_stride, const float* p16,
                 int64_t first, int64_t stride, int64_t end, int64_t width) {
  for (int h = 0; h < 2; ++h) {
    __m256 part[8];
    for (auto& x : part) x = _mm256_setzero_ps();
    accumulate<Partial>(part, v, v_stride, p16, first + 8 * h, stride, end, width);
    for (int l = 0; l < 8; ++l) a[8 * h + l] = part[l];
  }
}

// reduce_add_16 across 16 registers, lane by lane.
__m256 reduce_lanes(const __m256 (&a)[16]) {
  __m256 t8[8];
  for (int i = 0; i < 8; ++i) t8[i] = _mm256_add_ps(a[i + 8], a[i]);
  __m256 t4[4];
  for (int i = 0; i < 4; ++i) t4[i] = _mm256_add_ps(t8[i + 4], t8[i]);
  return _mm256_add_ps(_mm256_add_ps(t4[0], t4[2]), _mm256_add_ps(t4[1], t4[3]));
}

// ggml_vec_dot_f16's double tail over cells [np, n_pos), in cell order, added to the vector parts
// already in out[d0, d0 + 8 * NCH) (each product is exact in f32). NCH chunks at once keep 2 * NCH
// independent add chains in flight.
template <int NCH>
void double_tail(const uint16_t* v, size_t v_stride, const float* p16, int64_t np, int64_t n_pos,
                 int64_t hd, int64_t d0, float* out) {
  int64_t width[NCH];
  __m256d s[NCH][2];
  for (int c = 0; c < NCH; ++c) {
    width[c] = hd - d0 - 8 * c < 8 ? hd - d0 - 8 * c : 8;
    const __m256 r = load_first(out + d0 + 8 * c, width[c]);
    s[c][0] = _mm256_cvtps_pd(_mm256_castps256_ps128(r));
    s[c][1] = _mm256_cvtps_pd(_mm256_extractf128_ps(r, 1));
  }
  for (int64_t p = np; p < n_pos; ++p) {
    const uint16_t* vp = v + static_cast<size_t>(p) * v_stride + d0;
    const __m256 bp = _mm256_set1_ps(p16[p]);
    for (int c = 0; c < NCH; ++c) {
      const __m256 x = width[c] == 8 ? load_h(vp + 8 * c) : load_h(vp + 8 * c, width[c]);
      const __m256 pr = _mm256_mul_ps(x, bp);
      s[c][0] = _mm256_add_pd(s[c][0], _mm256_cvtps_pd(_mm256_castps256_ps128(pr)));
      s[c][1] = _mm256_add_pd(s[c][1], _mm256_cvtps_pd(_mm256_extractf128_ps(pr, 1)));
    }
  }
  for (int c = 0; c < NCH; ++c) {
    const __m256 r = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm256_cvtpd_ps(s[c][0])),
                                          _mm256_cvtpd_ps(s[c][1]), 1);
    store_first(out + d0 + 8 * c, width[c], r);
  }
}

// The weighted sum's vector part (everything for tinyBLAS) for 8 head dimensions (the first
// `width` when Partial).
template <bool Partial>
__m256 weighted_chunk(const uint16_t* v, size_t v_stride, const float* p16, int64_t n_pos,
                      int64_t n_kv, bool sgemm, int64_t width) {
  if (sgemm) {
    __m256 a[16];
    lane_chains<Partial>(a, v, v_stride, p16, 0, 16, n_pos, width);
    return reduce_lanes(a);
  }
  // ggml_vec_dot_f16 over n_kv cells: cell p of the vector part [0, np) goes to accumulator
  // (p / 16) % 4, lane p % 16; the four are combined as (acc0 + acc2) + (acc1 + acc3) lane by lane.
  const int64_t np = n_kv / 64 * 64;
  const int64_t end = n_pos < np ? n_pos : np;
  // Accumulators no cell reaches stay +0, and x + +0 is x for every x but -0, which no FMA chain
  // from +0 produces: they are left out of the combination.
  const int n_acc = end >= 64 ? 4 : static_cast<int>((end + 15) / 16);
  __m256 acc[4][16];
  for (int j = 0; j < 4; ++j) {
    if (j < n_acc) {
      lane_chains<Partial>(acc[j], v, v_stride, p16, 16 * j, 64, end, width);
    } else {
      for (auto& x : acc[j]) x = _mm256_setzero_ps();
    }
  }
  __m256 e[16];
  for (int l = 0; l < 16; ++l) {
    const __m256 c = n_acc > 2 ? _mm256_add_ps(acc[0][l], acc[2][l]) : acc[0][l];
    const __m256 d = n_acc > 3 ? _mm256_add_ps(acc[1][l], acc[3][l]) : acc[1][l];
    e[l] = n_acc > 1 ? _mm256_add_ps(c, d) : c;
  }
  return reduce_lanes(e);  // double_tail adds cells np.. (n_pos > np)
}

}  // namespace

void attention(const float* q, const uint16_t* k, size_t k_pos_stride, const uint16_t* v,
               size_t v_pos_stride, int64_t n_pos, int64_t n_kv, int64_t n_batch, int64_t head_dim,
               float scale, float* out, float* scratch) {
  // q rounded to fp16, kept in `out` until the weighted sum overwrites it.
  round_fp16(q, out, head_dim);
  const bool kq_sgemm = n_batch >= 2 && head_dim % 16 == 0 && n_kv % 4 == 0;
  scores(out, k, k_pos_stride, n_pos, head_dim, kq_sgemm, scale, scratch);

  softmax(scratch, n_pos, n_kv);
  round_fp16(scratch, scratch, n_pos);

  const bool kqv_sgemm = n_batch >= 2 && head_dim % 4 == 0 && n_kv % 16 == 0;
  for (int64_t d = 0; d < head_dim; d += 8) {
    const int64_t width = head_dim - d < 8 ? head_dim - d : 8;
    const __m256 r =
        width == 8
            ? weighted_chunk<false>(v + d, v_pos_stride, scratch, n_pos, n_kv, kqv_sgemm, 8)
            : weighted_chunk<true>(v + d, v_pos_stride, scratch, n_pos, n_kv, kqv_sgemm, width);
    store_first(out + d, width, r);
  }
  const int64_t np = n_kv / 64 * 64;
  if (kqv_sgemm || n_pos <= np) return;
  for (int64_t d0 = 0; d0 < head_dim; d0 += 32) {
    switch ((head_dim - d0 + 7) / 8) {
      case 1:
        double_tail<1>(v, v_pos_stride, scratch, np, n_pos, head_dim, d0, out);
        break;
      case 2:
        double_tail<2>(v, v_pos_stride, scratch, np, n_pos, head_dim, d0, out);
        break;
      case 3:
        double_tail<3>(v, v_pos_stride, scratch, np, n_pos, head_dim, d0, out);
        break;
      default:
        double_tail<4>(v, v_pos_stride, scratch, np, n_pos, head_dim, d0, out);
        break;
    }
  }
}

}  // namespace tern::kernels::avx2

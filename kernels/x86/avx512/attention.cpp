// AVX-512 attention for one query head over the fp16 KV cache, bit-identical to the scalar
// reference (kernels/scalar/attention.cpp): scores, softmax (avx512::softmax), weighted sum of V.
//
// Theory of operation. The reference is a set of dot products, each with a fixed association
// (quant/float_dot.h): 16 lanes (64 for ggml_vec_dot_f16: four accumulators of 16), each an FMA
// chain in element order, then a fixed tree over the lanes, then (ggml only) a double tail in
// element order. Any schedule that computes every lane's chain and then the same tree gives the
// same bits, so this kernel picks the one that fits the data layout:
//  - Scores (q16 . k16 per cached position): the lanes run along head_dim, which is contiguous in
//    K, so each position is a few 16-wide FMAs; the tree over the 16 lanes is done for 16
//    positions at once with shuffles (each add combines the same two lanes as the reference).
//  - Weighted sum (p16 . v16 per head dimension): the lanes run along positions, and V is
//    position-major, so lane l's chain (positions l, l + 16, ...) is one register holding that
//    chain for 16 head dimensions; the tree over the lanes becomes vertical adds of registers.
// Cells at or past n_pos are zero in the reference: they would add +0 to accumulators that are
// never -0, so they are skipped. fp16 conversions use F16C/AVX-512 cvtph (round to nearest even,
// as the reference; only NaN payloads could differ, and the cache holds none).
#include <cstddef>
#include <cstdint>

#include "kernels/x86/avx512/avx512.h"
#include "kernels/x86/avx512/simd.h"
#include "kernels/x86/intrinsics.h"

namespace tern::kernels::avx512 {
namespace {

__m512 load_h(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
__m512 load_h(const uint16_t* p, __mmask16 m) {
  return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}

// ---- Scores ----------------------------------------------------------------------------------

// The 16 lanes of ggml_vec_dot_f16's vector part over k[0, np) (np a multiple of 64), with its
// four accumulators already combined: (acc0 + acc2) + (acc1 + acc3).
__m512 lanes_ggml(const uint16_t* k, const float* q16, int64_t np) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (int64_t i = 0; i < np; i += 64) {
    a0 = _mm512_fmadd_ps(load_h(k + i), _mm512_loadu_ps(q16 + i), a0);
    a1 = _mm512_fmadd_ps(load_h(k + i + 16), _mm512_loadu_ps(q16 + i + 16), a1);
    a2 = _mm512_fmadd_ps(load_h(k + i + 32), _mm512_loadu_ps(q16 + i + 32), a2);
    a3 = _mm512_fmadd_ps(load_h(k + i + 48), _mm512_loadu_ps(q16 + i + 48), a3);
  }
  return _mm512_add_ps(_mm512_add_ps(a0, a2), _mm512_add_ps(a1, a3));
}

// The 16 lanes of tinyBLAS's single accumulator over k[0, n), n a multiple of 16.
__m512 lanes_sgemm(const uint16_t* k, const float* q16, int64_t n) {
  __m512 a = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16)
    a = _mm512_fmadd_ps(load_h(k + i), _mm512_loadu_ps(q16 + i), a);
  return a;
}

// reduce_add_16 of 16 vectors at once; lane p of the result is v[p]'s sum. Each add pairs the
// lanes the reference pairs: (i + 8, i), then (i + 4, i), then (0, 2) and (1, 3), then the two.
__m512 reduce_16x16(const __m512 (&v)[16]) {
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

// ggml_vec_dot_f16's double tail for 16 positions side by side: sum[l] = double(r[l]), then
// sum[l] += double(k16[l][i] * q16[i]) for i in [0, n_tail), in element order (each product is
// exact in f32). One 64-bit gather per 8 positions reads 4 halves of each row, so the columns come
// transposed without a pass through memory; the last n_tail % 4 go one position at a time (a
// 64-bit read there could pass the end of the cache).
__m512 double_tail(__m512 r, const float* q16, const uint16_t* k, size_t k_stride, int64_t cnt,
                   int64_t n_tail) {
  __m512d acc[2] = {_mm512_cvtps_pd(_mm512_castps512_ps256(r)),
                    _mm512_cvtps_pd(_mm512_extractf32x8_ps(r, 1))};
  // Byte offsets of the rows as int32 (the gather's index): fine below 2^27 elements per row.
  const int64_t n4 = k_stride < (size_t{1} << 27) ? n_tail / 4 * 4 : 0;
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
  if (n4 < n_tail) {
    alignas(64) double sum[16];
    _mm512_store_pd(sum, acc[0]);
    _mm512_store_pd(sum + 8, acc[1]);
    for (int64_t l = 0; l < cnt; ++l) {
      const uint16_t* kp = k + static_cast<size_t>(l) * k_stride;
      for (int64_t i = n4; i < n_tail; ++i) {
        sum[l] += static_cast<double>(_cvtsh_ss(kp[i]) * q16[i]);
      }
    }
    acc[0] = _mm512_load_pd(sum);
    acc[1] = _mm512_load_pd(sum + 8);
  }
  return _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(acc[0])),
                            _mm512_cvtpd_ps(acc[1]), 1);
}

// s[p] = dot(k16[p], q16) * scale for p in [0, n_pos), 16 positions per step.
void scores(const float* q16, const uint16_t* k, size_t k_stride, int64_t n_pos, int64_t hd,
            bool sgemm, float scale, float* s) {
  const int64_t np = sgemm ? hd : hd / 64 * 64;
  const int64_t n_tail = hd - np;  // ggml_vec_dot_f16's double tail, < 64
  const __m512 vscale = _mm512_set1_ps(scale);
  for (int64_t p0 = 0; p0 < n_pos; p0 += 16) {
    const int64_t cnt = n_pos - p0 < 16 ? n_pos - p0 : 16;
    __m512 v[16];
    for (int l = 0; l < 16; ++l) {
      if (l >= cnt) {
        v[l] = _mm512_setzero_ps();
        continue;
      }
      const uint16_t* kp = k + static_cast<size_t>(p0 + l) * k_stride;
      v[l] = sgemm ? lanes_sgemm(kp, q16, hd) : lanes_ggml(kp, q16, np);
    }
    __m512 r = reduce_16x16(v);
    if (n_tail > 0)
      r = double_tail(r, q16 + np, k + static_cast<size_t>(p0) * k_stride + np, k_stride, cnt,
                      n_tail);
    _mm512_mask_storeu_ps(s + p0, first_lanes(cnt), _mm512_mul_ps(r, vscale));
  }
}

// ---- Weighted sum of V ------------------------------------------------------------------------

// a[l] = fma(v16[p], p16[p], a[l]) for p = first + l + stride * t below `end`, over the head
// dimensions of one chunk (lanes of m when Masked).
template <bool Masked>
void accumulate(__m512 (&a)[16], const uint16_t* v, size_t v_stride, const float* p16,
                int64_t first, int64_t stride, int64_t end, __mmask16 m) {
  const auto row = [&](int64_t p) {
    const uint16_t* vp = v + static_cast<size_t>(p) * v_stride;
    return Masked ? load_h(vp, m) : load_h(vp);
  };
  int64_t p0 = first;
  for (; p0 + 16 <= end; p0 += stride) {
#pragma GCC unroll 16
    for (int l = 0; l < 16; ++l) {
      a[l] = _mm512_fmadd_ps(row(p0 + l), _mm512_set1_ps(p16[p0 + l]), a[l]);
    }
  }
  for (int l = 0; p0 + l < end; ++l) {
    a[l] = _mm512_fmadd_ps(row(p0 + l), _mm512_set1_ps(p16[p0 + l]), a[l]);
  }
}

// reduce_add_16 across 16 registers, lane by lane.
__m512 reduce_lanes(const __m512 (&a)[16]) {
  __m512 t8[8];
  for (int i = 0; i < 8; ++i) t8[i] = _mm512_add_ps(a[i + 8], a[i]);
  __m512 t4[4];
  for (int i = 0; i < 4; ++i) t4[i] = _mm512_add_ps(t8[i + 4], t8[i]);
  return _mm512_add_ps(_mm512_add_ps(t4[0], t4[2]), _mm512_add_ps(t4[1], t4[3]));
}

// ggml_vec_dot_f16's double tail over cells [np, n_pos), in cell order, added to the vector parts
// already in out[d0, d0 + 16 * NCH) (each product is exact in f32). NCH chunks at once keep 2 * NCH
// independent add chains in flight.
template <int NCH>
void double_tail(const uint16_t* v, size_t v_stride, const float* p16, int64_t np, int64_t n_pos,
                 int64_t hd, int64_t d0, float* out) {
  __mmask16 m[NCH];
  __m512d s[NCH][2];
  for (int c = 0; c < NCH; ++c) {
    m[c] = first_lanes(hd - d0 - 16 * c);
    const __m512 r = _mm512_maskz_loadu_ps(m[c], out + d0 + 16 * c);
    s[c][0] = _mm512_cvtps_pd(_mm512_castps512_ps256(r));
    s[c][1] = _mm512_cvtps_pd(_mm512_extractf32x8_ps(r, 1));
  }
  for (int64_t p = np; p < n_pos; ++p) {
    const uint16_t* vp = v + static_cast<size_t>(p) * v_stride + d0;
    const __m512 bp = _mm512_set1_ps(p16[p]);
    for (int c = 0; c < NCH; ++c) {
      const __m512 pr = _mm512_mul_ps(load_h(vp + 16 * c, m[c]), bp);
      s[c][0] = _mm512_add_pd(s[c][0], _mm512_cvtps_pd(_mm512_castps512_ps256(pr)));
      s[c][1] = _mm512_add_pd(s[c][1], _mm512_cvtps_pd(_mm512_extractf32x8_ps(pr, 1)));
    }
  }
  for (int c = 0; c < NCH; ++c) {
    const __m512 r = _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(s[c][0])),
                                        _mm512_cvtpd_ps(s[c][1]), 1);
    _mm512_mask_storeu_ps(out + d0 + 16 * c, m[c], r);
  }
}

// The weighted sum's vector part (everything for tinyBLAS) for 16 head dimensions (lanes of m
// when Masked).
template <bool Masked>
__m512 weighted_chunk(const uint16_t* v, size_t v_stride, const float* p16, int64_t n_pos,
                      int64_t n_kv, bool sgemm, __mmask16 m) {
  if (sgemm) {
    __m512 a[16];
    for (auto& x : a) x = _mm512_setzero_ps();
    accumulate<Masked>(a, v, v_stride, p16, 0, 16, n_pos, m);
    return reduce_lanes(a);
  }
  // ggml_vec_dot_f16 over n_kv cells: cell p of the vector part [0, np) goes to accumulator
  // (p / 16) % 4, lane p % 16; the four are combined as (acc0 + acc2) + (acc1 + acc3) lane by lane.
  const int64_t np = n_kv / 64 * 64;
  const int64_t end = n_pos < np ? n_pos : np;
  // Accumulators no cell reaches stay +0, and x + +0 is x for every x but -0, which no FMA chain
  // from +0 produces: they are left out of the combination.
  const int n_acc = end >= 64 ? 4 : static_cast<int>((end + 15) / 16);
  __m512 acc[4][16];
  for (int j = 0; j < 4; ++j) {
    for (auto& x : acc[j]) x = _mm512_setzero_ps();
    if (j < n_acc) accumulate<Masked>(acc[j], v, v_stride, p16, 16 * j, 64, end, m);
  }
  __m512 e[16];
  for (int l = 0; l < 16; ++l) {
    const __m512 c = n_acc > 2 ? _mm512_add_ps(acc[0][l], acc[2][l]) : acc[0][l];
    const __m512 d = n_acc > 3 ? _mm512_add_ps(acc[1][l], acc[3][l]) : acc[1][l];
    e[l] = n_acc > 1 ? _mm512_add_ps(c, d) : c;
  }
  return reduce_lanes(e);  // double_tail adds cells np.. (n_pos > np)
}

}  // namespace

void attention(const float* q, const uint16_t* k, size_t k_pos_stride, const uint16_t* v,
               size_t v_pos_stride, int64_t n_pos, int64_t n_kv, int64_t n_batch, int64_t head_dim,
               float scale, float* out, float* scratch) {
  // q rounded to fp16, kept in `out` until the weighted sum overwrites it.
  for (int64_t d = 0; d < head_dim; d += 16) {
    const __mmask16 m = first_lanes(head_dim - d);
    const __m256i h = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, q + d), _MM_FROUND_TO_NEAREST_INT);
    _mm512_mask_storeu_ps(out + d, m, _mm512_cvtph_ps(h));
  }
  const bool kq_sgemm = n_batch >= 2 && head_dim % 16 == 0 && n_kv % 4 == 0;
  scores(out, k, k_pos_stride, n_pos, head_dim, kq_sgemm, scale, scratch);

  softmax(scratch, n_pos, n_kv);
  for (int64_t p = 0; p < n_pos; p += 16) {
    const __mmask16 m = first_lanes(n_pos - p);
    const __m256i h =
        _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, scratch + p), _MM_FROUND_TO_NEAREST_INT);
    _mm512_mask_storeu_ps(scratch + p, m, _mm512_cvtph_ps(h));
  }

  const bool kqv_sgemm = n_batch >= 2 && head_dim % 4 == 0 && n_kv % 16 == 0;
  for (int64_t d = 0; d < head_dim; d += 16) {
    const __mmask16 m = first_lanes(head_dim - d);
    const __m512 r =
        m == 0xffff ? weighted_chunk<false>(v + d, v_pos_stride, scratch, n_pos, n_kv, kqv_sgemm, m)
                    : weighted_chunk<true>(v + d, v_pos_stride, scratch, n_pos, n_kv, kqv_sgemm, m);
    _mm512_mask_storeu_ps(out + d, m, r);
  }
  const int64_t np = n_kv / 64 * 64;
  if (kqv_sgemm || n_pos <= np) return;
  for (int64_t d0 = 0; d0 < head_dim; d0 += 64) {
    switch ((head_dim - d0 + 15) / 16) {
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

}  // namespace tern::kernels::avx512

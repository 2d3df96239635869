// Attention for one query head over the fp16 KV cache (the KernelTable entry `attention`), written
// once over a lanes policy that each ISA's attention.cpp supplies (x86/avx2, x86/avx512, arm/neon);
// bit-identical to the scalar reference (kernels/scalar/attention.cpp): scores, softmax (the ISA's
// softmax entry), weighted sum of V. Included only by per-ISA kernel files; everything here has
// internal linkage, and nothing but standard headers is included.
//
// Theory of operation. The reference is a set of dot products, each with a fixed association
// (quant/float_dot.h): 16 lanes (64 for ggml_vec_dot_f16: four accumulators of 16), each an FMA
// chain in element order, then a fixed tree over the lanes, then (ggml only) a double tail in
// element order. Any schedule that computes every lane's chain and then the same tree gives the
// same bits, so this kernel picks the one that fits the data layout:
//  - Scores (q16 . k16 per cached position): the lanes run along head_dim, which is contiguous in
//    K, so each position is a few FMAs per 16 lanes (AVX2: two 8-lane registers, NEON: four
//    4-lane ones, folded to kWidth lanes by the tree's first steps, hi + lo); the rest of the tree
//    is done for kWidth positions at once with shuffles (each add combines the same two lanes as
//    the reference).
//  - Weighted sum (p16 . v16 per head dimension): the lanes run along positions, and V is
//    position-major, so lane l's chain (positions l, l + 16, ...) is one register holding that
//    chain for kWidth head dimensions; the tree over the lanes becomes vertical adds of registers.
//    AVX2 accumulates 8 lanes at a time (16 live registers would spill).
// Cells at or past n_pos are zero in the reference: they would add +0 to accumulators that are
// never -0, so they are skipped. fp16 conversions use the ISA's (F16C/AVX-512 cvtph, NEON fcvt:
// round to nearest even, as the reference; only NaN payloads could differ, and the cache holds
// none).
//
// The policy A: the ISA's simd.h Lanes (V, DV, kWidth, Tail, tail, full, load, load_n, store_n,
// load_h, round_fp16, zero, splat, add, mul, fma, widen, narrow) plus kChains (lane chains
// accumulated per pass), half(h) (one fp16 to float), reduce_positions(const V (&t)[kWidth]) (the
// tree after its 16 -> kWidth steps for kWidth positions: lane p is position p's sum),
// score_columns(acc, q16, k, k_stride, cnt, n4) (the gathered columns of the scores' double tail)
// and dstore/dload (a DV pair to doubles).
#pragma once

#include <cstddef>
#include <cstdint>

namespace tern::kernels {
namespace {
namespace attention_lanes {

// ---- Scores ----------------------------------------------------------------------------------

// The 16 lanes (registers of kWidth) of an accumulator folded by the tree's first steps to kWidth
// lanes: lanes i + half to lanes i, halving until one register is left (AVX-512's one register is
// already 16 lanes).
template <class A>
typename A::V fold16(const typename A::V (&h)[16 / A::kWidth]) {
  if constexpr (A::kWidth == 4) {
    return A::add(A::add(h[3], h[1]), A::add(h[2], h[0]));
  } else if constexpr (A::kWidth == 8) {
    return A::add(h[1], h[0]);
  } else {
    return h[0];
  }
}

// ggml_vec_dot_f16's vector part over k[0, np) (np a multiple of 64), with its four accumulators
// already combined: (acc0 + acc2) + (acc1 + acc3), then folded.
template <class A>
typename A::V lanes_ggml(const uint16_t* k, const float* q16, int64_t np) {
  using V = typename A::V;
  constexpr int kR = 16 / A::kWidth;
  V a[4][kR];
  for (auto& aj : a) {
    for (auto& x : aj) x = A::zero();
  }
  for (int64_t i = 0; i < np; i += 64) {
#pragma GCC unroll 8
    for (int j = 0; j < 4 * kR; ++j) {
      a[j / kR][j % kR] = A::fma(A::load_h(k + i + A::kWidth * j), A::load(q16 + i + A::kWidth * j),
                                 a[j / kR][j % kR]);
    }
  }
  V h[kR];
  for (int s = 0; s < kR; ++s) h[s] = A::add(A::add(a[0][s], a[2][s]), A::add(a[1][s], a[3][s]));
  return fold16<A>(h);
}

// The same for tinyBLAS's single 16-lane accumulator over k[0, n), n a multiple of 16.
template <class A>
typename A::V lanes_sgemm(const uint16_t* k, const float* q16, int64_t n) {
  constexpr int kR = 16 / A::kWidth;
  typename A::V a[kR];
  for (auto& x : a) x = A::zero();
  for (int64_t i = 0; i < n; i += 16) {
#pragma GCC unroll 2
    for (int s = 0; s < kR; ++s) {
      a[s] = A::fma(A::load_h(k + i + A::kWidth * s), A::load(q16 + i + A::kWidth * s), a[s]);
    }
  }
  return fold16<A>(a);
}

// ggml_vec_dot_f16's double tail for kWidth positions side by side: sum[l] = double(r[l]), then
// sum[l] += double(k16[l][i] * q16[i]) for i in [0, n_tail), in element order (each product is
// exact in f32). The policy gathers 4 columns at a time; the last n_tail % 4 go one position at a
// time (a 64-bit read there could pass the end of the cache).
template <class A>
typename A::V score_tail(typename A::V r, const float* q16, const uint16_t* k, size_t k_stride,
                         int64_t cnt, int64_t n_tail) {
  typename A::DV acc[2];
  A::widen(r, acc);
  // Byte offsets of the rows as int32 (the gather's index): fine below 2^27 elements per row.
  const int64_t n4 = k_stride < (size_t{1} << 27) ? n_tail / 4 * 4 : 0;
  A::score_columns(acc, q16, k, k_stride, cnt, n4);
  if (n4 < n_tail) {
    alignas(64) double sum[A::kWidth];
    A::dstore(sum, acc);
    for (int64_t l = 0; l < cnt; ++l) {
      const uint16_t* kp = k + static_cast<size_t>(l) * k_stride;
      for (int64_t i = n4; i < n_tail; ++i) {
        sum[l] += static_cast<double>(A::half(kp[i]) * q16[i]);
      }
    }
    A::dload(sum, acc);
  }
  return A::narrow(acc);
}

// s[p] = dot(k16[p], q16) * scale for p in [0, n_pos), kWidth positions per step.
template <class A>
void scores(const float* q16, const uint16_t* k, size_t k_stride, int64_t n_pos, int64_t hd,
            bool sgemm, float scale, float* s) {
  using V = typename A::V;
  const int64_t np = sgemm ? hd : hd / 64 * 64;
  const int64_t n_tail = hd - np;  // ggml_vec_dot_f16's double tail, < 64
  const V vscale = A::splat(scale);
  for (int64_t p0 = 0; p0 < n_pos; p0 += A::kWidth) {
    const int64_t cnt = n_pos - p0 < A::kWidth ? n_pos - p0 : A::kWidth;
    V t[A::kWidth];
    for (int l = 0; l < A::kWidth; ++l) {
      if (l >= cnt) {
        t[l] = A::zero();
        continue;
      }
      const uint16_t* kp = k + static_cast<size_t>(p0 + l) * k_stride;
      t[l] = sgemm ? lanes_sgemm<A>(kp, q16, hd) : lanes_ggml<A>(kp, q16, np);
    }
    V r = A::reduce_positions(t);
    if (n_tail > 0) {
      r = score_tail<A>(r, q16 + np, k + static_cast<size_t>(p0) * k_stride + np, k_stride, cnt,
                        n_tail);
    }
    A::store_n(s + p0, A::mul(r, vscale), A::tail(cnt));
  }
}

// ---- Weighted sum of V ------------------------------------------------------------------------

// a[l] = fma(v16[p], p16[p], a[l]) for p = first + l + stride * t below `end`, l < kChains, over
// the head dimensions of one chunk (the lanes of t when Partial).
template <class A, bool Partial>
void accumulate(typename A::V (&a)[A::kChains], const uint16_t* v, size_t v_stride,
                const float* p16, int64_t first, int64_t stride, int64_t end, typename A::Tail t) {
  const auto row = [&](int64_t p) {
    const uint16_t* vp = v + static_cast<size_t>(p) * v_stride;
    return Partial ? A::load_h(vp, t) : A::load_h(vp);
  };
  int64_t p0 = first;
  for (; p0 + A::kChains <= end; p0 += stride) {
#pragma GCC unroll 16
    for (int l = 0; l < A::kChains; ++l) a[l] = A::fma(row(p0 + l), A::splat(p16[p0 + l]), a[l]);
  }
  for (int l = 0; p0 + l < end; ++l) a[l] = A::fma(row(p0 + l), A::splat(p16[p0 + l]), a[l]);
}

// Lane l's chains (positions first + l + stride * t, l < 16), kChains lanes per pass.
template <class A, bool Partial>
void lane_chains(typename A::V (&a)[16], const uint16_t* v, size_t v_stride, const float* p16,
                 int64_t first, int64_t stride, int64_t end, typename A::Tail t) {
  if constexpr (A::kChains == 16) {
    for (auto& x : a) x = A::zero();
    accumulate<A, Partial>(a, v, v_stride, p16, first, stride, end, t);
    return;
  }
  for (int h = 0; h < 16 / A::kChains; ++h) {
    typename A::V part[A::kChains];
    for (auto& x : part) x = A::zero();
    accumulate<A, Partial>(part, v, v_stride, p16, first + A::kChains * h, stride, end, t);
    for (int l = 0; l < A::kChains; ++l) a[A::kChains * h + l] = part[l];
  }
}

// reduce_add_16 across 16 registers, lane by lane.
template <class A>
typename A::V reduce_lanes(const typename A::V (&a)[16]) {
  typename A::V t8[8];
  for (int i = 0; i < 8; ++i) t8[i] = A::add(a[i + 8], a[i]);
  typename A::V t4[4];
  for (int i = 0; i < 4; ++i) t4[i] = A::add(t8[i + 4], t8[i]);
  return A::add(A::add(t4[0], t4[2]), A::add(t4[1], t4[3]));
}

// ggml_vec_dot_f16's double tail over cells [np, n_pos), in cell order, added to the vector parts
// already in out[d0, d0 + kWidth * NCH) (each product is exact in f32). NCH chunks at once keep
// 2 * NCH independent add chains in flight.
template <class A, int NCH>
void double_tail(const uint16_t* v, size_t v_stride, const float* p16, int64_t np, int64_t n_pos,
                 int64_t hd, int64_t d0, float* out) {
  typename A::Tail t[NCH];
  typename A::DV s[NCH][2];
  for (int c = 0; c < NCH; ++c) {
    t[c] = A::tail(hd - d0 - A::kWidth * c);
    A::widen(A::load_n(out + d0 + A::kWidth * c, t[c]), s[c]);
  }
  for (int64_t p = np; p < n_pos; ++p) {
    const uint16_t* vp = v + static_cast<size_t>(p) * v_stride + d0;
    const typename A::V bp = A::splat(p16[p]);
    for (int c = 0; c < NCH; ++c) {
      typename A::DV pr[2];
      A::widen(A::mul(A::load_h(vp + A::kWidth * c, t[c]), bp), pr);
      s[c][0] = A::add(s[c][0], pr[0]);
      s[c][1] = A::add(s[c][1], pr[1]);
    }
  }
  for (int c = 0; c < NCH; ++c) A::store_n(out + d0 + A::kWidth * c, A::narrow(s[c]), t[c]);
}

// The weighted sum's vector part (everything for tinyBLAS) for kWidth head dimensions (the lanes
// of t when Partial).
template <class A, bool Partial>
typename A::V weighted_chunk(const uint16_t* v, size_t v_stride, const float* p16, int64_t n_pos,
                             int64_t n_kv, bool sgemm, typename A::Tail t) {
  using V = typename A::V;
  if (sgemm) {
    V a[16];
    lane_chains<A, Partial>(a, v, v_stride, p16, 0, 16, n_pos, t);
    return reduce_lanes<A>(a);
  }
  // ggml_vec_dot_f16 over n_kv cells: cell p of the vector part [0, np) goes to accumulator
  // (p / 16) % 4, lane p % 16; the four are combined as (acc0 + acc2) + (acc1 + acc3) lane by lane.
  const int64_t np = n_kv / 64 * 64;
  const int64_t end = n_pos < np ? n_pos : np;
  if (end == 0) return A::zero();  // every cell is in the double tail (contexts below 64)
  // Accumulators no cell reaches stay +0, and x + +0 is x for every x but -0, which no FMA chain
  // from +0 produces: they are left out of the combination.
  const int n_acc = end >= 64 ? 4 : static_cast<int>((end + 15) / 16);
  V acc[4][16];
  for (int j = 0; j < 4; ++j) {
    if (j < n_acc) {
      lane_chains<A, Partial>(acc[j], v, v_stride, p16, 16 * j, 64, end, t);
    } else {
      for (auto& x : acc[j]) x = A::zero();
    }
  }
  V e[16];
  for (int l = 0; l < 16; ++l) {
    const V c = n_acc > 2 ? A::add(acc[0][l], acc[2][l]) : acc[0][l];
    const V d = n_acc > 3 ? A::add(acc[1][l], acc[3][l]) : acc[1][l];
    e[l] = n_acc > 1 ? A::add(c, d) : c;
  }
  return reduce_lanes<A>(e);  // double_tail adds cells np.. (n_pos > np)
}

// f32 -> fp16 -> f32 of the first n elements of x, in place or to y.
template <class A>
void round_fp16(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i += A::kWidth) {
    const typename A::Tail t = A::tail(n - i);
    A::store_n(y + i, A::round_fp16(A::load_n(x + i, t)), t);
  }
}

// The KernelTable entry; softmax is the ISA's softmax entry.
template <class A, class Softmax>
void attention(const float* q, const uint16_t* k, size_t k_pos_stride, const uint16_t* v,
               size_t v_pos_stride, int64_t n_pos, int64_t n_kv, int64_t n_batch, int64_t head_dim,
               float scale, float* out, float* scratch, Softmax softmax) {
  // q rounded to fp16, kept in `out` until the weighted sum overwrites it.
  round_fp16<A>(q, out, head_dim);
  const bool kq_sgemm = n_batch >= 2 && head_dim % 16 == 0 && n_kv % 4 == 0;
  scores<A>(out, k, k_pos_stride, n_pos, head_dim, kq_sgemm, scale, scratch);

  softmax(scratch, n_pos, n_kv);
  round_fp16<A>(scratch, scratch, n_pos);

  const bool kqv_sgemm = n_batch >= 2 && head_dim % 4 == 0 && n_kv % 16 == 0;
  for (int64_t d = 0; d < head_dim; d += A::kWidth) {
    const typename A::Tail t = A::tail(head_dim - d);
    const typename A::V r =
        A::full(t)
            ? weighted_chunk<A, false>(v + d, v_pos_stride, scratch, n_pos, n_kv, kqv_sgemm, t)
            : weighted_chunk<A, true>(v + d, v_pos_stride, scratch, n_pos, n_kv, kqv_sgemm, t);
    A::store_n(out + d, r, t);
  }
  const int64_t np = n_kv / 64 * 64;
  if (kqv_sgemm || n_pos <= np) return;
  for (int64_t d0 = 0; d0 < head_dim; d0 += 4 * A::kWidth) {
    switch ((head_dim - d0 + A::kWidth - 1) / A::kWidth) {
      case 1:
        double_tail<A, 1>(v, v_pos_stride, scratch, np, n_pos, head_dim, d0, out);
        break;
      case 2:
        double_tail<A, 2>(v, v_pos_stride, scratch, np, n_pos, head_dim, d0, out);
        break;
      case 3:
        double_tail<A, 3>(v, v_pos_stride, scratch, np, n_pos, head_dim, d0, out);
        break;
      default:
        double_tail<A, 4>(v, v_pos_stride, scratch, np, n_pos, head_dim, d0, out);
        break;
    }
  }
}

}  // namespace attention_lanes
}  // namespace
}  // namespace tern::kernels

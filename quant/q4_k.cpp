// Q4_K rows: dequantize, llama.cpp's reference quantizer (with the scale/min search shared with
// Q5_K) and the Q4_K x Q8_K dot in the association of llama.cpp's x86 kernel. Layout in kquants.h.
#include <cmath>
#include <cstring>

#include "quant/formats.h"
#include "quant/fp16.h"
#include "quant/kquants.h"

namespace tern::quant {

namespace detail {

// Every float operation below is written in llama.cpp's order (and the library is built without
// FMA contraction, as ggml-base is): the codes depend on comparisons of rounded error sums, so a
// reassociated sum would pick different scales on some blocks.
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                       float* the_min, uint8_t* Laux, float rmin, float rdelta, int nstep,
                       bool use_mad) {
  float min = x[0];
  float max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  // The min is an offset subtracted from every value; it is never positive.
  if (min > 0.0f) min = 0.0f;
  if (max == min) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    *the_min = -min;
    return 0.0f;
  }
  const auto fnmax = static_cast<float>(nmax);
  float iscale = fnmax / (max - min);
  float scale = 1.0f / iscale;
  float best_error = 0.0f;
  for (int i = 0; i < n; ++i) {
    const int32_t l = nearest_int(iscale * (x[i] - min));
    L[i] = static_cast<uint8_t>(l < 0 ? 0 : (l > nmax ? nmax : l));
    float diff = scale * static_cast<float>(L[i]) + min - x[i];
    diff = use_mad ? std::fabs(diff) : diff * diff;
    best_error += weights[i] * diff;
  }
  if (nstep < 1) {
    *the_min = -min;
    return scale;
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * static_cast<float>(is) + fnmax) / (max - min);
    float sum_l = 0.0f;
    float sum_l2 = 0.0f;
    float sum_xl = 0.0f;
    for (int i = 0; i < n; ++i) {
      int32_t l = nearest_int(iscale * (x[i] - min));
      l = l < 0 ? 0 : (l > nmax ? nmax : l);
      Laux[i] = static_cast<uint8_t>(l);
      const float w = weights[i];
      const auto fl = static_cast<float>(l);
      sum_l += w * fl;
      sum_l2 += w * fl * fl;
      sum_xl += w * fl * x[i];
    }
    // Least squares for x ~ scale * l + min over this rounding, with min clamped to <= 0.
    const float det = sum_w * sum_l2 - sum_l * sum_l;
    if (det > 0.0f) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
      if (this_min > 0.0f) {
        this_min = 0.0f;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0.0f;
      for (int i = 0; i < n; ++i) {
        float diff = this_scale * static_cast<float>(Laux[i]) + this_min - x[i];
        diff = use_mad ? std::fabs(diff) : diff * diff;
        cur_error += weights[i] * diff;
      }
      if (cur_error < best_error) {
        for (int i = 0; i < n; ++i) L[i] = Laux[i];
        best_error = cur_error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}

void quantize_k4_superblock(const float* x, int nmax, float rmin, float rdelta, int nstep,
                            uint16_t& d_out, uint16_t& dmin_out, uint8_t* packed, uint8_t* L) {
  constexpr int kSub = kQkK / 32;
  float scales[kSub];
  float mins[kSub];
  float weights[32];
  uint8_t aux[32];
  // Scales and mins are non-negative by construction, so their maxima start at 0.
  float max_scale = 0.0f;
  float max_min = 0.0f;
  for (int j = 0; j < kSub; ++j) {
    const float* xs = x + 32 * j;
    float sum_x2 = 0.0f;
    for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
    // Weight each element by the sub-block's RMS plus its own magnitude: large values matter more.
    const float av_x = std::sqrt(sum_x2 / 32.0f);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xs[l]);
    scales[j] = make_qkx2_quants(32, nmax, xs, weights, L + 32 * j, &mins[j], aux, rmin, rdelta,
                                 nstep, false);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }

  // Scales and mins become 6-bit multiples of d = max_scale / 63 and dmin = max_min / 63.
  const float inv_scale = max_scale > 0.0f ? 63.0f / max_scale : 0.0f;
  const float inv_min = max_min > 0.0f ? 63.0f / max_min : 0.0f;
  for (int j = 0; j < kSub; ++j) {
    // llama.cpp stores nearest_int into a uint8_t before clamping: keep the wrap-around.
    auto ls = static_cast<uint8_t>(nearest_int(inv_scale * scales[j]));
    auto lm = static_cast<uint8_t>(nearest_int(inv_min * mins[j]));
    ls = ls < 63 ? ls : uint8_t{63};
    lm = lm < 63 ? lm : uint8_t{63};
    if (j < 4) {
      packed[j] = ls;
      packed[j + 4] = lm;
    } else {
      packed[j + 4] = static_cast<uint8_t>((ls & 0xf) | ((lm & 0xf) << 4));
      packed[j - 4] = static_cast<uint8_t>(packed[j - 4] | ((ls >> 4) << 6));
      packed[j] = static_cast<uint8_t>(packed[j] | ((lm >> 4) << 6));
    }
  }
  d_out = fp32_to_fp16(max_scale / 63.0f);
  dmin_out = fp32_to_fp16(max_min / 63.0f);

  // Requantize against the rounded scales. A sub-block whose scale rounded to zero keeps the
  // codes of the search (llama.cpp skips it), so those codes are part of the bit-exact output.
  const float d_all = fp16_to_fp32(d_out);
  const float dmin_all = fp16_to_fp32(dmin_out);
  for (int j = 0; j < kSub; ++j) {
    int32_t sc = 0;
    int32_t m = 0;
    unpack_scale_min_k4(j, packed, sc, m);
    const float d = d_all * static_cast<float>(sc);
    if (d == 0.0f) continue;
    const float dm = dmin_all * static_cast<float>(m);
    for (int ii = 0; ii < 32; ++ii) {
      const int32_t l = nearest_int((x[32 * j + ii] + dm) / d);
      L[32 * j + ii] = static_cast<uint8_t>(l < 0 ? 0 : (l > nmax ? nmax : l));
    }
  }
}

}  // namespace detail

void dequantize_row_q4_K(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockQ4_K*>(src);
  for (int64_t b = 0; b < n / kQkK; ++b) {
    const BlockQ4_K& blk = blocks[b];
    const float d = fp16_to_fp32(blk.d);
    const float dmin = fp16_to_fp32(blk.dmin);
    float* y = dst + b * kQkK;
    for (int c = 0; c < 4; ++c) {
      for (int half = 0; half < 2; ++half) {
        int32_t sc = 0;
        int32_t m = 0;
        detail::unpack_scale_min_k4(2 * c + half, blk.scales, sc, m);
        const float d1 = d * static_cast<float>(sc);
        const float m1 = dmin * static_cast<float>(m);
        for (int l = 0; l < 32; ++l) {
          const int q = (blk.qs[32 * c + l] >> (4 * half)) & 0xf;
          y[64 * c + 32 * half + l] = d1 * static_cast<float>(q) - m1;
        }
      }
    }
  }
}

void quantize_row_q4_K(const float* src, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockQ4_K*>(dst);
  uint8_t L[kQkK];
  for (int64_t b = 0; b < n / kQkK; ++b) {
    BlockQ4_K& y = blocks[b];
    detail::quantize_k4_superblock(src + b * kQkK, 15, -1.0f, 0.1f, 20, y.d, y.dmin, y.scales, L);
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l)
        y.qs[32 * c + l] = static_cast<uint8_t>(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
    }
  }
}

// llama.cpp's AVX2 kernel (which AVX-512 builds run too). Per super-block:
//   lane l (0..7): sum over the eight sub-blocks s of sc[s] * (q . a) over elements 4l..4l+3 of
//                  sub-block s, exact in int32; acc[l] = fma(d_a * d, lane, acc[l]).
//   mins: four int32 lanes p = m[2p] * A[2p] + m[2p+1] * A[2p+1], where A[g] is the sum of the
//         activations of sub-block g (bsums[2g] + bsums[2g+1]);
//         acc_m[p] = fma(-d_a * dmin, p, acc_m[p]).
// Result: sum_dot_lanes(acc) + ((acc_m[0] + acc_m[2]) + (acc_m[1] + acc_m[3])).
float vec_dot_q4_K_q8_K(int64_t n, const void* weights, const void* activations) {
  const auto* w = static_cast<const BlockQ4_K*>(weights);
  const auto* a = static_cast<const BlockQ8_K*>(activations);
  float acc[kDotLanes] = {};
  float acc_m[4] = {};
  for (int64_t b = 0; b < n / kQkK; ++b) {
    const float d = a[b].d * fp16_to_fp32(w[b].d);
    const float dmin = -a[b].d * fp16_to_fp32(w[b].dmin);
    int32_t sc[8];
    int32_t m[8];
    for (int j = 0; j < 8; ++j) detail::unpack_scale_min_k4(j, w[b].scales, sc[j], m[j]);
    for (int p = 0; p < 4; ++p) {
      int32_t prod = 0;
      for (int g = 2 * p; g < 2 * p + 2; ++g)
        prod += m[g] * (int32_t{a[b].bsums[2 * g]} + int32_t{a[b].bsums[2 * g + 1]});
      acc_m[p] = std::fma(dmin, static_cast<float>(prod), acc_m[p]);
    }
    for (int lane = 0; lane < kDotLanes; ++lane) {
      int32_t sum = 0;
      for (int s = 0; s < 8; ++s) {
        int32_t part = 0;
        for (int k = 4 * lane; k < 4 * lane + 4; ++k) {
          const int e = 32 * s + k;
          const int q = (w[b].qs[32 * (s / 2) + k] >> (4 * (s % 2))) & 0xf;
          part += q * int32_t{a[b].qs[e]};
        }
        sum += sc[s] * part;
      }
      acc[lane] = std::fma(d, static_cast<float>(sum), acc[lane]);
    }
  }
  const float mins = (acc_m[0] + acc_m[2]) + (acc_m[1] + acc_m[3]);
  return sum_dot_lanes(acc) + mins;
}

}  // namespace tern::quant

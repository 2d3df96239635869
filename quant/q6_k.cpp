// Q6_K rows: dequantize, llama.cpp's reference quantizer (make_qx_quants per 16 weights) and the
// Q6_K x Q8_K dot in the association of llama.cpp's x86 kernel. Layout in kquants.h.
// llama.cpp writes output heads and embeddings as Q6_K, so this must stay bit-exact.
#include <cmath>
#include <cstring>

#include "quant/formats.h"
#include "quant/fp16.h"
#include "quant/kquants.h"

namespace tern::quant {

namespace {

// GROUP_MAX_EPS: groups whose largest |x| is below this are treated as all zero.
constexpr float kGroupMaxEps = 1e-15f;

// Code (0..63) of element e (0..255).
int32_t q6_code(const BlockQ6_K& blk, int e) {
  const int h = e / 128;
  const int r = e % 128;  // r = 32 quarter + l
  const int quarter = r / 32;
  const int l = r % 32;
  const uint8_t lo_byte = blk.ql[64 * h + 32 * (quarter % 2) + l];
  const int low = (lo_byte >> (4 * (quarter / 2))) & 0xf;
  const int high = (blk.qh[32 * h + l] >> (2 * quarter)) & 3;
  return low | (high << 4);
}

int32_t clamp_q6(int32_t l, int32_t nmax) {
  return l < -nmax ? -nmax : (l > nmax - 1 ? nmax - 1 : l);
}

// llama.cpp's make_qx_quants with rmse_type 1 and no importance weights: symmetric codes
// L in 0..2 nmax - 1 (offset by nmax) for 16 values, weighting each value by x^2, trying 19
// scales around -nmax / max (max = the signed extreme) and keeping the best least-squares fit.
float make_qx_quants(int n, int32_t nmax, const float* x, int8_t* L) {
  float max = 0.0f;
  float amax = 0.0f;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.0f;
  }
  const auto fnmax = static_cast<float>(nmax);
  float iscale = -fnmax / max;
  float sumlx = 0.0f;
  float suml2 = 0.0f;
  for (int i = 0; i < n; ++i) {
    const int32_t l = clamp_q6(detail::nearest_int(iscale * x[i]), nmax);
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = x[i] * x[i];
    const auto fl = static_cast<float>(l);
    sumlx += w * x[i] * fl;
    suml2 += w * fl * fl;
  }
  float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(fnmax + 0.1f * static_cast<float>(is)) / max;
    sumlx = 0.0f;
    suml2 = 0.0f;
    for (int i = 0; i < n; ++i) {
      const int32_t l = clamp_q6(detail::nearest_int(iscale * x[i]), nmax);
      const float w = x[i] * x[i];
      const auto fl = static_cast<float>(l);
      sumlx += w * x[i] * fl;
      suml2 += w * fl * fl;
    }
    if (suml2 > 0.0f && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i)
        L[i] = static_cast<int8_t>(nmax + clamp_q6(detail::nearest_int(iscale * x[i]), nmax));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

}  // namespace

void dequantize_row_q6_K(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockQ6_K*>(src);
  for (int64_t b = 0; b < n / kQkK; ++b) {
    const BlockQ6_K& blk = blocks[b];
    const float d = fp16_to_fp32(blk.d);
    for (int e = 0; e < kQkK; ++e) {
      // (d * scale) * q, in llama.cpp's order.
      dst[b * kQkK + e] =
          d * static_cast<float>(blk.scales[e / 16]) * static_cast<float>(q6_code(blk, e) - 32);
    }
  }
}

void quantize_row_q6_K(const float* src, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockQ6_K*>(dst);
  constexpr int kSub = kQkK / 16;
  for (int64_t b = 0; b < n / kQkK; ++b) {
    const float* x = src + b * kQkK;
    BlockQ6_K& y = blocks[b];
    int8_t L[kQkK];
    float scales[kSub];
    float max_scale = 0.0f;
    float max_abs_scale = 0.0f;
    for (int ib = 0; ib < kSub; ++ib) {
      scales[ib] = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
      const float abs_scale = std::fabs(scales[ib]);
      if (abs_scale > max_abs_scale) {
        max_abs_scale = abs_scale;
        max_scale = scales[ib];
      }
    }
    if (max_abs_scale < kGroupMaxEps) {
      std::memset(&y, 0, sizeof y);
      y.d = fp32_to_fp16(0.0f);
      continue;
    }
    // The signed largest scale maps to -128 so the 8-bit scales use their full range.
    const float iscale = -128.0f / max_scale;
    y.d = fp32_to_fp16(1.0f / iscale);
    for (int ib = 0; ib < kSub; ++ib) {
      const int32_t l = detail::nearest_int(iscale * scales[ib]);
      y.scales[ib] = static_cast<int8_t>(l < 127 ? l : 127);
    }
    // Requantize against the rounded scales; a zero scale keeps the search's codes.
    const float d_all = fp16_to_fp32(y.d);
    for (int j = 0; j < kSub; ++j) {
      const float d = d_all * static_cast<float>(y.scales[j]);
      if (d == 0.0f) continue;
      for (int ii = 0; ii < 16; ++ii) {
        int32_t l = detail::nearest_int(x[16 * j + ii] / d);
        l = l < -32 ? -32 : (l > 31 ? 31 : l);
        L[16 * j + ii] = static_cast<int8_t>(l + 32);
      }
    }
    for (int h = 0; h < 2; ++h) {
      for (int l = 0; l < 32; ++l) {
        const int q0 = L[128 * h + l];
        const int q1 = L[128 * h + 32 + l];
        const int q2 = L[128 * h + 64 + l];
        const int q3 = L[128 * h + 96 + l];
        y.ql[64 * h + l] = static_cast<uint8_t>((q0 & 0xf) | ((q2 & 0xf) << 4));
        y.ql[64 * h + 32 + l] = static_cast<uint8_t>((q1 & 0xf) | ((q3 & 0xf) << 4));
        y.qh[32 * h + l] = static_cast<uint8_t>((q0 >> 4) | ((q1 >> 4) << 2) | ((q2 >> 4) << 4) |
                                                ((q3 >> 4) << 6));
      }
    }
  }
}

// llama.cpp's AVX2 kernel: lane l (0..7) of each 32-element group g covers elements 4l..4l+3,
// whose 16-element scale is scales[2g + l / 4]. Per super-block, lane l sums
// scales * ((q - 32) . a) over the eight groups, exact in int32, and acc[l] = fma(d_a * d, lane,
// acc[l]); then sum_dot_lanes.
float vec_dot_q6_K_q8_K(int64_t n, const void* weights, const void* activations) {
  const auto* w = static_cast<const BlockQ6_K*>(weights);
  const auto* a = static_cast<const BlockQ8_K*>(activations);
  float acc[kDotLanes] = {};
  for (int64_t b = 0; b < n / kQkK; ++b) {
    const float d = a[b].d * fp16_to_fp32(w[b].d);
    for (int lane = 0; lane < kDotLanes; ++lane) {
      int32_t sum = 0;
      for (int g = 0; g < kQkK / 32; ++g) {
        int32_t part = 0;
        for (int k = 4 * lane; k < 4 * lane + 4; ++k) {
          const int e = 32 * g + k;
          part += (q6_code(w[b], e) - 32) * int32_t{a[b].qs[e]};
        }
        sum += int32_t{w[b].scales[2 * g + lane / 4]} * part;
      }
      acc[lane] = std::fma(d, static_cast<float>(sum), acc[lane]);
    }
  }
  return sum_dot_lanes(acc);
}

void repack_q6_K_dense_codes(const void* src, void* dst, int64_t n) {
  const auto* in = static_cast<const BlockQ6_K*>(src);
  auto* out = static_cast<BlockQ6KDense*>(dst);
  for (int64_t b = 0; b < n / kQkK; ++b) {
    const BlockQ6_K& x = in[b];
    BlockQ6KDense& y = out[b];
    // The codes in element order (the layout in kquants.h), then four to three bytes. Runs over
    // every output head at load, so it avoids q6_code's per-element index arithmetic.
    uint8_t q[kQkK];
    for (int h = 0; h < 2; ++h) {
      for (int l = 0; l < 32; ++l) {
        const int lo0 = x.ql[64 * h + l], lo1 = x.ql[64 * h + 32 + l], hi = x.qh[32 * h + l];
        q[128 * h + l] = static_cast<uint8_t>((lo0 & 0xf) | (hi & 3) << 4);
        q[128 * h + 32 + l] = static_cast<uint8_t>((lo1 & 0xf) | (hi >> 2 & 3) << 4);
        q[128 * h + 64 + l] = static_cast<uint8_t>((lo0 >> 4) | (hi >> 4 & 3) << 4);
        q[128 * h + 96 + l] = static_cast<uint8_t>((lo1 >> 4) | (hi >> 6) << 4);
      }
    }
    for (int j = 0; j < kQkK / 4; ++j) {
      const uint32_t v = q[4 * j] | uint32_t{q[4 * j + 1]} << 6 | uint32_t{q[4 * j + 2]} << 12 |
                         uint32_t{q[4 * j + 3]} << 18;
      y.codes[3 * j] = static_cast<uint8_t>(v);
      y.codes[3 * j + 1] = static_cast<uint8_t>(v >> 8);
      y.codes[3 * j + 2] = static_cast<uint8_t>(v >> 16);
    }
    std::memmove(y.scales, x.scales, sizeof y.scales);  // the same bytes when dst is src
    y.d = x.d;
  }
}

}  // namespace tern::quant

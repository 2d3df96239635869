// Q5_K rows: dequantize, llama.cpp's reference quantizer and the Q5_K x Q8_K dot in the
// association of llama.cpp's x86 kernel. Layout in kquants.h; the search is shared with Q4_K.
#include <cmath>
#include <cstring>

#include "quant/formats.h"
#include "quant/fp16.h"
#include "quant/kquants.h"

namespace tern::quant {

namespace {

// Code (0..31) of element e (0..255): low four bits from qs as in Q4_K, the fifth from qh.
int32_t q5_code(const BlockQ5_K& blk, int e) {
  const int c = e / 64;
  const int half = (e / 32) % 2;
  const int l = e % 32;
  const int low = (blk.qs[32 * c + l] >> (4 * half)) & 0xf;
  const int high = (blk.qh[l] >> (2 * c + half)) & 1;
  return low | (high << 4);
}

}  // namespace

void dequantize_row_q5_K(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockQ5_K*>(src);
  for (int64_t b = 0; b < n / kQkK; ++b) {
    const BlockQ5_K& blk = blocks[b];
    const float d = fp16_to_fp32(blk.d);
    const float dmin = fp16_to_fp32(blk.dmin);
    float* y = dst + b * kQkK;
    for (int s = 0; s < 8; ++s) {
      int32_t sc = 0;
      int32_t m = 0;
      detail::unpack_scale_min_k4(s, blk.scales, sc, m);
      const float d1 = d * static_cast<float>(sc);
      const float m1 = dmin * static_cast<float>(m);
      for (int l = 0; l < 32; ++l)
        y[32 * s + l] = d1 * static_cast<float>(q5_code(blk, 32 * s + l)) - m1;
    }
  }
}

void quantize_row_q5_K(const float* src, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockQ5_K*>(dst);
  uint8_t L[kQkK];
  for (int64_t b = 0; b < n / kQkK; ++b) {
    BlockQ5_K& y = blocks[b];
    detail::quantize_k4_superblock(src + b * kQkK, 31, -0.5f, 0.1f, 15, y.d, y.dmin, y.scales, L);
    std::memset(y.qh, 0, sizeof y.qh);
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        const int lo = L[64 * c + l];
        const int hi = L[64 * c + 32 + l];
        y.qs[32 * c + l] = static_cast<uint8_t>((lo & 0xf) | ((hi & 0xf) << 4));
        y.qh[l] =
            static_cast<uint8_t>(y.qh[l] | ((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
      }
    }
  }
}

// As vec_dot_q4_K_q8_K (see there) with 5-bit codes, except for the mins: llama.cpp's AVX2
// kernel sums the four min products to one integer per super-block and accumulates it in a
// scalar, summs = fma(-d_a * dmin, sum, summs) (GCC contracts the multiply-add). The result is
// sum_dot_lanes(acc) + summs.
float vec_dot_q5_K_q8_K(int64_t n, const void* weights, const void* activations) {
  const auto* w = static_cast<const BlockQ5_K*>(weights);
  const auto* a = static_cast<const BlockQ8_K*>(activations);
  float acc[kDotLanes] = {};
  float summs = 0.0f;
  for (int64_t b = 0; b < n / kQkK; ++b) {
    const float d = a[b].d * fp16_to_fp32(w[b].d);
    const float dmin = -a[b].d * fp16_to_fp32(w[b].dmin);
    int32_t sc[8];
    int32_t m[8];
    for (int j = 0; j < 8; ++j) detail::unpack_scale_min_k4(j, w[b].scales, sc[j], m[j]);
    int32_t mins = 0;
    for (int g = 0; g < 8; ++g)
      mins += m[g] * (int32_t{a[b].bsums[2 * g]} + int32_t{a[b].bsums[2 * g + 1]});
    summs = std::fma(dmin, static_cast<float>(mins), summs);
    for (int lane = 0; lane < kDotLanes; ++lane) {
      int32_t sum = 0;
      for (int s = 0; s < 8; ++s) {
        int32_t part = 0;
        for (int k = 4 * lane; k < 4 * lane + 4; ++k)
          part += q5_code(w[b], 32 * s + k) * int32_t{a[b].qs[32 * s + k]};
        sum += sc[s] * part;
      }
      acc[lane] = std::fma(d, static_cast<float>(sum), acc[lane]);
    }
  }
  return sum_dot_lanes(acc) + summs;
}

}  // namespace tern::quant

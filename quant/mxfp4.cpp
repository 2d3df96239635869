// MXFP4 rows (GGUF id 39): dequantize, ggml's reference quantizer (quantize_row_mxfp4_ref, which
// is also its CPU from_float) and the MXFP4 x Q8_0 dot in the association of ggml's x86 kernel.
// Layout in kquants.h. llama.cpp c392e50 predates the type; this follows ggml-org/ggml d99724f.
#include <cmath>

#include "quant/blocks.h"
#include "quant/formats.h"
#include "quant/fp16.h"
#include "quant/kquants.h"

namespace tern::quant {

namespace {

// E2M1 values doubled to integers; code 8 is -0. Doubling keeps the table in int8, and the block
// exponent is halved instead (e8m0_to_fp32_half).
constexpr int8_t kMxfp4Values[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

// 2^(e - 128): E8M0 halved. e = 0 and 1 are f32 subnormals. e = 255 is 2^127 here, not NaN as in
// the OCP spec (ggml does not handle NaN scales).
float e8m0_to_fp32_half(uint8_t e) {
  const uint32_t bits = e < 2 ? 0x00200000u << e : static_cast<uint32_t>(e - 1) << 23;
  return fp32_from_bits(bits);
}

// ggml's best_index_mxfp4: the code whose value is nearest to x, the lowest code on a tie (so ties
// go toward zero, and +0 is chosen over -0). Errors are computed in f32 exactly as ggml does.
uint8_t best_code(float x, float d) {
  uint8_t best = 0;
  float best_err = std::fabs(static_cast<float>(kMxfp4Values[0]) * d - x);
  for (uint8_t i = 1; i < 16; ++i) {
    const float err = std::fabs(static_cast<float>(kMxfp4Values[i]) * d - x);
    if (err < best_err) {
      best = i;
      best_err = err;
    }
  }
  return best;
}

// Sum over elements 4 lane .. 4 lane + 3 of one block of kvalue[code] * activation.
int32_t mxfp4_lane(const BlockMxfp4& w, const BlockQ8_0& a, int lane) {
  int32_t sum = 0;
  for (int k = 4 * lane; k < 4 * lane + 4; ++k) {
    const int code = k < 16 ? (w.qs[k] & 0xf) : (w.qs[k - 16] >> 4);
    sum += int32_t{kMxfp4Values[code]} * int32_t{a.qs[k]};
  }
  return sum;
}

}  // namespace

void dequantize_row_mxfp4(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockMxfp4*>(src);
  for (int64_t b = 0; b < n / kQkMxfp4; ++b) {
    const float d = e8m0_to_fp32_half(blocks[b].e);
    for (int j = 0; j < 16; ++j) {
      dst[b * kQkMxfp4 + j] = static_cast<float>(kMxfp4Values[blocks[b].qs[j] & 0xf]) * d;
      dst[b * kQkMxfp4 + j + 16] = static_cast<float>(kMxfp4Values[blocks[b].qs[j] >> 4]) * d;
    }
  }
}

// The shared exponent puts the block's largest |x| at 4..8 times 2^(e - 127), i.e. near the top
// of the E2M1 range (6): e = floor(log2(amax)) - 2 + 127. Then each value takes its nearest code.
// Two details are ggml's and kept for bit identity:
// - log2f rounds, so an amax just below a power of two can get the exponent of that power (and
//   then values near amax clip to 6 * 2^(e - 127) instead of 8 * 2^(e - 128)).
// - the float result is converted to uint8_t the x86 way (cvttss2si, low byte): for amax below
//   2^-125 the exponent wraps to 232..255 and every code becomes 0; for inf it becomes 0.
void quantize_row_mxfp4(const float* src, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockMxfp4*>(dst);
  for (int64_t b = 0; b < n / kQkMxfp4; ++b) {
    const float* x = src + b * kQkMxfp4;
    float amax = 0.0f;
    for (int j = 0; j < kQkMxfp4; ++j) {
      if (amax < std::fabs(x[j])) amax = std::fabs(x[j]);
    }
    uint8_t e = 0;
    if (amax > 0.0f) {
      const float exponent = std::floor(std::log2(amax)) - 2.0f + 127.0f;
      e = static_cast<uint8_t>(static_cast<uint32_t>(truncate_to_i32(exponent)) & 0xffu);
    }
    const float d = e8m0_to_fp32_half(e);
    blocks[b].e = e;
    for (int j = 0; j < 16; ++j) {
      const uint8_t lo = best_code(x[j], d);
      const uint8_t hi = best_code(x[j + 16], d);
      blocks[b].qs[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

// ggml's AVX2 kernel (which its AVX-512 builds run too). Blocks are taken in pairs: lane l (0..7)
// of a block is the exact int32 sum over elements 4l..4l+3, and
//   acc_even[l] = fma(f16(d_a) * d_w, lane, acc_even[l]) for blocks 0, 2, 4, ...
//   acc_odd[l]  = fma(f16(d_a) * d_w, lane, acc_odd[l])  for blocks 1, 3, 5, ...
// over every complete pair, then sum = sum_dot_lanes(acc_even[l] + acc_odd[l]). An odd last block
// is added as sum = fma(d, its whole int32 sum, sum) (GCC contracts the scalar tail's
// multiply-add).
float vec_dot_mxfp4_q8_0(int64_t n, const void* weights, const void* activations) {
  const auto* w = static_cast<const BlockMxfp4*>(weights);
  const auto* a = static_cast<const BlockQ8_0*>(activations);
  const int64_t nb = n / kQkMxfp4;
  float acc_even[kDotLanes] = {};
  float acc_odd[kDotLanes] = {};
  int64_t b = 0;
  for (; b + 1 < nb; b += 2) {
    const float d0 = fp16_to_fp32(a[b].d) * e8m0_to_fp32_half(w[b].e);
    const float d1 = fp16_to_fp32(a[b + 1].d) * e8m0_to_fp32_half(w[b + 1].e);
    for (int lane = 0; lane < kDotLanes; ++lane) {
      acc_even[lane] =
          std::fma(d0, static_cast<float>(mxfp4_lane(w[b], a[b], lane)), acc_even[lane]);
      acc_odd[lane] =
          std::fma(d1, static_cast<float>(mxfp4_lane(w[b + 1], a[b + 1], lane)), acc_odd[lane]);
    }
  }
  float acc[kDotLanes];
  for (int lane = 0; lane < kDotLanes; ++lane) acc[lane] = acc_even[lane] + acc_odd[lane];
  float sum = sum_dot_lanes(acc);
  for (; b < nb; ++b) {
    const float d = fp16_to_fp32(a[b].d) * e8m0_to_fp32_half(w[b].e);
    int32_t block_sum = 0;
    for (int lane = 0; lane < kDotLanes; ++lane) block_sum += mxfp4_lane(w[b], a[b], lane);
    sum = std::fma(d, static_cast<float>(block_sum), sum);
  }
  return sum;
}

}  // namespace tern::quant

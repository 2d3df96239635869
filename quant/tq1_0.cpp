// TQ1_0 rows: base-3 packing of ternary weights (5 trits per byte), its quantizer and the
// TQ1_0 x Q8_K dot. Block layout in blocks.h; SIMD versions belong in kernels/.
#include <array>
#include <cmath>

#include "quant/blocks.h"
#include "quant/formats.h"
#include "quant/fp16.h"

namespace tern::quant {

namespace {

constexpr uint8_t kPow3[5] = {1, 3, 9, 27, 81};

// Trit n (0 = most significant) of a packed byte: multiplying by 3^n modulo 256 moves trit n to
// the top of the byte's fixed-point fraction q/243 ~ byte/256, and * 3 >> 8 reads it out.
int32_t trit(uint8_t byte, int n) {
  const auto shifted = static_cast<uint8_t>(byte * kPow3[n]);
  return (shifted * 3) >> 8;
}

// Code 0, 1, 2 (for -1, 0, +1) of every element of the block, in element order.
void decode_codes(const BlockTQ1_0& block, int32_t (&codes)[kQkK]) {
  for (int n = 0; n < 5; ++n) {
    for (int m = 0; m < 32; ++m) codes[32 * n + m] = trit(block.qs[m], n);
    for (int m = 0; m < 16; ++m) codes[160 + 16 * n + m] = trit(block.qs[32 + m], n);
  }
  for (int n = 0; n < 4; ++n) {
    for (int j = 0; j < 4; ++j) codes[240 + 4 * n + j] = trit(block.qh[j], n);
  }
}

// Every trit of every byte value, for the repack: kTrits[byte][n] = trit(byte, n).
constexpr std::array<std::array<uint8_t, 5>, 256> kTrits = [] {
  std::array<std::array<uint8_t, 5>, 256> t{};
  for (int b = 0; b < 256; ++b) {
    for (int n = 0; n < 5; ++n) {
      const auto shifted = static_cast<uint8_t>(b * kPow3[n]);
      t[static_cast<size_t>(b)][static_cast<size_t>(n)] = static_cast<uint8_t>((shifted * 3) >> 8);
    }
  }
  return t;
}();

// x * id rounded half away from zero, shifted from -1..1 to 0..2.
uint8_t ternary_code(float x, float id) {
  return static_cast<uint8_t>(std::lround(x * id) + 1);
}

// Packs base-3 digits (most significant first) into ceil(q * 256 / 243).
uint8_t pack_trits(uint8_t q) {
  return static_cast<uint8_t>((q * 256 + 242) / 243);
}

}  // namespace

void dequantize_row_tq1_0(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockTQ1_0*>(src);
  int32_t codes[kQkK];
  for (int64_t b = 0; b < n / kQkK; ++b) {
    const float d = fp16_to_fp32(blocks[b].d);
    decode_codes(blocks[b], codes);
    for (int64_t j = 0; j < kQkK; ++j) dst[b * kQkK + j] = static_cast<float>(codes[j] - 1) * d;
  }
}

// quantize_row_tq1_0_ref: d is the block's absolute maximum, each weight rounds to -1, 0 or +1
// of it. The byte arithmetic is modulo 256 as in the reference (only matters for NaN input).
void quantize_row_tq1_0(const float* src, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockTQ1_0*>(dst);
  for (int64_t b = 0; b < n / kQkK; ++b) {
    const float* x = src + b * kQkK;
    float amax = 0.0f;
    for (int64_t j = 0; j < kQkK; ++j) {
      const float a = std::fabs(x[j]);
      amax = amax > a ? amax : a;
    }
    const float d = amax;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    BlockTQ1_0& y = blocks[b];
    y.d = fp32_to_fp16(d);
    for (int m = 0; m < 32; ++m) {
      uint8_t q = 0;
      for (int t = 0; t < 5; ++t) q = static_cast<uint8_t>(q * 3 + ternary_code(x[m + 32 * t], id));
      y.qs[m] = pack_trits(q);
    }
    for (int m = 0; m < 16; ++m) {
      uint8_t q = 0;
      for (int t = 0; t < 5; ++t) {
        q = static_cast<uint8_t>(q * 3 + ternary_code(x[160 + m + 16 * t], id));
      }
      y.qs[32 + m] = pack_trits(q);
    }
    for (int j = 0; j < 4; ++j) {
      uint8_t q = 0;
      for (int t = 0; t < 4; ++t) {
        q = static_cast<uint8_t>(q * 3 + ternary_code(x[240 + j + 4 * t], id));
      }
      // Four trits only: the fifth, least significant, is 0 so that the first is still trit 0.
      y.qh[j] = pack_trits(static_cast<uint8_t>(q * 3));
    }
  }
}

// Output byte 32 h + m of a TQ2_0 block holds the codes of elements 128 h + 32 n + m in bit pairs
// n = 0..3 (blocks.h). For h = 0 those are trits 0..3 of qs[m]; for h = 1 (elements 128 + m,
// 160 + m, 192 + m, 224 + m) trit 4 of qs[m], then digits of qs[32 + m % 16] and, for m >= 16,
// of qh. Every byte value decodes to codes 0..2, so any input bytes repack to the codes the TQ1_0
// reference reads from them.
void repack_tq1_0_as_tq2_0(const void* src, void* dst, int64_t n) {
  const auto* in = static_cast<const BlockTQ1_0*>(src);
  auto* out = static_cast<BlockTQ2_0*>(dst);
  const auto pack4 = [](unsigned c0, unsigned c1, unsigned c2, unsigned c3) {
    return static_cast<uint8_t>(c0 | c1 << 2 | c2 << 4 | c3 << 6);
  };
  for (int64_t b = 0; b < n / kQkK; ++b) {
    const BlockTQ1_0& x = in[b];
    BlockTQ2_0& y = out[b];
    for (int m = 0; m < 32; ++m) {
      const auto& t = kTrits[x.qs[m]];
      y.qs[m] = pack4(t[0], t[1], t[2], t[3]);
    }
    for (int m = 0; m < 32; ++m) {
      const auto& lo = kTrits[x.qs[m]];
      const auto& hi = kTrits[x.qs[32 + m % 16]];
      const int odd = m / 16;  // elements 160 + m: trit 0 of qs[32 + m] or trit 1 of qs[16 + m]
      const unsigned last =
          m < 16 ? hi[4] : kTrits[x.qh[(m - 16) % 4]][static_cast<size_t>((m - 16) / 4)];
      y.qs[32 + m] =
          pack4(lo[4], hi[static_cast<size_t>(odd)], hi[static_cast<size_t>(2 + odd)], last);
    }
    y.d = x.d;
  }
}

// The x86 kernel multiplies unsigned codes (0..2) by the activations and subtracts the group sums
// (bsums) to undo the +1, so its int32 lane l is
//   sum over the 8 groups of 32 of codes * q8 at offsets 4l..4l+3, minus bsums[2l] + bsums[2l+1].
// The total is the exact ternary dot; the split into lanes, each turned into f32 and accumulated as
// fma(lane, d_a * d_w, acc) (GCC contracts the kernel's mul+add), fixes the rounding. bsums are
// taken from the activation block as given, like the kernel.
float vec_dot_tq1_0_q8_K(int64_t n, const void* weights, const void* activations) {
  const auto* w = static_cast<const BlockTQ1_0*>(weights);
  const auto* a = static_cast<const BlockQ8_K*>(activations);
  float acc[kDotLanes] = {};
  int32_t codes[kQkK];
  for (int64_t b = 0; b < n / kQkK; ++b) {
    decode_codes(w[b], codes);
    const float d = a[b].d * fp16_to_fp32(w[b].d);
    for (int lane = 0; lane < kDotLanes; ++lane) {
      int32_t sum = -(int32_t{a[b].bsums[2 * lane]} + int32_t{a[b].bsums[2 * lane + 1]});
      for (int group = 0; group < kQkK / 32; ++group) {
        for (int k = 32 * group + 4 * lane; k < 32 * group + 4 * lane + 4; ++k) {
          sum += codes[k] * int32_t{a[b].qs[k]};
        }
      }
      acc[lane] = std::fma(static_cast<float>(sum), d, acc[lane]);
    }
  }
  return sum_dot_lanes(acc);
}

}  // namespace tern::quant

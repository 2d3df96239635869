// The float association orders of llama.cpp's x86 CPU dot products (c392e50 built by GCC 12 with
// -march=native on an AVX-512 machine), written over element accessors so that the F32/F16 row
// dots (float_types.cpp) and the attention kernel (kernels/scalar/attention.cpp) share one
// specification. x(i) and y(i) return the i-th elements as floats.
//
// Why copy an association at all: with quantized weights the result of one dot becomes the input
// of an int8 activation quantizer, so a 1-ulp difference can move a value across a rounding
// boundary and, a few layers later, change the greedy token. Include only from code built with
// -ffp-contract=off: a fused multiply-add the compiler adds on its own would change the rounding.
#pragma once

#include <cmath>
#include <cstdint>

namespace tern::quant {

// _mm512_reduce_add_ps as GCC 12's avx512fintrin.h expands it: upper half plus lower half, then
// again on 8 and 4 lanes, then (t0 + t2) + (t1 + t3).
inline float reduce_add_16(const float (&v)[16]) {
  float t8[8];
  for (int i = 0; i < 8; ++i) t8[i] = v[i + 8] + v[i];
  float t4[4];
  for (int i = 0; i < 4; ++i) t4[i] = t8[i + 4] + t8[i];
  return (t4[0] + t4[2]) + (t4[1] + t4[3]);
}

// The vector part of ggml_vec_dot_f32 and ggml_vec_dot_f16 (AVX-512: GGML_F32_STEP = 64,
// GGML_F32_EPR = 16): elements [0, np), np a multiple of 64, go to four 16-lane FMA accumulators,
// element i to accumulator (i / 16) % 4, lane i % 16. GGML_F32_VEC_REDUCE then adds accumulator 2
// into 0 and 3 into 1, then 1 into 0, and reduces the 16 lanes.
template <class X, class Y>
float dot_simd64_part(int64_t np, X x, Y y) {
  float acc[4][16] = {};
  for (int64_t i = 0; i < np; i += 64) {
    for (int j = 0; j < 4; ++j) {
      for (int l = 0; l < 16; ++l) {
        const int64_t e = i + 16 * j + l;
        acc[j][l] = std::fma(x(e), y(e), acc[j][l]);
      }
    }
  }
  for (int l = 0; l < 16; ++l) {
    acc[0][l] = acc[0][l] + acc[2][l];
    acc[1][l] = acc[1][l] + acc[3][l];
    acc[0][l] = acc[0][l] + acc[1][l];
  }
  return reduce_add_16(acc[0]);
}

// ggml_vec_dot_f32. The n % 64 leftover elements are summed in f32 by a loop GCC vectorised: in
// groups of 16, then one group of 8, each product rounded and then added in element order; the
// last n % 8 go through the scalar epilogue, where GCC fused the multiply and the add.
template <class X, class Y>
float dot_f32_ggml(int64_t n, X x, Y y) {
  const int64_t np = n & ~int64_t{63};
  float sum = dot_simd64_part(np, x, y);
  const int64_t left = n - np;
  const int64_t rounded_end = np + left / 16 * 16 + (left % 16 >= 8 ? 8 : 0);
  int64_t i = np;
  for (; i < rounded_end; ++i) sum += x(i) * y(i);
  for (; i < n; ++i) sum = std::fma(x(i), y(i), sum);
  return sum;
}

// ggml_vec_dot_f16 (elements already widened to f32): as dot_f32_ggml, but the result of the
// vector part and the leftover products are accumulated in double, in element order, and rounded
// to f32 once at the end. Products of two halves are exact in f32.
template <class X, class Y>
float dot_f16_ggml(int64_t n, X x, Y y) {
  const int64_t np = n & ~int64_t{63};
  double sum = static_cast<double>(dot_simd64_part(np, x, y));
  for (int64_t i = np; i < n; ++i) sum += static_cast<double>(x(i) * y(i));
  return static_cast<float>(sum);
}

// llamafile_sgemm's tinyBLAS<16, __m512, ...> (F32 and F16 matrices times batches of >= 2 rows):
// one 16-lane FMA accumulator per output along k, element i in lane i % 16, then
// _mm512_reduce_add_ps. n must be a multiple of 16 (tinyBLAS declines other shapes).
template <class X, class Y>
float dot_sgemm16(int64_t n, X x, Y y) {
  float acc[16] = {};
  for (int64_t i = 0; i < n; i += 16) {
    for (int l = 0; l < 16; ++l) acc[l] = std::fma(x(i + l), y(i + l), acc[l]);
  }
  return reduce_add_16(acc);
}

// One lane of _mm512_dpbf16_ps (AVX512-BF16, which -march=native enables on Zen 4): the odd
// element's product is added first, then the even one's, each as an FMA (the products of two
// bfloat16s are exact), with denormal inputs read as zero and denormal results flushed to zero.
inline float dpbf16_lane(float acc, float x_even, float y_even, float x_odd, float y_odd) {
  const auto daz = [](float v) { return std::fpclassify(v) == FP_SUBNORMAL ? 0.0f * v : v; };
  acc = daz(std::fma(daz(x_odd), daz(y_odd), daz(acc)));
  return daz(std::fma(daz(x_even), daz(y_even), acc));
}

// ggml_vec_dot_bf16 with AVX512-BF16: two 16-lane dpbf16 accumulators over 64 elements per step
// (the first 32 elements to the first, in pairs: lane j takes elements 2j and 2j + 1), each
// reduced and added to a double sum, then the leftovers in double, in element order.
template <class X, class Y>
float dot_bf16_ggml(int64_t n, X x, Y y) {
  float c[2][16] = {};
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    for (int h = 0; h < 2; ++h) {
      for (int l = 0; l < 16; ++l) {
        const int64_t e = i + 32 * h + 2 * l;
        c[h][l] = dpbf16_lane(c[h][l], x(e), y(e), x(e + 1), y(e + 1));
      }
    }
  }
  double sum = static_cast<double>(reduce_add_16(c[0]));
  sum += static_cast<double>(reduce_add_16(c[1]));
  for (; i < n; ++i) sum += static_cast<double>(x(i) * y(i));
  return static_cast<float>(sum);
}

// llamafile_sgemm's tinyBLAS<32, __m512, __m512bh, ...> for BF16: one 16-lane dpbf16 accumulator
// along k, 32 elements per step, then _mm512_reduce_add_ps. n must be a multiple of 32.
template <class X, class Y>
float dot_sgemm_bf16(int64_t n, X x, Y y) {
  float acc[16] = {};
  for (int64_t i = 0; i < n; i += 32) {
    for (int l = 0; l < 16; ++l) {
      const int64_t e = i + 2 * l;
      acc[l] = dpbf16_lane(acc[l], x(e), y(e), x(e + 1), y(e + 1));
    }
  }
  return reduce_add_16(acc);
}

}  // namespace tern::quant

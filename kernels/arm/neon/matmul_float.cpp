// F32 x F32, F16 x F16 and BF16 x BF16 matrix products with NEON, bit-identical to
// quant::vec_dot_f32/f16/bf16 and their tinyBLAS orders (vec_dot_*_sgemm), whichever
// select_matmul_dot picks.
//
// Theory of operation (the orders are quant/float_dot.h's). Every order keeps 16-lane f32 FMA
// accumulators along k, element i in lane i % 16 (BF16: a pair of elements per lane); here one
// accumulator is four float32x4 (V16), and _mm512_reduce_add_ps's tree is reduce16.
//  - tinyBLAS (batches of >= 2 rows, k % 16 == 0 (BF16: 32), rows % 4 == 0): one accumulator per
//    output, so R x C outputs share their loads.
//  - ggml_vec_dot_*: 64 / kStep accumulators over 64-element steps, combined as the reference
//    does, then the k % 64 leftovers in scalar code in the reference's order: F32 rounds each
//    product and adds it (the last k % 8 fused), F16 and BF16 add exact products in double.
//  - BF16 emulates _mm512_dpbf16_ps: per lane an FMA of the odd element's product, then of the
//    even one's, with subnormal inputs and results flushed to signed zero.
// Nothing here uses sdot; dotprod.cpp builds it again only so that every NEON matmul entry comes
// in the same two builds.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/arm/neon/lanes.h"
#include "kernels/arm/neon/neon.h"
#include "kernels/float_tails.h"

namespace tern::kernels::neon {
namespace {

// 16 lanes: q[j] holds lanes 4j..4j+3.
struct V16 {
  float32x4_t q[4];
};

inline V16 zero16() {
  const float32x4_t z = vdupq_n_f32(0.0f);
  return {{z, z, z, z}};
}

// acc + a * b, fused, per lane.
inline V16 fma16(V16 acc, const V16& a, const V16& b) {
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) acc.q[j] = vfmaq_f32(acc.q[j], a.q[j], b.q[j]);
  return acc;
}

inline V16 add16(V16 a, const V16& b) {
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) a.q[j] = vaddq_f32(a.q[j], b.q[j]);
  return a;
}

// quant::reduce_add_16: t8[i] = v[i + 8] + v[i], t4[i] = t8[i + 4] + t8[i], then
// (t4[0] + t4[2]) + (t4[1] + t4[3]).
inline float reduce16(const V16& v) {
  const float32x4_t t8_lo = vaddq_f32(v.q[2], v.q[0]);
  const float32x4_t t8_hi = vaddq_f32(v.q[3], v.q[1]);
  const float32x4_t t4 = vaddq_f32(t8_hi, t8_lo);
  const float32x4_t s = vaddq_f32(t4, vextq_f32(t4, t4, 2));
  return vgetq_lane_f32(s, 0) + vgetq_lane_f32(s, 1);
}

// Subnormal lanes to zero of the same sign.
inline float32x4_t daz4(float32x4_t v) {
  const uint32x4_t u = vreinterpretq_u32_f32(v);
  const uint32x4_t subnormal = vceqzq_u32(vandq_u32(u, vdupq_n_u32(0x7f800000)));
  return vreinterpretq_f32_u32(vbicq_u32(u, vandq_u32(subnormal, vdupq_n_u32(0x7fffffff))));
}

inline V16 daz16(V16 v) {
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) v.q[j] = daz4(v.q[j]);
  return v;
}

inline float half_at(const uint16_t* p) {
  return fp16_at(reinterpret_cast<const uint8_t*>(p));
}

// An element type: kStep elements per accumulator step, prepare(x) converts an activation step once
// for all rows, step(acc, w, prepared) adds one weight step, finish(acc, w, x, np, n) is vec_dot's
// combination of its accumulators plus the leftovers [np, n).

// F32 and F16: one FMA per element; Load reads 16 elements as f32, Tail adds the leftovers.
template <class Elem, class Load, class Tail>
struct FmaElems {
  using T = Elem;
  using Prepared = V16;
  static constexpr int kStep = 16;
  static V16 prepare(const Elem* x) { return Load::load(x); }
  static V16 step(V16 acc, const Elem* w, const V16& x) { return fma16(acc, Load::load(w), x); }
  static float finish(const V16 (&acc)[4], const Elem* w, const Elem* x, int64_t np, int64_t n) {
    return Tail::tail(reduce16(add16(add16(acc[0], acc[2]), add16(acc[1], acc[3]))), w, x, np, n);
  }
};

struct F32Load {
  static V16 load(const float* p) {
    return {{vld1q_f32(p), vld1q_f32(p + 4), vld1q_f32(p + 8), vld1q_f32(p + 12)}};
  }
};

struct F16Load {
  static V16 load(const uint16_t* p) {
    const float16x8_t a = vreinterpretq_f16_u16(vld1q_u16(p));
    const float16x8_t b = vreinterpretq_f16_u16(vld1q_u16(p + 8));
    return {{vcvt_f32_f16(vget_low_f16(a)), vcvt_high_f32_f16(a), vcvt_f32_f16(vget_low_f16(b)),
             vcvt_high_f32_f16(b)}};
  }
};

// The leftovers: kernels/float_tails.h.
using F32Elems = FmaElems<float, F32Load, F32Tail>;
using F16Elems = FmaElems<uint16_t, F16Load, F16Tail<half_at>>;

// BF16: 32 elements per step, lane l taking elements 2l (even) and 2l + 1 (odd).
struct Bf16Elems {
  using T = uint16_t;
  static constexpr int kStep = 32;
  struct Prepared {
    V16 even, odd;
  };
  static Prepared prepare(const uint16_t* p) {
    Prepared out;
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      // Word l holds element 2l in its low half and 2l + 1 in its high half.
      const uint32x4_t words = vld1q_u32(reinterpret_cast<const uint32_t*>(p) + 4 * j);
      out.even.q[j] = vreinterpretq_f32_u32(vshlq_n_u32(words, 16));
      out.odd.q[j] = vreinterpretq_f32_u32(vandq_u32(words, vdupq_n_u32(0xffff0000u)));
    }
    return {daz16(out.even), daz16(out.odd)};
  }
  static V16 step(V16 acc, const uint16_t* w, const Prepared& x) {
    const Prepared wp = prepare(w);
    acc = daz16(fma16(acc, wp.odd, x.odd));
    return daz16(fma16(acc, wp.even, x.even));
  }
  // Each accumulator's lane sum added to a double, then the leftovers' exact products.
  static float finish(const V16 (&acc)[2], const uint16_t* w, const uint16_t* x, int64_t np,
                      int64_t n) {
    double s = static_cast<double>(reduce16(acc[0]));
    s += static_cast<double>(reduce16(acc[1]));
    for (int64_t i = np; i < n; ++i) s += static_cast<double>(bf16_at(w[i]) * bf16_at(x[i]));
    return static_cast<float>(s);
  }
};

// tinyBLAS: R x C outputs, one accumulator each. The block is one element (nb == k).
template <class E>
struct SgemmTile {
  template <int R, int C>
  static void tile(const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, int64_t k,
                   float* y, int64_t ldy) {
    using Elem = typename E::T;
    V16 acc[R][C];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) acc[r][c] = zero16();
    }
    for (int64_t i = 0; i < k; i += E::kStep) {
      typename E::Prepared xv[C];
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) {
        xv[c] = E::prepare(reinterpret_cast<const Elem*>(x + c * x_stride) + i);
      }
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const auto* wr = reinterpret_cast<const Elem*>(w + r * w_stride) + i;
#pragma GCC unroll 8
        for (int c = 0; c < C; ++c) acc[r][c] = E::step(acc[r][c], wr, xv[c]);
      }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) y[c * ldy + r] = reduce16(acc[r][c]);
    }
  }
};

// ggml_vec_dot_*: R rows times one activation row per tile.
template <class E>
struct VecDotTile {
  template <int R, int C>
  static void tile(const uint8_t* w, size_t w_stride, const uint8_t* x, size_t /*x_stride*/,
                   int64_t k, float* y, int64_t /*ldy*/) {
    static_assert(C == 1);
    using Elem = typename E::T;
    constexpr int kAccs = 64 / E::kStep;
    const auto* xe = reinterpret_cast<const Elem*>(x);
    const int64_t np = k & ~int64_t{63};
    V16 acc[R][kAccs];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
      for (int j = 0; j < kAccs; ++j) acc[r][j] = zero16();
    }
    for (int64_t i = 0; i < np; i += 64) {
#pragma GCC unroll 4
      for (int j = 0; j < kAccs; ++j) {
        const typename E::Prepared xv = E::prepare(xe + i + E::kStep * j);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
          const auto* wr = reinterpret_cast<const Elem*>(w + r * w_stride) + i + E::kStep * j;
          acc[r][j] = E::step(acc[r][j], wr, xv);
        }
      }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      y[r] = E::finish(acc[r], reinterpret_cast<const Elem*>(w + r * w_stride), xe, np, k);
    }
  }
};

template <class E>
void float_matmul(const TypeTraits& w_type, const std::byte* w, size_t w_stride, int64_t n_rows,
                  const std::byte* x, size_t x_stride, int64_t n_x, int64_t k, float* y,
                  int64_t ldy, int64_t r0, int64_t r1) {
  if (select_matmul_dot(w_type, n_rows, k, n_x) == w_type.vec_dot_sgemm) {
    run_tiles<SgemmTile<E>, kFloatRowTile, kFloatColTile, kFloatGemvRows>(w, w_stride, x, x_stride,
                                                                          n_x, k, y, ldy, r0, r1);
  } else {
    run_tiles<VecDotTile<E>, kFloatGemvRows, 1, kFloatGemvRows>(w, w_stride, x, x_stride, n_x, k, y,
                                                                ldy, r0, r1);
  }
}

}  // namespace

void TERN_NEON_NAME(matmul_f32_f32)(const TypeTraits& w_type, const std::byte* w, size_t w_stride,
                                    int64_t n_rows, const std::byte* x, size_t x_stride,
                                    int64_t n_x, int64_t k, float* y, int64_t ldy, int64_t r0,
                                    int64_t r1) {
  float_matmul<F32Elems>(w_type, w, w_stride, n_rows, x, x_stride, n_x, k, y, ldy, r0, r1);
}

void TERN_NEON_NAME(matmul_f16_f16)(const TypeTraits& w_type, const std::byte* w, size_t w_stride,
                                    int64_t n_rows, const std::byte* x, size_t x_stride,
                                    int64_t n_x, int64_t k, float* y, int64_t ldy, int64_t r0,
                                    int64_t r1) {
  float_matmul<F16Elems>(w_type, w, w_stride, n_rows, x, x_stride, n_x, k, y, ldy, r0, r1);
}

void TERN_NEON_NAME(matmul_bf16_bf16)(const TypeTraits& w_type, const std::byte* w, size_t w_stride,
                                      int64_t n_rows, const std::byte* x, size_t x_stride,
                                      int64_t n_x, int64_t k, float* y, int64_t ldy, int64_t r0,
                                      int64_t r1) {
  float_matmul<Bf16Elems>(w_type, w, w_stride, n_rows, x, x_stride, n_x, k, y, ldy, r0, r1);
}

}  // namespace tern::kernels::neon

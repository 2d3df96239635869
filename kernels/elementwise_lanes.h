// RMSNorm, RoPE, SiLU-gated multiply, softmax, GELU and squared ReLU (the KernelTable entries of
// those names), written once over a lanes policy that each ISA's simd.h supplies (x86/avx2,
// x86/avx512, arm/neon); bit-identical to the scalar reference (kernels/scalar/elementwise.cpp,
// activations.cpp). Included only by per-ISA kernel files; everything here has internal linkage,
// and nothing but standard headers is included.
//
// Theory of operation. Every float step is the reference's operation on the same operands, only
// run on kWidth lanes at once: ggml_v_expf is the sequence of kernels/scalar/vexpf.h (which is
// itself llama.cpp's AVX-512 code), the 16-lane groups of SiLU and softmax start at the row's start
// as in the reference (AVX2: two 8-lane registers per group, NEON: four of 4), and the reductions
// that the reference does in a fixed order (the double sums of rms_norm and softmax, the
// reduce_add_16 tree) keep that order. Tails (n % 16) call libm's expf as the reference does.
//
// The policy L: simd.h's Lanes (V, kWidth, Tail, tail, full, load, store, load_n, store_n,
// load_n_or, keep_n, zero, splat, add, sub, mul, div, fma, fnma, max, sqrt, scale_exp2, hmax,
// reduce_add_16, gelu), and for rope: rope4 (four pairs fused), rope1 (one pair, products
// rounded apart) and optionally rope8 (eight pairs fused).
#pragma once

#include <math.h>  // expf: a libm call, no inline code compiled with this ISA's flags

#include <cstdint>

namespace tern::kernels {
namespace {
namespace elementwise_lanes {

template <class L>
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
  // The reference's sequential double sum is the bound (one dependent add per element); vector
  // squares would only add a round trip through memory.
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i] * x[i]);
  const auto mean = static_cast<float>(sum / static_cast<double>(n));
  const typename L::V scale = L::splat(1.0f / L::sqrt(mean + eps));
  for (int64_t i0 = 0; i0 < n; i0 += L::kWidth) {
    const typename L::Tail t = L::tail(n - i0);
    L::store_n(y + i0, L::mul(L::mul(L::load_n(x + i0, t), scale), L::load_n(w + i0, t)), t);
  }
}

// ggml computes x0*c - x1*s and x0*s + x1*c; the first n_pairs - n_pairs % 4 pairs with the x0
// products fused and the x1 products rounded first (L::rope8 eight at a time where the policy has
// it, then L::rope4), the rest with separately rounded products (L::rope1).
template <class L>
void rope(float* x, int64_t n_heads, int64_t head_dim, const float* cos_sin, int64_t n_pairs) {
  const int64_t n_fused = n_pairs - n_pairs % 4;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* v = x + h * head_dim;
    int64_t i = 0;
    if constexpr (requires { L::rope8(v, cos_sin); }) {
      for (; i + 8 <= n_fused; i += 8) L::rope8(v + 2 * i, cos_sin + 2 * i);
    }
    for (; i < n_fused; i += 4) L::rope4(v + 2 * i, cos_sin + 2 * i);
    for (; i < n_pairs; ++i) L::rope1(v + 2 * i, cos_sin + 2 * i);
  }
}

// ggml_v_expf, lane for lane the sequence of kernels/scalar/vexpf.h; the policy's scale_exp2 does
// its scalef and the lanes out of range.
template <class L>
[[gnu::always_inline]] inline typename L::V v_expf(typename L::V x) {
  using V = typename L::V;
  const V r = L::splat(0x1.8p23f);
  const V n = L::sub(L::fma(x, L::splat(0x1.715476p+0f), r), r);
  const V b = L::fnma(n, L::splat(0x1.7f7d1cp-20f), L::fnma(n, L::splat(0x1.62e4p-1f), x));
  const V u = L::mul(b, b);
  const V j = L::fma(L::fma(L::fma(L::splat(0x1.0e4020p-7f), b, L::splat(0x1.573e2ep-5f)), u,
                            L::fma(L::splat(0x1.555e66p-3f), b, L::splat(0x1.fffdb6p-2f))),
                     u, L::fma(L::splat(0x1.ffffecp-1f), b, L::splat(1.0f)));
  return L::scale_exp2(j, n);
}

template <class L>
void silu_mul(const float* gate, const float* up, float* out, int64_t n) {
  const int64_t n_vec = n / 16 * 16;
  const typename L::V one = L::splat(1.0f);
  for (int64_t i = 0; i < n_vec; i += L::kWidth) {
    const typename L::V g = L::load(gate + i);
    const typename L::V silu = L::div(g, L::add(one, v_expf<L>(L::sub(L::zero(), g))));
    L::store(out + i, L::mul(silu, L::load(up + i)));
  }
  for (int64_t i = n_vec; i < n; ++i) {
    const float g = gate[i];
    out[i] = (g / (1.0f + expf(-g))) * up[i];
  }
}

template <class L>
void softmax(float* x, int64_t n, int64_t n_span) {
  using V = typename L::V;
  constexpr int kR = 16 / L::kWidth;  // registers per reference group of 16
  // max(x, acc) returns acc when x is NaN: std::fmax's choice. The order of a max is free.
  const V neg_inf = L::splat(-__builtin_inff());
  V vmax = neg_inf;
  for (int64_t p0 = 0; p0 < n; p0 += L::kWidth) {
    vmax = L::max(L::load_n_or(x + p0, L::tail(n - p0), neg_inf), vmax);
  }
  const float max = L::hmax(vmax);
  const V vm = L::splat(max);
  // Groups past n hold only masked cells: they add +0 to a sum that is never -0.
  double sum = 0.0;
  const int64_t n_vec = n_span / 16 * 16;
  const int64_t n_groups_end = n < n_vec ? n : n_vec;
  for (int64_t p0 = 0; p0 < n_groups_end; p0 += 16) {
    V e[kR];
    for (int h = 0; h < kR; ++h) {
      const int64_t cnt = n - p0 - L::kWidth * h;  // > 0 for h = 0
      if (h > 0 && cnt <= 0) {
        e[h] = L::zero();
        continue;
      }
      const typename L::Tail t = L::tail(cnt);
      e[h] = L::keep_n(v_expf<L>(L::sub(L::load_n(x + p0 + L::kWidth * h, t), vm)), t);
      L::store_n(x + p0 + L::kWidth * h, e[h], t);
    }
    sum += static_cast<double>(L::reduce_add_16(e));
  }
  for (int64_t p = n_vec; p < n; ++p) {
    x[p] = expf(x[p] - max);
    sum += static_cast<double>(x[p]);
  }
  const V inv = L::splat(static_cast<float>(1.0 / sum));
  for (int64_t p0 = 0; p0 < n; p0 += L::kWidth) {
    const typename L::Tail t = L::tail(n - p0);
    L::store_n(x + p0, L::mul(L::load_n(x + p0, t), inv), t);
  }
}

// y = f(x) lane by lane, the tail by masked loads and stores that touch nothing past n.
template <class L, class F>
void map(const float* x, float* y, int64_t n, F f) {
  int64_t i = 0;
  for (; i + L::kWidth <= n; i += L::kWidth) L::store(y + i, f(L::load(x + i)));
  if (i < n) {
    const typename L::Tail t = L::tail(n - i);
    L::store_n(y + i, f(L::load_n(x + i, t)), t);
  }
}

template <class L>
void gelu(const float* x, float* y, int64_t n, const float* table) {
  map<L>(x, y, n, [table](typename L::V v) { return L::gelu(v, table); });
}

// max(x, 0) returns its second operand unless x > 0: the reference's x > 0 ? x : 0 for -0 and
// NaN too.
template <class L>
void relu_sqr(const float* x, float* y, int64_t n) {
  map<L>(x, y, n, [](typename L::V v) {
    const typename L::V r = L::max(v, L::zero());
    return L::mul(r, r);
  });
}

}  // namespace elementwise_lanes
}  // namespace
}  // namespace tern::kernels

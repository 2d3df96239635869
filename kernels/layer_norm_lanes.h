// The LayerNorm kernels (layer_norm, add_layer_norm, layer_norm_gelu_add) written once over a lanes
// policy that each ISA's layer_norm.cpp supplies (x86/avx2, x86/avx512, arm/neon). Everything here
// has internal linkage (anonymous namespace, instantiated with each ISA's own policy type), so each
// ISA object compiles its own copy with its own flags and exports nothing. Must not include
// anything but the standard headers below: the ISA files may include it.
//
// Theory of operation. The reference adds floats to a double one element at a time (the row sum,
// then the sum of squares): a chain of dependent adds whose rounding depends on the order, so it
// cannot simply be split across lanes. But few of those adds round, since a double has 29 more
// significand bits than a float. Take a chunk of 64 floats d_j and the running sum s. If s and
// every d_j are multiples of one power of two q, and |s| + sum |d_j| < 2^53 q, then every partial
// sum, in the reference's order or in any other, is a multiple of q below 2^53 q in magnitude and
// therefore exact: the chunk may be summed in lanes and added to s, giving the reference's double.
// q is the smaller of the weight of the lowest set bit of s (a sum that has not rounded is a
// multiple of the smallest step of the floats in it, far above its last significand bit) and
// the step of the smallest nonzero d_j (from the exponent fields; zeros impose nothing); sum |d_j|
// is bounded by a lane sum enlarged by far more than that sum's rounding error.
// A chunk that fails the test (where the reference's sum may round: an element below about
// 2^-29 of s, a sum that outgrows 53 bits, an infinity or a NaN) is added one element at a time,
// as the reference does, as are the elements of the row that do not fill a chunk. The normalisation
// after the sums is element-wise and takes the reference's steps; the fused kernel applies GELU
// and the residual add to each vector before storing it.
//
// The policy L (see x86/avx512/layer_norm.cpp): V, kWidth (floats per V), load/store (kWidth
// floats), load_n/store_n (the first k <= kWidth floats, nothing beyond), splat, add, sub, mul,
// sqrt (of one float, correctly rounded), gelu(v, table) (the ISA's gelu lanes), and
// chunk_sums<kNonNegative>(d) over kChunk / kWidth vectors: a ChunkSums of their double sum in any
// order, the smallest exponent field of a nonzero element (at least 1; 255 when all are zero), and
// (unless kNonNegative) a float sum of their magnitudes.
#pragma once

#include <cstdint>
#include <cstring>

namespace tern::kernels {
namespace {
namespace layer_norm_lanes {

inline constexpr int64_t kChunk = 64;

struct ChunkSums {
  double sum;
  int min_field;
  float abs_sum;
};

// 2^e for -1022 <= e <= 1023.
inline double pow2(int e) {
  const uint64_t bits = static_cast<uint64_t>(e + 1023) << 52;
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

// Exponent of the lowest set bit of a nonzero finite double: s is a multiple of 2^that.
inline int quantum_exp(double s) {
  uint64_t bits;
  std::memcpy(&bits, &s, sizeof bits);
  const int e = static_cast<int>((bits >> 52) & 0x7ff);
  uint64_t m = bits & ((uint64_t{1} << 52) - 1);
  if (e > 0) m |= uint64_t{1} << 52;
  return (e > 0 ? e : 1) - 1075 + __builtin_ctzll(m);
}

// s + d[0][0] + ... (kChunk floats) rounded as the reference's one-at-a-time double adds.
// kNonNegative: the elements are squares, so sum |d| is their sum.
template <class L, bool kNonNegative>
double add_chunk(double s, const typename L::V (&d)[kChunk / L::kWidth]) {
  const ChunkSums c = L::template chunk_sums<kNonNegative>(d);
  int q = c.min_field - 150;
  if (s != 0.0) {
    const int qs = quantum_exp(s);
    if (qs < q) q = qs;
  }
  // An upper bound of sum |d|, enlarged by far more than its rounding error: the squares' double
  // lane sum (within 2^-47 of itself), or a float sum of the magnitudes (within 2^-18).
  const double bound =
      kNonNegative ? c.sum * (1.0 + 0x1p-40) : static_cast<double>(c.abs_sum) * (1.0 + 0x1p-16);
  const double abs_s = s < 0.0 ? -s : s;
  // NaN and infinity (also a float bound that overflowed) make the comparison false.
  if (abs_s + bound < pow2(53 + q)) return s + c.sum;

  alignas(64) float f[kChunk];
  for (int64_t j = 0; j < kChunk / L::kWidth; ++j) L::store(f + L::kWidth * j, d[j]);
  for (const float v : f) s += static_cast<double>(v);
  return s;
}

// The reference's row sum.
template <class L>
double row_sum(const float* x, int64_t n) {
  double sum = 0.0;
  int64_t i = 0;
  for (; i + kChunk <= n; i += kChunk) {
    typename L::V d[kChunk / L::kWidth];
    for (int64_t j = 0; j < kChunk / L::kWidth; ++j) d[j] = L::load(x + i + L::kWidth * j);
    sum = add_chunk<L, false>(sum, d);
  }
  for (; i < n; ++i) sum += static_cast<double>(x[i]);
  return sum;
}

// The reference's normalise: the sum of squares of x - mean, then the element-wise steps; y gets
// finish(v, i, k) of the results v of elements i.. (k lanes valid). y may be x.
template <class L, class Finish>
void normalise(const float* x, double sum, const float* w, const float* b, float* y, int64_t n,
               float eps, Finish finish) {
  using V = typename L::V;
  const auto nd = static_cast<double>(n);
  const auto mean = static_cast<float>(sum / nd);
  const V vmean = L::splat(mean);
  double sum2 = 0.0;
  int64_t i = 0;
  for (; i + kChunk <= n; i += kChunk) {
    V sq[kChunk / L::kWidth];
    for (int64_t j = 0; j < kChunk / L::kWidth; ++j) {
      const V v = L::sub(L::load(x + i + L::kWidth * j), vmean);
      sq[j] = L::mul(v, v);
    }
    sum2 = add_chunk<L, true>(sum2, sq);
  }
  for (; i < n; ++i) {
    const float v = x[i] - mean;
    sum2 += static_cast<double>(v * v);
  }
  const auto var = static_cast<float>(sum2 / nd);
  const V vscale = L::splat(1.0f / L::sqrt(var + eps));
  const auto step = [&](int64_t at, int64_t k) {
    V v = L::mul(L::sub(L::load_n(x + at, k), vmean), vscale);
    if (w != nullptr) v = L::mul(v, L::load_n(w + at, k));
    if (b != nullptr) v = L::add(v, L::load_n(b + at, k));
    L::store_n(y + at, finish(v, at, k), k);
  };
  for (i = 0; i + L::kWidth <= n; i += L::kWidth) step(i, L::kWidth);
  if (i < n) step(i, n - i);
}

template <class L>
void layer_norm(const float* x, const float* w, const float* b, float* y, int64_t n, float eps) {
  normalise<L>(x, row_sum<L>(x, n), w, b, y, n, eps,
               [](typename L::V v, int64_t, int64_t) { return v; });
}

template <class L>
void add_layer_norm(const float* x, const float* r, float* sum, const float* w, const float* b,
                    float* y, int64_t n, float eps) {
  double total = 0.0;
  int64_t i = 0;
  for (; i + kChunk <= n; i += kChunk) {
    typename L::V d[kChunk / L::kWidth];
    for (int64_t j = 0; j < kChunk / L::kWidth; ++j) {
      const int64_t at = i + L::kWidth * j;
      d[j] = L::add(L::load(x + at), L::load(r + at));
      L::store(sum + at, d[j]);
    }
    total = add_chunk<L, false>(total, d);
  }
  for (; i < n; ++i) {
    const float s = x[i] + r[i];
    sum[i] = s;
    total += static_cast<double>(s);
  }
  normalise<L>(sum, total, w, b, y, n, eps, [](typename L::V v, int64_t, int64_t) { return v; });
}

template <class L>
void layer_norm_gelu_add(const float* x, const float* w, const float* b, const float* residual,
                         float* out, int64_t n, float eps, const float* gelu_table) {
  normalise<L>(x, row_sum<L>(x, n), w, b, out, n, eps, [=](typename L::V v, int64_t i, int64_t k) {
    return L::add(L::load_n(residual + i, k), L::gelu(v, gelu_table));
  });
}

}  // namespace layer_norm_lanes
}  // namespace
}  // namespace tern::kernels

// When a chunk of floats may be added to a double running sum in lanes: the test behind the
// LayerNorm kernels' sums (theory of operation in kernels/x86/avx512/layer_norm.cpp), shared by the
// AVX2, AVX-512 and NEON LayerNorms. Scalar code with internal linkage (anonymous namespace): each
// ISA object compiles its own copy with its own flags and exports nothing. Must not grow vector
// code or anything with external linkage.
#pragma once

#include <cstdint>
#include <cstring>

namespace tern::kernels {
namespace {

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

// Whether every partial sum of s and the chunk's elements, in any order, is exact: min_field is the
// smallest exponent field of the chunk's nonzero elements, at least 1 (255 when all are zero);
// bound is an upper bound of the sum of their magnitudes. Then s and the elements are multiples of
// q = min(lowest set bit of s, step of the smallest element), and |s| + bound < 2^53 q keeps every
// partial sum within 53 bits of q. NaN and infinity (also a bound that overflowed) give false.
inline bool chunk_sum_is_exact(double s, int min_field, double bound) {
  int q = min_field - 150;
  if (s != 0.0) {
    const int qs = quantum_exp(s);
    if (qs < q) q = qs;
  }
  const double abs_s = s < 0.0 ? -s : s;
  return abs_s + bound < pow2(53 + q);
}

}  // namespace
}  // namespace tern::kernels

// Q4_K, Q5_K and Q6_K x Q8_K matrix products with AVX2, bit-identical to
// quant::vec_dot_q4_K_q8_K / q5_K / q6_K. The tiles and their theory of operation are
// kernels/x86/kquant_tiles.h, written once for the x86 ISAs; this file supplies the AVX2 vector
// (KQuantLanes) and the tile sizes.
#include <cstddef>
#include <cstdint>

#include "kernels/x86/avx2/avx2.h"
#include "kernels/x86/intrinsics.h"
#include "kernels/x86/kquant_tiles.h"
#include "kernels/x86/tile_driver.h"

namespace tern::kernels::avx2 {
namespace {

struct KQuantLanes {
  using I = __m256i;
  using S = __m256i;
  static constexpr int kGroups = 1;

  static I zero() { return _mm256_setzero_si256(); }
  static I load(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const I*>(p)); }
  static I set1_8(int v) { return _mm256_set1_epi8(static_cast<char>(v)); }
  static I and_(I a, I b) { return _mm256_and_si256(a, b); }
  static I or_(I a, I b) { return _mm256_or_si256(a, b); }
  static I slli16(I v, int n) { return _mm256_slli_epi16(v, n); }
  static I pieces(const uint8_t* base, int off0, int sh0, int /*off1*/, int /*sh1*/) {
    return _mm256_srli_epi16(load(base + off0), sh0);
  }
  static I maddubs(I u, I s) { return _mm256_maddubs_epi16(u, s); }
  static I sub16(I a, I b) { return _mm256_sub_epi16(a, b); }
  static I dot_add(I acc, I pairs, I scale) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, scale));
  }
  static __m256i fold(I v) { return v; }
  // Eight int16 scales in both halves; group g's in every 16-bit lane.
  static S k4_scales(__m128i sc) { return _mm256_broadcastsi128_si256(sc); }
  static I k4_scale(S s, int g) {
    return _mm256_shuffle_epi8(s, _mm256_set1_epi16(static_cast<int16_t>(0x0100 + 0x0202 * g)));
  }
  // Sixteen int16 scales; group g's pair (2g, 2g + 1), the first to the low half.
  static S q6_scales(__m256i sc) { return sc; }
  static I q6_scale(S s, int g) {
    const I split_pair = _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2,
                                          3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);
    return _mm256_shuffle_epi8(_mm256_permutevar8x32_epi32(s, _mm256_set1_epi32(g)), split_pair);
  }
  // The mins' vectors: two activation rows, one per 128-bit half.
  using MI = __m256i;
  using MF = __m256;
  static constexpr int kMinCols = 2;
  static MF zero_m() { return _mm256_setzero_ps(); }
  static MI min_row(__m128i m) { return _mm256_broadcastsi128_si256(m); }
  static MI join_m(const __m128i (&p)[2]) { return _mm256_setr_m128i(p[0], p[1]); }
  static MF join_m(const float (&v)[2]) {
    return _mm256_setr_m128(_mm_set1_ps(v[0]), _mm_set1_ps(v[1]));
  }
  static __m128 part_m(MF v, int q) {
    return q == 0 ? _mm256_castps256_ps128(v) : _mm256_extractf128_ps(v, 1);
  }
  static MI madd_m(MI a, MI b) { return _mm256_madd_epi16(a, b); }
  static MI dot_add_m(MI acc, MI a, MI b) { return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b)); }
  static MI add_m(MI a, MI b) { return _mm256_add_epi32(a, b); }
  template <int kImm>
  static MI shuffle_m(MI v) {
    return _mm256_shuffle_epi32(v, kImm);
  }
  static MF cvt_m(MI v) { return _mm256_cvtepi32_ps(v); }
  static MF mul_m(MF a, MF b) { return _mm256_mul_ps(a, b); }
  static MF set1_m(float v) { return _mm256_set1_ps(v); }
  static MF fma_m(MF a, MF b, MF acc) { return _mm256_fmadd_ps(a, b, acc); }
};

template <class Format>
using Tiles =
    x86::KQuantTiles<KQuantLanes, Format, kKQuantRowTile, kKQuantColTile, kKQuantGemvRows>;

}  // namespace

void matmul_q4_K_q8_K(const TypeTraits& /*w_type*/, const std::byte* w, size_t w_stride,
                      int64_t /*n_rows*/, const std::byte* x, size_t x_stride, int64_t n_x,
                      int64_t k, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  x86::TileDriver<Tiles<x86::Q4KFormat>>::run(w, w_stride, x, x_stride, n_x, k, y, ldy, r0, r1);
}

void matmul_q5_K_q8_K(const TypeTraits& /*w_type*/, const std::byte* w, size_t w_stride,
                      int64_t /*n_rows*/, const std::byte* x, size_t x_stride, int64_t n_x,
                      int64_t k, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  x86::TileDriver<Tiles<x86::Q5KFormat>>::run(w, w_stride, x, x_stride, n_x, k, y, ldy, r0, r1);
}

void matmul_q6_K_q8_K(const TypeTraits& /*w_type*/, const std::byte* w, size_t w_stride,
                      int64_t /*n_rows*/, const std::byte* x, size_t x_stride, int64_t n_x,
                      int64_t k, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  x86::TileDriver<Tiles<x86::Q6Format>>::run(w, w_stride, x, x_stride, n_x, k, y, ldy, r0, r1);
}

}  // namespace tern::kernels::avx2
